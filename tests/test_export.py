"""What a user does after training: the model taken out in files plain Keras
and TensorFlow load (common.export), the checkpoints of kept epochs
(--keep-epochs, --epoch), new pictures (common.generate) and the Python
entry point (common.runs.open_run, docs/python.md)."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_script
from PIL import Image

from common import export, generate, images, runs
from common.images import pictures
from gan_keras import train as gan_train

# Every model of both scripts, as small as a run can be: 2 epochs of 256
# images, the first epoch's checkpoint kept.
MODELS = {"dcgan": ("gan_keras/train.py", []), "mlp_gan": ("gan_keras/train.py", []),
          "infogan": ("gan_keras/train.py", []),
          "vaegan": ("gan_keras/train.py", ["--noise-dim", "16"]),
          "conv_vae": ("vae_keras/train.py", ["--batch-size", "64"]),
          "mlp_vae": ("vae_keras/train.py", []), "cvae": ("vae_keras/train.py", [])}


def small(out, data_dir, *args):
    """A train.py's arguments for a run of a few seconds."""
    return ["--data-dir", str(data_dir), "--out", str(out), "--batch-size", "64",
            "--metrics-every", "0", "--seed", "1", *map(str, args)]


def train(script, out, data_dir, *args):
    """A small run in this process."""
    return script.main(small(out, data_dir, *args))


# Each model's run, one after another in one process (one start of
# TensorFlow, 6 s on some CPUs, for all of them)
TRAIN = """
import json, sys
from gan_keras import train as gan_train
from vae_keras import train as vae_train
for script, argv in json.loads(sys.argv[1]):
    assert {"gan": gan_train, "vae": vae_train}[script].main(argv) == 0
"""


# the models the default run's tests open (the slow ones open every model)
DEFAULT_RUN = ("dcgan", "mlp_vae", "cvae")


class Trained(dict):
    """{model: its run directory}, each trained (2 epochs, epoch 1 kept)
    the first time a test asks for it, or for several at once (`train`), in
    a process other than this one: what a training traces stays in the
    process that ran it (conftest.released), and all seven in this one
    raised the suite's peak memory by 1.35 GiB."""

    def __init__(self, data_dir, root):
        super().__init__()
        self.data_dir, self.root = data_dir, root

    def __missing__(self, model):
        self.train(DEFAULT_RUN if model in DEFAULT_RUN else [model])
        return self[model]

    def train(self, models):
        """Train those of `models` not trained yet, in one process."""
        todo = [model for model in models if model not in self]
        runs_ = [(MODELS[model][0][:3], small(self.root / model, self.data_dir, "--model", model,
                                              "--epochs", 2, "--keep-epochs", 1,
                                              *MODELS[model][1])) for model in todo]
        if runs_:
            result = run_script("-c", TRAIN, json.dumps(runs_))
            assert result.returncode == 0, result.stderr[-3000:]
        self.update({model: self.root / model for model in todo})


@pytest.fixture(scope="module")
def trained(synthetic_mnist, tmp_path_factory):
    return Trained(synthetic_mnist, tmp_path_factory.mktemp("trained"))


