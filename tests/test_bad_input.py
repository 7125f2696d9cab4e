"""Bad input, as a user types it: one line on stderr, exit status 2, no
traceback, and an existing run left exactly as it was, even with --fresh.
These run the script in a subprocess; all but the last case fail before
TensorFlow starts, and that one before the classifier trains."""
import re
import shutil

import pytest
from conftest import IDX_NAMES, idx_bytes, run_script, synthetic_digits, tree_digest, write_file

GAN, VAE = "gan_keras/train.py", "vae_keras/train.py"


@pytest.fixture(scope="module")
def finished_run(synthetic_mnist, tmp_path_factory):
    """A real, finished 1-epoch run to try to damage."""
    from gan_keras import train

    out = tmp_path_factory.mktemp("finished") / "run"
    assert train.main(["--data-dir", str(synthetic_mnist), "--out", str(out), "--epochs", "1",
                       "--batch-size", "64", "--seed", "1"]) == 0
    return out


def _bad_data(directory, synthetic_mnist, name, raw):
    shutil.copytree(synthetic_mnist, directory)
    write_file(directory / f"{name}.gz", raw)
    return directory


CASES = {
    "epochs 0": (["--epochs", "0"], "argument --epochs: expected a whole number >= 1, got 0"),
    "epochs -3": (["--epochs", "-3"], "argument --epochs: expected a whole number >= 1, got -3"),
    "epochs abc": (["--epochs", "abc"], "argument --epochs: expected a whole number >= 1, got 'abc'"),
    "batch 0": (["--batch-size", "0"], "argument --batch-size: expected a whole number >= 1"),
    "lr -1": (["--lr", "-1"], "argument --lr: expected a number > 0, got -1"),
    "seed -1": (["--seed", "-1"], r"argument --seed: expected 0 <= seed < 2\*\*31, got -1"),
    "unknown model": (["--model", "biggan"], "argument --model: invalid choice: 'biggan'"),
    "unknown dataset": (["--dataset", "cifar10"], "argument --dataset: invalid choice: 'cifar10'"),
    "abbreviated flag": (["--epoch", "3"], "unrecognized arguments: --epoch 3"),
    "batch > data": (["--batch-size", "300"],
                     r"--batch-size 300 is larger than the training set \(256 images\)"),
    "train size > data": (["--train-size", "1000"], "--train-size 1000 is more than the 256"),
    "no data dir": (["--data-dir", "{tmp}/nowhere"], "data directory .*nowhere does not exist"),
    "missing file": (["--data-dir", "{missing}"], "missing .*t10k-labels-idx1-ubyte\\[.gz\\]"),
    "truncated": (["--data-dir", "{truncated}"], "train-images-idx3-ubyte.gz: header announces"),
    "wrong magic": (["--data-dir", "{magic}"], "magic number 0x00000801, expected 0x00000803"),
    "out is a file": (["--out", "{tmp}/file"], "--out .*file is a file, not a directory"),
    "out under a file": (["--out", "{tmp}/file/run"], "cannot create --out .*file is a file"),
    "metrics every -1": (["--metrics-every", "-1"],
                         "argument --metrics-every: expected a whole number >= 0, got -1"),
    "classifier dir a file": (["--metrics-every", "1", "--classifier-dir", "{tmp}/file"],
                              "--classifier-dir .*file is a file, not a directory"),
}
OWN_CASES = {  # each script's own arguments
    GAN: {"noise 0": (["--noise-dim", "0"], "argument --noise-dim: expected a whole number"),
          "no own evaluation": (["--eval-every", "2"], "unrecognized arguments: --eval-every")},
    VAE: {"latent 0": (["--latent-dim", "0"], "argument --latent-dim: expected a whole number"),
          "eval every 0": (["--eval-every", "0"], "argument --eval-every: expected a whole number"),
          "kl": (["--kl", "exact"], "argument --kl: invalid choice: 'exact'"),
          "binarize": (["--binarize", "0.5"], "argument --binarize: invalid choice: '0.5'"),
          "gan model": (["--model", "dcgan"], "argument --model: invalid choice: 'dcgan'")},
}
ALL_CASES = {(script, name): case for script in (GAN, VAE)
             for name, case in {**CASES, **OWN_CASES[script]}.items()}
# by default each shared case once, with the GAN script, and each script's
# own; the VAE script's copies of the shared ones (and the cases that start
# TensorFlow, the classifier's) are slow
SLOW_CASES = {(VAE, name) for name in CASES} | {(GAN, "classifier dir a file")}


@pytest.mark.parametrize("script, case", [
    pytest.param(*key, marks=pytest.mark.slow) if key in SLOW_CASES else key for key in ALL_CASES],
    ids=[f"{s[:3]}-{c}" for s, c in ALL_CASES])
def test_bad_input_is_one_line_exit_2_and_damages_nothing(script, case, finished_run,
                                                          synthetic_mnist, tmp_path):
    args, message = ALL_CASES[script, case]
    images, _ = synthetic_digits(256)
    places = {
        "tmp": tmp_path,
        "missing": tmp_path / "missing",
        "truncated": _bad_data(tmp_path / "truncated", synthetic_mnist, IDX_NAMES[0],
                               idx_bytes(images)[:5000]),
        "magic": _bad_data(tmp_path / "magic", synthetic_mnist, IDX_NAMES[0],
                           idx_bytes(images, magic=0x801)),
    }
    shutil.copytree(synthetic_mnist, places["missing"])
    (places["missing"] / f"{IDX_NAMES[3]}.gz").unlink()
    (tmp_path / "file").write_text("keep me")
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    before = tree_digest(out)

    args = [a.format(**places) for a in args]
    defaults = {"--data-dir": str(synthetic_mnist), "--out": str(out), "--batch-size": "64",
                "--epochs": "1"}
    for flag, value in defaults.items():
        if flag not in args:
            args += [flag, value]
    # as a user runs it: TensorFlow's start-up lines are the script's to drop
    result = run_script(script, *args, "--fresh", env={"TF_CPP_MIN_LOG_LEVEL": None})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("train.py: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert result.stdout == ""
    assert tree_digest(out) == before
    assert (tmp_path / "file").read_text() == "keep me"


def test_data_dir_from_the_environment(synthetic_mnist, tmp_path):
    result = run_script(VAE, "--out", tmp_path / "run", "--batch-size", "999",
                        env={"MNIST_DATA_DIR": str(synthetic_mnist)})
    assert result.returncode == 2
    assert "larger than the training set (256 images)" in result.stderr  # it read that dir
    assert not (tmp_path / "run").exists()  # nothing created for a failed start


@pytest.mark.parametrize("script, defaults", [
    (GAN, ("(default: 2000)", "--noise-dim NOISE_DIM", "(default: the preset's)",
           "mlp_gan: report004, report001, report003", "(default: bce)")),
    (VAE, ("(default: 1000)", "--latent-dim LATENT_DIM", "(default: the preset's)",
           "mlp_vae: report004, report001, report003", "cvae: report001")),
])
def test_help_lists_the_report_defaults(script, defaults):
    result = run_script(script, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for expected in ("--epochs EPOCHS total epochs", "--fresh", *defaults):
        assert expected in text
    for option in text.split(" --")[1:]:  # each default said once
        assert option.count("(default:") <= 1, option
