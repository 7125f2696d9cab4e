"""Every model is a keras.Model that `fit` trains: the snippet of
docs/python.md, run as a user runs it, and the Keras interface of each
model (compile with its optimizers, train_step's logs, metric trackers)."""
import json
import re

import numpy as np
import pytest
from conftest import ROOT, run_script
from PIL import Image


def snippets():
    """The Python blocks of docs/python.md that call fit, in order."""
    text = (ROOT / "docs" / "python.md").read_text()
    return [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if ".fit(" in block]


def snippet():
    return snippets()[0]


def test_the_docs_fit_snippet_trains_the_dcgan_and_the_conv_vae(synthetic_mnist, tmp_path):
    """Run in a process of its own from the checkout, on the synthetic MNIST:
    two epochs of each model, each epoch's picture written by our callback
    (the GAN's 4x4 grid, the VAE's panel), each loss an epoch's mean that
    moves from epoch 1 to 2."""
    code = (snippet().replace('"path/to/mnist"', repr(str(synthetic_mnist)))
            + "\nimport json\nprint(json.dumps([gan_history.history, vae_history.history]))\n")
    done = run_script("-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + code)
    assert done.returncode == 0, done.stderr[-3000:]
    gan, vae = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(gan) == {"g_loss", "d_loss", "d_real", "d_fake"}
    assert set(vae) == {"loss", "reconstruction", "kl"}
    for logs in (gan, vae):
        assert all(len(values) == 2 and values[0] != values[1] for values in logs.values())
    for model in ("dcgan", "conv_vae"):
        for epoch in (1, 2):
            with Image.open(tmp_path / "pictures" / model / f"image_at_epoch_000{epoch}.png") as p:
                assert p.mode == "L" and np.asarray(p).std() > 0


@pytest.mark.parametrize("build", ["dcgan", "conv_vae"])
def test_train_step_logs_the_epoch_s_mean_of_each_step_s_losses(build, synthetic_mnist):
    """Keras's train_step (what fit calls) returns, for each of log_names,
    the mean of the step's values since the metric trackers were last reset
    (fit resets them each epoch), and the model's `metrics` are those
    trackers; its optimizers are the ones compile was given."""
    import keras
    import tensorflow as tf

    from common import data
    from gan_keras.dcgan import DCGAN
    from vae_keras.conv_vae import ConvVAE

    mnist = data.load("mnist", synthetic_mnist)
    model = DCGAN(seed=1) if build == "dcgan" else ConvVAE(mnist, seed=1)
    assert isinstance(model, keras.Model)
    optimizers = {name: keras.optimizers.SGD(0.01) for name in model.optimizers}
    model.compile(**optimizers)
    assert all(model.optimizers[name] is optimizer for name, optimizer in optimizers.items())
    assert [tracker.name for tracker in model.metrics] == list(model.log_names)

    seen, step = [], model.step
    model.step = lambda batch: seen.append({k: float(v) for k, v in step(batch).items()}) or {
        k: tf.constant(v) for k, v in seen[-1].items()}
    batches = [(model.prepare(mnist.train_images[i:i + 16]), mnist.train_labels[i:i + 16])
               for i in (0, 16, 32)]
    model.train_step(batches[0])
    logs = model.train_step(batches[1])
    for name in model.log_names:
        assert float(logs[name]) == pytest.approx((seen[0][name] + seen[1][name]) / 2, rel=1e-6)
    model.reset_metrics()
    logs = model.train_step(batches[2])
    assert {name: float(value) for name, value in logs.items()} == pytest.approx(seen[2], rel=1e-6)
    assert int(next(iter(optimizers.values())).iterations) == 3


def test_the_docs_run_callbacks_write_a_run_directory_under_fit(synthetic_mnist, tmp_path):
    """The second fit of docs/python.md, after the first, as a user runs it:
    `fit` with the run's callbacks writes a run directory like train.py's:
    history.csv with a row per epoch (its losses equal to fit's history, its
    timing filled in), the pictures, the page, TensorBoard events, and a
    checkpoint per epoch that restores into a fresh model."""
    first, second = snippets()[:2]
    code = (first.replace('"path/to/mnist"', repr(str(synthetic_mnist))) + second
            + "\nimport json\nprint(json.dumps(run_history.history))\n")
    done = run_script("-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + code)
    assert done.returncode == 0, done.stderr[-3000:]
    fitted = json.loads(done.stdout.strip().splitlines()[-1])
    assert "Time for epoch 2 is" in done.stdout

    from common.rundir import RunDir

    run = RunDir(tmp_path / "runs" / "dcgan_fit")
    history = run.read_table("history")
    assert [row["epoch"] for row in history] == [1, 2]
    for name in ("g_loss", "d_loss"):
        assert [row[name] for row in history] == pytest.approx(fitted[name], rel=1e-6)
    assert all(row["seconds"] >= row["train_seconds"] > 0 and row["images_per_sec"] > 0
               for row in history)
    assert sorted(run.pictures()["image"]) == [1, 2]
    page = (run.path / "index-data.js").read_text()  # the page's data: both epochs, finished
    assert '"history":{"epoch":[1,2]' in page and '"training":false' in page
    assert list(run.logs.glob("events.out.tfevents.*"))
    assert all((run.path / name).stat().st_size > 0
               for name in ("progress.gif", "losses.png", "timing.png"))
    assert sorted(run.checkpoint_epochs()) == [1, 2]

    from common.checkpoints import restore
    from gan_keras.dcgan import DCGAN

    assert restore(DCGAN(seed=5), run, 2) == 2


def test_stop_on_non_finite_stops_fit_before_the_epoch_is_written(synthetic_mnist, tmp_path):
    """A weight made NaN as `fit`'s second epoch begins: fit raises
    NonFinite at that epoch's first batch, and history.csv and the
    checkpoints end at epoch 1 (keras.callbacks.TerminateOnNaN would let
    the epoch's row and checkpoint be written)."""
    import keras

    from common import data
    from common.callbacks import EpochTiming, HistoryCSV, NonFinite, StopOnNonFinite
    from common.checkpoints import Checkpoints
    from common.rundir import RunDir
    from vae_keras.conv_vae import ConvVAE

    mnist = data.load("mnist", synthetic_mnist).first(64)
    model = ConvVAE(mnist, seed=1)
    run = RunDir(tmp_path / "run")
    run.path.mkdir()

    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                weight = model.trainable_weights[-1]  # the decoder's last: no ReLU hides it
                weight.assign(np.full(weight.shape, np.nan, "float32"))

    with pytest.raises(NonFinite, match="loss nan"):
        model.fit(model.prepare(mnist.train_images), mnist.train_labels, batch_size=32,
                  epochs=3, verbose=0, callbacks=[Poison(), EpochTiming(64), HistoryCSV(run),
                                                  Checkpoints(model, run), StopOnNonFinite()])
    assert [row["epoch"] for row in run.read_table("history")] == [1]
    assert run.checkpoint_epochs() == [1]
