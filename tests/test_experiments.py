"""The reports' experiments: learning-rate sweep, translation robustness,
label predictor."""
import csv
import json
import sys

import numpy as np
import pytest
from conftest import run_script, write_mnist

from common import data as data_module
from common import runs
from common.evaluation import classifier, spread
from common.evaluation.evaluator import Evaluator
from common.experiments import __main__ as experiments
from common.experiments import lr_sweep, seeds, translation
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
    # the VAE-GAN in a process of its own: here it raised the suite's peak memory by 0.5 GiB
    vaegan = run_script("gan_keras/train.py", *common, "--model", "vaegan", "--noise-dim", "16",
                        "--train-size", "128", "--batch-size", "64", "--out", root / "vaegan")
    assert vaegan.returncode == 0, vaegan.stderr[-3000:]
    assert gan_train.main([*common, "--model", "mlp_gan", "--out", str(root / "mlp_gan")]) == 0
    for seed_ in (1, 2):  # a sweep's directory: two seeds of one configuration
        assert vae_train.main([*common, "--model", "cvae", "--seed", str(seed_),
                               "--out", str(root / "seeds_cvae" / f"seed_{seed_}")]) == 0
    return root


@pytest.mark.slow
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


@pytest.mark.slow
def test_translation_and_labels_of_a_sweep_report_each_group_s_spread(encoder_runs, tmp_path):
    """A sweep's directory stands for its runs; runs that differ only by
    their seed are one group, reported as mean ± standard deviation."""
    result = run_script("-m", "common.experiments", "translation", encoder_runs / "seeds_cvae",
                        encoder_runs / "conv_vae", "--images", "32", "--out", tmp_path / "t")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "t" / "translation.csv").read_text().splitlines()))
    assert [row["model"] for row in rows[1:]] == ["seed_1", "seed_2", "conv_vae"]
    shifted = [float(row["reconstruction MSE (shifted)"]) for row in rows[1:3]]
    table = (tmp_path / "t" / "translation.md").read_text()
    assert "| seeds_cvae | 2 | " in table and spread.Spread(shifted).text(4) in table
    assert "| conv_vae | 1 | " in table

    result = run_script("-m", "common.experiments", "labels", encoder_runs / "seeds_cvae",
                        "--iw-samples", "0", "--out", tmp_path / "l")
    assert result.returncode == 0, result.stderr
    evaluations = [json.loads((encoder_runs / "seeds_cvae" / f"seed_{s}" /
                               "evaluation.json").read_text()) for s in (1, 2)]
    confidence = spread.Spread([e["labels"]["confidence"] for e in evaluations]).text()
    group_row = next(line for line in (tmp_path / "l" / "labels.md").read_text().splitlines()
                     if line.startswith("| seeds_cvae | 2 |"))
    assert group_row.endswith(f"| {confidence} |")


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.usefixtures("mixed_precision_runs")
def test_lr_sweep_over_seeds_reports_each_rate_s_spread(synthetic_mnist, tmp_path):
    """Rates x seeds, two at once: one run directory per pair; the table's
    cell for a rate is the mean and standard deviation of its seeds' last
    rows; the metrics were computed by the float32 classifier even though
    every run trained in bf16."""
    import keras

    out = tmp_path / "sweep"
    assert lr_sweep.main(["--model", "mlp_gan", "--rates", "0.001", "0.0001", "--seeds", "1", "2",
                          "--out", str(out), "--workers", "2", "--data-dir", str(synthetic_mnist),
                          "--epochs", "1", "--precision", "bf16", "--metrics-every", "1",
                          "--metrics-samples", "64", "--classifier-dir",
                          str(tmp_path / "classifier")]) == 0
    with open(out / "lr_sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["learning_rate"], r["seed"]) for r in rows] == [
        ("0.001", "1"), ("0.001", "2"), ("0.0001", "1"), ("0.0001", "2")]
    runs_ = {(r["learning_rate"], r["seed"]): out / f"lr_{r['learning_rate']}" / f"seed_{r['seed']}"
             for r in rows}
    for (rate, seed_), directory in runs_.items():
        config = RunDir(directory).read_config()["args"]
        assert (config["lr"], config["seed"], config["precision"]) == (float(rate), int(seed_),
                                                                       "bf16")
    table = (out / "lr_sweep.md").read_text().splitlines()
    header = next(line for line in table if line.startswith("| learning_rate |")).split(" | ")
    first = next(line for line in table if line.startswith("| 0.001 |")).split(" | ")
    column = header.index("g_loss")
    assert first[column] == spread.Spread([float(r["g_loss"]) for r in rows[:2]]).text(4)
    assert "over 2 seeds" in table[2] and spread.RULE in table

    # the runs' metrics are the float32 classifier's: scored again here, in
    # float32, from each run's weights restored in bf16, the numbers agree
    data = data_module.load("mnist", synthetic_mnist)
    evaluator = Evaluator(classifier.load_or_train(data, tmp_path / "classifier"), data, 64)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    for directory in runs_.values():
        stored = RunDir(directory).read_table("metrics")[-1]
        again = evaluator.score(runs.open_run(directory).model)
        # measured: a relative gap of 2.3e-7 (bf16 CPU, four OpenBLAS kernels), 2.6e-7
        # (ONEDNN_MAX_CPU_ISA=AVX512_CORE, fp32 runs); bound 10x
        assert again["fd"] == pytest.approx(stored["fd"], rel=2.5e-6)
        assert again["precision"] == pytest.approx(stored["precision"], abs=1e-6)


@pytest.mark.slow
def test_lr_sweep_resumes_an_interrupted_sweep(synthetic_mnist, tmp_path, capfd):
    out = tmp_path / "sweep"
    training = ["--data-dir", str(synthetic_mnist), "--metrics-every", "0", "--seed", "1"]
    # interrupted: the first rate finished, the second only started (1 epoch of 2)
    for rate, epochs in (("0.001", "2"), ("0.0001", "1")):
        assert vae_train.main(["--model", "mlp_vae", "--lr", rate, "--out",
                               str(out / f"lr_{rate}"), *training, "--epochs", epochs]) == 0
    capfd.readouterr()
    assert lr_sweep.main(["--model", "mlp_vae", "--rates", "0.001", "0.0001", "--out",
                          str(out), *training, "--epochs", "2"]) == 0
    printed = capfd.readouterr().out
    assert "has trained 2 epochs already" in printed  # the finished rate
    assert "Resuming" in printed and "Time for epoch 2" in printed  # the interrupted one


@pytest.mark.parametrize("argv, message", [
    (["lr-sweep", "--lr", "0.1"], "the sweep sets --lr itself"),
    (["lr-sweep", "--lr=0.1"], "the sweep sets --lr itself"),
    (["lr-sweep", "--seeds", "1", "2", "--seed", "3"], "the sweep sets --seed itself"),
    (["seeds", "--model", "dcgan", "--seed=3"], "the sweep sets --seed itself"),
    (["lr-sweep", "--model", "biggan"], "no script builds a model called 'biggan'"),
    (["warp"], "unknown experiment 'warp'; choose one of seeds, lr-sweep, translation, labels"),
    ([], "choose one of seeds, lr-sweep, translation, labels"),
])
def test_experiment_errors(argv, message):
    result = run_script("-m", "common.experiments", *argv)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr


def test_a_cluster_without_ray_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(SystemExit) as exit_:
        seeds.main(["--model", "dcgan", "--cluster", "local"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "python -m common.experiments seeds: error: --cluster needs Ray, which is not "
        "installed: pip install -r requirements-cluster.txt"]


def test_experiments_help_lists_them():
    assert experiments.main(["--help"]) == 0