# In a process that cannot import this project: each export's generator (a
# VAE's decoder) with plain Keras and its SavedModel with plain TensorFlow,
# both on the inputs that `sample` drew (inputs.npz); every .keras file (an
# encoder too) on the inputs NAME.npz holds; and the model card's own Python.
FRESH = """
import json, os, sys
from pathlib import Path
import numpy as np
try:
    import common
    sys.exit("the project is importable")
except ImportError:
    pass
import keras
import tensorflow as tf

def one_hot(labels):
    return np.eye(10, dtype="float32")[labels]

def from_keras(model, folder, inputs):
    net = keras.saving.load_model(folder / next(iter(json.loads(
        (folder / "export.json").read_text())["networks"].values()))["file"])
    if model == "infogan":
        x = np.concatenate([inputs["noise"], one_hot(inputs["category"]), inputs["continuous"]], 1)
    elif model == "cvae":
        x = [inputs["latent"], one_hot(inputs["digit"])]
    else:
        x = inputs.get("noise", inputs.get("latent"))
    out = np.asarray(net.predict(x, verbose=0), np.float64)
    return out / 2 + 0.5 if model in ("dcgan", "mlp_gan", "infogan", "vaegan") else 1 / (1 + np.exp(-out))

results = {}
for folder in map(Path, sys.argv[1:]):
    card = json.loads((folder / "export.json").read_text())
    inputs = dict(np.load(folder.parent / "inputs.npz"))
    served = tf.saved_model.load(str(folder / "saved_model")).signatures["serving_default"]
    uint8 = served(**{name: tf.constant(value) for name, value in inputs.items()})["images"]
    scope = {}
    os.chdir(folder)  # the card's three lines, as a user pastes them in the export's folder
    exec(card["python"], scope)
    networks = {}
    for name, network in card["networks"].items():  # each file on the inputs it was given
        given = np.load(folder.parent / f"{name}.npz")
        x = [given[f"arr_{i}"] for i in range(len(given.files))]
        loaded = keras.saving.load_model(folder / network["file"])
        networks[name] = np.asarray(loaded.predict(x if len(x) > 1 else x[0], verbose=0),
                                    np.float64).tolist()
    results[str(folder)] = {"keras": from_keras(card["model"], folder, inputs).tolist(),
                            "networks": networks,
                            "served": uint8.numpy().tolist(), "served_dtype": uint8.dtype.name,
                            "card": list(np.shape(scope["images"])),
                            "card_range": [float(np.min(scope["images"])),
                                           float(np.max(scope["images"]))]}
print(json.dumps(results))
"""


