"""Every model is a keras.Model that `fit` trains: the snippet of
docs/python.md, run as a user runs it, and the Keras interface of each
model (compile with its optimizers, train_step's logs, metric trackers)."""
import json
import re

import numpy as np
import pytest
from conftest import ROOT, run_script
from PIL import Image


def snippet():
    """The Python block of docs/python.md that calls fit."""
    text = (ROOT / "docs" / "python.md").read_text()
    return next(block for block in re.findall(r"```python\n(.*?)```", text, re.S)
                if ".fit(" in block)


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
