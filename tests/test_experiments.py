"""The reports' experiments: learning-rate sweep, translation robustness,
label predictor."""
import csv
import json

import numpy as np
import pytest
from conftest import run_script, write_mnist

from common import devices
from common.evaluation import classifier
from common.experiments import __main__ as experiments
from common.experiments import lr_sweep, translation
from common.rundir import RunDir
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
def encoder_runs(tmp_path_factory):
    """Runs of models with an encoder (and one without) on centred
    synthetic digits, which a shift takes away from anything trained on."""
    root = tmp_path_factory.mktemp("encoders")
    centered = write_mnist(root / "data", centered=True)
    common = ["--data-dir", str(centered), "--epochs", "2", "--seed", "1",
              "--metrics-every", "0"]
    # the report's Adam(1e-4) at batch 32 learns too little in a few epochs of 256 images
    assert vae_train.main([*common, "--out", str(root / "conv_vae"), "--lr", "0.001",
                           "--batch-size", "16", "--epochs", "3"]) == 0
    assert vae_train.main([*common, "--model", "cvae", "--out", str(root / "cvae")]) == 0
    assert gan_train.main([*common, "--model", "vaegan", "--noise-dim", "16", "--train-size",
                           "128", "--batch-size", "64", "--out", str(root / "vaegan")]) == 0
    assert gan_train.main([*common, "--model", "mlp_gan", "--out", str(root / "mlp_gan")]) == 0
    return root


def test_translation_command(encoder_runs, tmp_path):
    def translation(out):
        result = run_script("-m", "common.experiments", "translation", encoder_runs / "conv_vae",
                            encoder_runs / "cvae", encoder_runs / "vaegan", "--images", "64",
                            "--out", out)
        assert result.returncode == 0, result.stderr
        return (out / "translation.csv").read_text()

    out = tmp_path / "translation"
    table = translation(out)
    rows = list(csv.DictReader(table.splitlines()))
    assert [r["model"] for r in rows] == ["(the digits themselves)", "conv_vae", "cvae", "vaegan"]
    for row in rows[1:]:
        unshifted = float(row["reconstruction MSE (unshifted)"])
        shifted = float(row["reconstruction MSE (shifted)"])
        assert 0 < unshifted < shifted < 1, row  # shifted digits are reconstructed worse
        assert 0 <= float(row["classifier accuracy (shifted)"]) <= 1
    assert "| conv_vae |" in (out / "translation.md").read_text()
    assert (out / "translation.png").stat().st_size > 1000
    assert translation(tmp_path / "again") == table  # the same shifts, the same numbers

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
    for row in rows:  # each row is its own run's: trained at that rate, its last epoch
        run = RunDir(out / f"lr_{float(row['learning_rate']):g}")
        assert run.read_config()["args"]["lr"] == float(row["learning_rate"])
        last = run.read_table("history")[-1]
        assert last["epoch"] == 2
        for column in ("epoch", "loss", "reconstruction", "kl", "test_elbo"):
            assert float(row[column]) == pytest.approx(last[column], rel=1e-6), column
    assert rows[0]["loss"] != rows[1]["loss"]
    assert (out / "lr_sweep.png").exists() and "| learning_rate |" in (
        out / "lr_sweep.md").read_text()


def test_lr_sweep_scores_every_rate_with_one_float32_classifier(synthetic_mnist, tmp_path,
                                                               monkeypatch):
    """On a CPU with bfloat16 instructions a GAN trains in bf16 by default.
    Each rate of the sweep runs in this one process; the evaluation
    classifier must still be float32 for every rate, or the rates' metrics
    are measured with different numbers."""
    import keras

    monkeypatch.setattr(devices, "device_type", lambda: "CPU-bf16")
    features, load = [], classifier.load_or_train

    def load_and_measure(data, cache):
        trained = load(data, cache)
        features.append(trained.features_and_probabilities(data.test_images)[0])
        assert {layer.dtype_policy.name for layer in trained.model.layers} == {"float32"}
        return trained

    monkeypatch.setattr(classifier, "load_or_train", load_and_measure)
    out = tmp_path / "sweep"
    assert lr_sweep.main(["--model", "mlp_gan", "--rates", "0.001", "0.0001", "--out", str(out),
                          "--data-dir", str(synthetic_mnist), "--epochs", "1", "--seed", "1",
                          "--metrics-every", "1", "--metrics-samples", "64"]) == 0
    for rate in ("0.001", "0.0001"):
        assert json.loads((out / f"lr_{rate}" / "config.json").read_text())["args"][
            "precision"] == "bf16"
    assert len(features) == 2
    np.testing.assert_array_equal(features[0], features[1])
    assert keras.mixed_precision.global_policy().name == "float32"


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
    (["lr-sweep", "--lr=0.1"], "the sweep sets --lr itself"),
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