@pytest.mark.slow
def test_every_model_exports_what_plain_keras_and_tensorflow_load(trained, tmp_path):
    """Each model's export, loaded where this project cannot be imported,
    gives the images `sample` gives for the same inputs, and each of its
    .keras files (an encoder too) what its network gives: the floats within
    1e-6 (batches of another size may sum in another order), the
    SavedModel's uint8 images those of to_uint8, but where a value lies
    within 1e-4 of a rounding boundary."""
    folders, expected, computed = [], {}, {}
    rng = np.random.default_rng(0)
    trained.train(MODELS)
    for model in MODELS:
        loaded = runs.open_run(trained[model])
        out = tmp_path / model / "export"
        card = export.export(loaded, out)
        assert card["model"] == model and card["epoch"] == 2
        assert set(card["networks"]) == set(loaded.model.exported)
        assert {p.name for p in out.iterdir()} == {
            *(f"{name}.keras" for name in card["networks"]), "saved_model", "export.json",
            "README.md"}
        drawn = {name: np.asarray(value) for name, value in loaded.model.draw(20, seed=3).items()}
        np.savez(tmp_path / model / "inputs.npz", **drawn)
        expected[str(out)] = loaded.sample(20, seed=3)
        computed[str(out)] = {}
        for name, network in loaded.model.exported.items():
            x = [rng.uniform(0, 1, (5, *spec.shape[1:])).astype("float32")
                 for spec in network.inputs]
            np.savez(tmp_path / model / f"{name}.npz", *x)
            computed[str(out)][name] = np.asarray(network(x if len(x) > 1 else x[0],
                                                          training=False), np.float64)
        folders.append(str(out))
    fresh = subprocess.run([sys.executable, "-I", "-c", FRESH, *folders], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    results = json.loads(fresh.stdout.strip().splitlines()[-1])
    for folder, images_ in expected.items():
        got = results[folder]
        keras_images = np.asarray(got["keras"])
        # measured: 1.2e-7 (bf16 CPU and ONEDNN_MAX_CPU_ISA=AVX512_CORE); bound 8x
        np.testing.assert_allclose(keras_images.reshape(images_.shape), images_, atol=1e-6,
                                   err_msg=folder)
        assert set(got["networks"]) == set(computed[folder])
        for name, outputs in computed[folder].items():
            # measured: 3.0e-8 (both CPU kinds); bound 10x
            np.testing.assert_allclose(got["networks"][name], outputs, atol=3e-7, rtol=1e-6,
                                       err_msg=f"{folder}: {name}")
        served = np.asarray(got["served"], np.int16).reshape(images_.shape)
        assert got["served_dtype"] == "uint8"
        gap = served - images.to_uint8(images_)
        assert np.abs(gap).max() <= 1, folder
        # a pixel off by one: its value within 1e-4 (x 255) of halfway between two levels
        # (none was off on either CPU kind: the 0.03 is not a measured bound)
        assert np.all(np.abs(images_[gap != 0] * 255 % 1 - 0.5) < 0.03), folder
        assert got["card"][0] == 16 and 0 <= got["card_range"][0] <= got["card_range"][1] <= 1


@pytest.mark.slow
def test_an_export_says_what_the_model_is(trained, tmp_path):
    """export.json and README.md name the model, its epoch, its inputs and
    their distributions, the ranges, the commands, the versions; InfoGAN's
    card writes down the layout of its generator's input."""
    out = tmp_path / "infogan"
    assert export.main([str(trained["infogan"]), "--epoch", "1", "--out", str(out)]) == 0
    card = json.loads((out / "export.json").read_text())
    assert (card["model"], card["preset"], card["epoch"], card["dataset"]) == (
        "infogan", "chen2016", 1, "mnist")
    assert card["inputs"] == {
        "noise": {"shape": [None, 62], "dtype": "float32", "distribution": "normal, N(0, I)"},
        "category": {"shape": [None], "dtype": "int32", "distribution": "uniform over 0 to 9"},
        "continuous": {"shape": [None, 2], "dtype": "float32",
                       "distribution": "uniform, U(-1, 1)"}}
    assert card["networks"]["generator"]["input"].startswith(
        "[n, 74]: columns 0-61 the noise, normal N(0, I); 62-71 the category one-hot")
    assert "[-1, 1] (tanh)" in card["networks"]["generator"]["output"]
    assert card["serving"]["output"]["images"] == {"shape": [None, 28, 28, 1], "dtype": "uint8",
                                                   "range": "0 (black) to 255"}
    assert card["trained"]["command"].startswith("python gan_keras/train.py --model infogan")
    assert card["exported"]["command"].endswith(f"--epoch 1 --out {out}")
    assert card["exported"]["versions"]["tensorflow"] and card["trained"]["versions"]["keras"]
    assert card["trained"]["precision"] in ("fp32", "bf16") and card["computes_in"] == "float32"
    readme = (out / "README.md").read_text()
    assert readme.startswith("# infogan, preset chen2016, epoch 1, trained on mnist")
    assert card["python"] in readme and "keras.saving.load_model" in card["python"]
    assert len(card["python"].splitlines()) == 3
    # the default place: RUN_DIR/export/epoch_N
    assert export.main([str(trained["cvae"])]) == 0
    assert (trained["cvae"] / "export" / "epoch_0002" / "decoder.keras").is_file()


def test_an_export_carries_the_metrics_of_its_epoch(trained, tmp_path):
    """The row of metrics.csv of the exported epoch goes into export.json and
    the model card; a blank cell (not measured that epoch) is left out, and
    export.json stays JSON (no NaN)."""
    run = tmp_path / "run"
    shutil.copytree(trained["mlp_vae"], run)
    (run / "metrics.csv").write_text("epoch,fd,kid,coverage\n1,50.5,,8\n2,41.25,,9\n")
    card = export.describe(runs.open_run(run), tmp_path / "export")
    json.dumps(card, allow_nan=False)  # as export writes it: a NaN would raise
    assert card["metrics"] == {"fd": 41.25, "coverage": 9}
    assert "- fd: 41.25\n- coverage: 9\n" in export.model_card(card)


def test_an_export_that_fails_leaves_the_old_one_whole(trained, tmp_path, monkeypatch):
    out = tmp_path / "export"
    loaded = runs.open_run(trained["mlp_vae"])
    export.export(loaded, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def fail(card):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "model_card", fail)
    with pytest.raises(OSError):
        export.export(loaded, out)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no temporary folder left
    with pytest.raises(OSError):
        export.export(loaded, tmp_path / "new")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("args, message", [
    (["{tmp}/nowhere"], "nowhere is not a directory"),
    (["{run}", "--epoch", "7"], "kept no checkpoint of epoch 7; it has epochs 1, 2"),
    (["{run}", "--epoch", "0"], "argument --epoch: expected a whole number >= 1, got 0"),
    (["{run}", "--out", "{tmp}/file/x"], "the folder of --out {tmp}/file is a file"),
    (["{run}", "--out", "{tmp}/file"], "--out {tmp}/file is a file, not a directory"),
    (["{run}", "--out", "{run}"], "--out {run} holds files but no earlier export"),
])
def test_export_errors_are_one_line(args, message, trained, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    places = {"tmp": tmp_path, "run": trained["mlp_vae"]}
    result = run_script("-m", "common.export", *[a.format(**places) for a in args])
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m common.export: error: "), lines
    assert message.format(**places) in lines[0], lines[0]
    assert (trained["mlp_vae"] / "config.json").exists()  # the run --out named is untouched


def test_kept_epochs_outlive_the_last_three_and_a_resumed_run_keeps_them(synthetic_mnist,
                                                                         tmp_path):
    """--keep-epochs 1: after 5 epochs the last 3 are 3, 4, 5 and epoch 1 is
    still there, with the weights a run of 1 epoch ends with; resumed to 7
    with --keep-epochs 6, the run keeps 1 and 6. An epoch not kept is one
    line naming those that were. A kept epoch is checkpointed whatever
    --checkpoint-every says."""
    out, one = tmp_path / "run", tmp_path / "one"
    assert train(gan_train, out, synthetic_mnist, "--model", "mlp_gan", "--epochs", 5,
                 "--keep-epochs", "1") == 0
    assert train(gan_train, one, synthetic_mnist, "--model", "mlp_gan", "--epochs", 1) == 0
    assert runs.RunDir(out).checkpoint_epochs() == [1, 3, 4, 5]
    kept = runs.open_run(out, epoch=1)
    assert kept.epoch == 1 and kept.epochs == [1, 3, 4, 5]
    np.testing.assert_array_equal(kept.sample(8, seed=2), runs.open_run(one).sample(8, seed=2))
    assert not np.array_equal(kept.sample(8, seed=2), runs.open_run(out).sample(8, seed=2))
    with pytest.raises(runs.UsageError, match="kept no checkpoint of epoch 2; it has epochs 1, "
                                              "3, 4, 5"):
        runs.check(out, 2)
    # a kept epoch is saved whatever --checkpoint-every says
    assert train(gan_train, out, synthetic_mnist, "--model", "mlp_gan", "--epochs", 7,
                 "--keep-epochs", "6", "--checkpoint-every", "4") == 0
    assert runs.RunDir(out).checkpoint_epochs() == [1, 5, 6, 7]
    assert sorted(p.name for p in (out / "checkpoints" / "kept").iterdir()) == [
        "ckpt-1.data-00000-of-00001", "ckpt-1.index", "ckpt-6.data-00000-of-00001",
        "ckpt-6.index"]


@pytest.mark.slow
def test_evaluate_sample_and_compare_open_a_kept_epoch(trained, tmp_path):
    run_dir = trained["mlp_vae"]
    evaluate = run_script("-m", "common.evaluation.evaluate", run_dir, "--epoch", 1,
                          "--samples", 32, "--iw-samples", 0)
    assert evaluate.returncode == 0, evaluate.stderr
    assert "mlp_vae at epoch 1: 32 samples" in evaluate.stdout
    assert json.loads((run_dir / "evaluation_at_epoch_0001.json").read_text())[
        "settings"]["epoch"] == 1
    sample = run_script("-m", "common.evaluation.sample", run_dir, "--epoch", 1, "--n", 8,
                        "--out", tmp_path / "x.npz")
    assert sample.returncode == 0 and "at epoch 1" in sample.stdout, sample.stderr
    compare = run_script("-m", "common.evaluation.compare", run_dir, trained["cvae"],
                         "--epoch", 1, "--samples", 32, "--iw-samples", 0, "--out",
                         tmp_path / "comparison")
    assert compare.returncode == 0, compare.stderr
    assert ("| mlp_vae | mlp_vae | mnist, grey levels in [0, 1], not binary: no likelihood | 1 | 1 |"
            in (tmp_path / "comparison" / "report.md").read_text())


def test_every_reader_refuses_an_epoch_not_kept(trained, tmp_path):
    """evaluate, sample, generate, export and compare: one line naming the
    epochs that were kept, before TensorFlow starts."""
    run_dir = trained["mlp_vae"]
    for command in (["common.evaluation.evaluate"], ["common.evaluation.sample", "--out",
                                                     tmp_path / "y.npz"],
                    ["common.generate", "--out", tmp_path / "y.png"], ["common.export"],
                    ["common.evaluation.compare", trained["cvae"]]):
        refused = run_script("-m", command[0], run_dir, *command[1:], "--epoch", 3)
        assert "I0000" not in refused.stderr and "oneDNN" not in refused.stderr  # no TensorFlow
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.strip().endswith("kept no checkpoint of epoch 3; it has epochs 1, 2 "
                                               "(a run keeps those of --keep-epochs and its last "
                                               "3)"), refused.stderr


@pytest.mark.parametrize("model", ["dcgan", "cvae"])
def test_generate_draws_what_sample_draws(model, trained, tmp_path):
    """The grid's tiles are sample's images for the seed (a cvae's of one
    digit); the same arguments write the same file."""
    loaded = runs.open_run(trained[model])
    digit = 4 if model == "cvae" else None
    for name in ("a.png", "b.png"):
        assert generate.main([str(trained[model]), "--n", "9", "--seed", "5", "--out",
                              str(tmp_path / name)] + (["--digit", "4"] if digit else [])) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    with Image.open(tmp_path / "a.png") as png:
        drawn = np.asarray(png)
    expected = images.grid(loaded.sample(9, seed=5, digit=digit), cols=3, scale=generate.SCALE)
    np.testing.assert_array_equal(drawn, expected)
    other = images.grid(loaded.sample(9, seed=6, digit=digit), cols=3, scale=generate.SCALE)
    assert not np.array_equal(drawn, other)


def test_slerp_walks_the_great_circle():
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    path = generate.slerp(a, b, np.linspace(0, 1, 5))[:, 0]
    np.testing.assert_allclose(path[0], a[0], atol=1e-12)
    np.testing.assert_allclose(path[-1], b[0], atol=1e-12)
    angles = np.arctan2(path[:, 1], path[:, 0])
    np.testing.assert_allclose(np.diff(angles), np.pi / 8)  # equal steps of the angle
    np.testing.assert_allclose(generate.slerp(a, 3 * a, [0.5])[0], 2 * a)  # parallel: a line


@pytest.mark.parametrize("model", ["dcgan", pytest.param("infogan", marks=pytest.mark.slow),
                                   "cvae"])
def test_interpolation_walks_from_one_draw_to_another(model, trained, tmp_path):
    """Each walk starts at a draw's image and ends at the image of another
    draw's normal inputs (noise, latent code), the others (a category, the
    continuous codes, a digit) its start's; InfoGAN's picture then sweeps
    its codes: the category grid and one sweep per continuous code below
    the walks."""
    model_ = runs.open_run(trained[model]).model
    walked = generate.walks(model_, 3, seed=2)
    drawn = {name: np.asarray(value) for name, value in model_.draw(6, seed=2).items()}
    ends = {name: value[3:] if model_.inputs[name].distribution.startswith("normal")
            else value[:3] for name, value in drawn.items()}
    starts = {name: value[:3] for name, value in drawn.items()}
    # measured: 6.0e-8 (both CPU kinds); bound 10x
    np.testing.assert_allclose(walked[:, 0], pictures(model_.generate(starts).numpy()), atol=6e-7)
    np.testing.assert_allclose(walked[:, -1], pictures(model_.generate(ends).numpy()), atol=6e-7)
    assert not np.allclose(walked[:, 0], walked[:, -1])
    assert walked.shape[:2] == (3, generate.STEPS)
    out = tmp_path / "walks.png"
    assert generate.main([str(trained[model]), "--n", "30", "--interpolate", "--out",
                          str(out)]) == 0
    height = Image.open(out).size[1]
    walks_height = 3 * (images.LABEL_HEIGHT + (2 + 28 + 2) * generate.SCALE)  # label, tiles
    assert height > 4 * walks_height if model == "infogan" else height == walks_height


def test_the_python_page_runs(synthetic_mnist, tmp_path):
    """docs/python.md's example of open_run, run as it is written, on a run
    in outputs/dcgan."""
    assert train(gan_train, Path("outputs/dcgan"), synthetic_mnist, "--epochs", 2,
                 "--keep-epochs", "1") == 0
    page = (ROOT / "docs" / "python.md").read_text()
    code = next(block for block in re.findall(r"```python\n(.*?)```", page, re.S)
                if "open_run" in block)
    scope = {}
    exec(code, scope)
    assert scope["images"].shape == (16, 28, 28) and scope["images"].dtype == np.float32
    assert scope["run"].epoch == 2 and scope["run"].epochs == [1, 2]
    assert scope["early"].epoch == 1
