"""The reports' experiments: learning-rate sweep, translation robustness,
label predictor."""
import csv

import numpy as np
import pytest
from conftest import run_script

from common.experiments import __main__ as experiments
from common.experiments import lr_sweep, translation
from gan_keras import train as gan_train
from vae_keras import train as vae_train


def test_translate_moves_each_digit_by_whole_pixels_and_lets_zeros_in():
    digit = np.zeros((1, 28, 28), np.uint8)
    digit[0, 10, 20] = 255
    rng = np.random.default_rng(0)
    moved = translation.translate(np.repeat(digit, 500, axis=0), 2.8, rng)
    flat = moved.reshape(500, -1)
    assert (flat > 0).sum(axis=1).tolist() == [1] * 500  # nothing lost or doubled
    rows, cols = np.divmod(flat.argmax(axis=1), 28)
    assert set(rows - 10) == set(cols - 20) == {-3, -2, -1, 0, 1, 2, 3}  # 10% of 28 = 2.8
    edge = np.full((1, 28, 28), 255, np.uint8)
    shifted = translation.translate(edge, 2.8, np.random.default_rng(3))
    assert shifted.min() == 0  # zeros let in where the image moved away


@pytest.fixture(scope="module")
def encoder_runs(synthetic_mnist, tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    common = ["--data-dir", str(synthetic_mnist), "--epochs", "2", "--seed", "1",
              "--metrics-every", "0"]
    assert vae_train.main([*common, "--out", str(root / "conv_vae")]) == 0
    assert vae_train.main([*common, "--model", "cvae", "--out", str(root / "cvae")]) == 0
    assert gan_train.main([*common, "--model", "vaegan", "--noise-dim", "16", "--train-size",
                           "128", "--batch-size", "64", "--out", str(root / "vaegan")]) == 0
    assert gan_train.main([*common, "--model", "mlp_gan", "--out", str(root / "mlp_gan")]) == 0
    return root


def test_translation_command(encoder_runs, tmp_path):
    out = tmp_path / "translation"
    result = run_script("-m", "common.experiments", "translation", encoder_runs / "conv_vae",
                        encoder_runs / "cvae", encoder_runs / "vaegan", "--images", "64",
                        "--out", out)
    assert result.returncode == 0, result.stderr
    with open(out / "translation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["(the digits themselves)", "conv_vae", "cvae", "vaegan"]
    for row in rows[1:]:
        assert 0 < float(row["reconstruction MSE (unshifted)"]) < 1
        assert 0 < float(row["reconstruction MSE (shifted)"]) < 1
        assert 0 <= float(row["classifier accuracy (shifted)"]) <= 1
    assert "| conv_vae |" in (out / "translation.md").read_text()
    assert (out / "translation.png").stat().st_size > 1000

    refused = run_script("-m", "common.experiments", "translation", encoder_runs / "mlp_gan",
                         "--out", out)
    assert refused.returncode == 2
    assert "is a mlp_gan, which has no encoder" in refused.stderr


def test_labels_command_and_the_conditional_model(encoder_runs, tmp_path):
    out = tmp_path / "labels"
    result = run_script("-m", "common.experiments", "labels", encoder_runs / "cvae",
                        encoder_runs / "mlp_gan", "--out", out, "--iw-samples", "2",
                        "--iw-images", "4")
    assert result.returncode == 0, result.stderr
    table = (out / "labels.md").read_text()
    assert "| cvae |" in table and "| mlp_gan |" in table
    cvae_row = next(line for line in table.splitlines() if line.startswith("| cvae |"))
    gan_row = next(line for line in table.splitlines() if line.startswith("| mlp_gan |"))
    assert not cvae_row.endswith("| — |") and gan_row.endswith("| — |")
    shares = [float(cell) for cell in cvae_row.split("|")[2:12]]
    assert sum(shares) == pytest.approx(100, abs=0.5)
    assert (out / "labels.png").stat().st_size > 1000


def test_lr_sweep_writes_its_table(synthetic_mnist, tmp_path):
    out = tmp_path / "sweep"
    argv = ["--model", "mlp_vae", "--rates", "0.001", "0.0001", "--out", str(out),
            "--data-dir", str(synthetic_mnist), "--epochs", "2", "--metrics-every", "0",
            "--seed", "1"]
    assert lr_sweep.main(argv) == 0
    with open(out / "lr_sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["learning_rate"]) for r in rows] == [0.001, 0.0001]
    assert [r["epoch"] for r in rows] == ["2", "2"]
    assert rows[0]["loss"] != rows[1]["loss"]
    assert (out / "lr_sweep.png").exists() and "| learning_rate |" in (
        out / "lr_sweep.md").read_text()


def test_lr_sweep_resumes_an_interrupted_sweep(synthetic_mnist, tmp_path, capsys):
    out = tmp_path / "sweep"
    training = ["--data-dir", str(synthetic_mnist), "--metrics-every", "0", "--seed", "1"]
    # interrupted: the first rate finished, the second only started (1 epoch of 2)
    for rate, epochs in (("0.001", "2"), ("0.0001", "1")):
        assert vae_train.main(["--model", "mlp_vae", "--lr", rate, "--out",
                               str(out / f"lr_{rate}"), *training, "--epochs", epochs]) == 0
    capsys.readouterr()
    assert lr_sweep.main(["--model", "mlp_vae", "--rates", "0.001", "0.0001", "--out",
                          str(out), *training, "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "has trained 2 epochs already" in printed  # the finished rate
    assert "Resuming" in printed and "Time for epoch 2" in printed  # the interrupted one


@pytest.mark.parametrize("argv, message", [
    (["lr-sweep", "--lr", "0.1"], "the sweep sets --lr itself"),
    (["lr-sweep", "--model", "biggan"], "no script builds a model called 'biggan'"),
    (["warp"], "unknown experiment 'warp'; choose one of lr-sweep, translation, labels"),
    ([], "choose one of lr-sweep, translation, labels"),
])
def test_experiment_errors(argv, message):
    result = run_script("-m", "common.experiments", *argv)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr


def test_experiments_help_lists_them():
    assert experiments.main(["--help"]) == 0
