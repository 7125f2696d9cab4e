"""The conv VAE: its networks, the reparameterization layer, the ELBO against
hand computations, the report's panel, and short runs of vae_keras/train.py."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers
from PIL import Image

from conftest import history
from common import data as data_module
from common.images import LABEL_HEIGHT
from vae_keras import elbo, train
from vae_keras.conv_vae import ConvVAE, make_decoder, make_encoder
from vae_keras.vae import PANEL_ROWS, Reparameterize, VAE


def fake_data(test_images, test_labels=None):
    n = len(test_images)
    labels = np.zeros(n, np.uint8) if test_labels is None else test_labels
    return data_module.Data("mnist", "test", test_images, labels, test_images, labels)


def test_networks_are_the_tutorials():
    encoder, decoder = make_encoder(2), make_decoder(2)
    # encoder: 28 -> 13 -> 6 (3x3, stride 2, no padding); 6*6*64 = 2304 features
    assert [tuple(l.output.shape[1:]) for l in encoder.layers] == [
        (13, 13, 32), (6, 6, 64), (2304,), (4,)]
    assert encoder.count_params() == (9 * 32 + 32) + (9 * 32 * 64 + 64) + (2304 * 4 + 4)
    assert [tuple(l.output.shape[1:]) for l in decoder.layers] == [
        (1568,), (7, 7, 32), (14, 14, 64), (28, 28, 32), (28, 28, 1)]
    assert decoder.count_params() == ((2 * 1568 + 1568) + (9 * 32 * 64 + 64)
                                      + (9 * 64 * 32 + 32) + (9 * 32 + 1))
    assert make_encoder(8).layers[-1].output.shape[-1] == 16


def test_reparameterization_has_the_right_mean_and_variance():
    n = 200_000
    mean = tf.tile([[1.0, -2.0]], [n, 1])
    logvar = tf.tile([[math.log(4.0), math.log(0.25)]], [n, 1])
    z = Reparameterize(seed=3)(mean, logvar).numpy()
    std = np.array([2.0, 0.5])
    # sample mean within 5 standard errors, variance within 2%
    np.testing.assert_array_less(np.abs(z.mean(axis=0) - [1.0, -2.0]), 5 * std / math.sqrt(n))
    np.testing.assert_allclose(z.var(axis=0), std**2, rtol=0.02)
    eps = tf.constant([[0.5, -1.0]])
    np.testing.assert_allclose(Reparameterize()(mean[:1], logvar[:1], eps), [[2.0, -2.5]])


def test_elbo_terms_by_hand():
    x = tf.constant([[1.0, 0.0]])
    logits = tf.constant([[0.0, math.log(3.0)]])  # p = 0.5 and 0.75
    z, mean, logvar = tf.constant([[1.0]]), tf.constant([[0.5]]), tf.constant([[0.0]])
    reconstruction, kl = elbo.elbo_terms(x, logits, z, mean, logvar, kl="analytic")
    assert float(reconstruction[0]) == pytest.approx(-(math.log(0.5) + math.log(0.25)))
    assert float(kl[0]) == pytest.approx(0.5 * (1 + 0.25 - 1 - 0))
    _, kl_mc = elbo.elbo_terms(x, logits, z, mean, logvar, kl="mc")
    # log N(1; 0.5, 1) - log N(1; 0, 1) = -0.125 + 0.5
    assert float(kl_mc[0]) == pytest.approx(0.375)


def test_kl_is_never_negative_and_mc_estimates_it():
    rng = np.random.default_rng(0)
    mean = tf.constant(rng.normal(0, 3, (1000, 4)), tf.float32)
    logvar = tf.constant(rng.uniform(-8, 4, (1000, 4)), tf.float32)
    analytic = elbo.kl_analytic(mean, logvar).numpy()
    assert (analytic >= 0).all()
    assert float(elbo.kl_analytic(tf.zeros([1, 4]), tf.zeros([1, 4]))[0]) == 0.0
    samples = 20_000
    m, lv = tf.constant([[0.7, -0.3]]), tf.constant([[-1.0, 0.5]])
    z = Reparameterize(seed=1)(tf.tile(m, [samples, 1]), tf.tile(lv, [samples, 1]))
    estimate = elbo.kl_mc(z, m, lv).numpy()
    assert estimate.min() < 0  # one sample can be negative...
    assert estimate.mean() == pytest.approx(float(elbo.kl_analytic(m, lv)[0]), abs=0.02)  # ...the mean is KL


def test_test_elbo_of_a_tiny_model_equals_a_hand_computation():
    """A 1-D latent VAE whose encoder and decoder ignore their input: q(z|x)
    = N(0.5, e^0.4), p(x|z) Bernoulli with logit b + w z per pixel."""
    encoder = keras.Sequential([layers.Input((28, 28, 1)), layers.Flatten(),
                                layers.Dense(2, kernel_initializer="zeros",
                                             bias_initializer=keras.initializers.Constant([0.5, 0.4]))])
    decoder = keras.Sequential([layers.Input((1,)),
                                layers.Dense(784, kernel_initializer=keras.initializers.Constant(0.3),
                                             bias_initializer=keras.initializers.Constant(-1.0)),
                                layers.Reshape((28, 28, 1))])
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28)).astype(np.uint8)
    class Tiny(VAE):
        name = "tiny"
        networks_by_preset = {"by hand": (lambda latent, channels: encoder,
                                          lambda latent, channels: decoder)}

    for kl in ("mc", "analytic"):
        model = Tiny(fake_data(images), latent_dim=1, kl=kl)
        got = model.test_metrics()["test_elbo"]

        x = (images / 255.0 > 0.5).reshape(7, 784).astype(np.float64)
        eps = model.test_eps.numpy()[:, 0].astype(np.float64)
        z = 0.5 + math.exp(0.2) * eps
        p = 1 / (1 + np.exp(-(-1.0 + 0.3 * z)))
        log_px = (x * np.log(p[:, None]) + (1 - x) * np.log(1 - p[:, None])).sum(axis=1)
        if kl == "analytic":
            divergence = np.full(7, 0.5 * (math.exp(0.4) + 0.25 - 1 - 0.4))
        else:
            log_q = -0.5 * ((z - 0.5) ** 2 / math.exp(0.4) + 0.4 + math.log(2 * math.pi))
            log_p = -0.5 * (z**2 + math.log(2 * math.pi))
            divergence = log_q - log_p
        # float32 against float64: a relative gap of 4.9e-8 measured (both CPU kinds)
        assert got == pytest.approx(float(np.mean(log_px - divergence)), rel=5e-7)


def test_panel_has_seven_labelled_rows_of_ten():
    images = np.random.default_rng(1).integers(0, 256, (20, 28, 28)).astype(np.uint8)
    model = ConvVAE(fake_data(images), seed=0)
    panel = model.images()
    scale, pad = 2, 2
    row_height = LABEL_HEIGHT + (28 + 2 * pad) * scale
    assert panel.dtype == np.uint8
    assert panel.shape == (len(PANEL_ROWS) * row_height, (10 * (28 + pad) + pad) * scale)
    assert len(PANEL_ROWS) == 7

    def tiles(row):
        top = row * row_height + LABEL_HEIGHT + pad * scale
        return [panel[top:top + 28 * scale:scale,
                      (pad + i * (28 + pad)) * scale:(pad + i * (28 + pad) + 28) * scale:scale]
                for i in range(10)]

    originals = (images[:10] > 127.5) * 255  # the first 10 test digits, binarized
    np.testing.assert_array_equal(np.stack(tiles(0)), originals)
    for row in (1, 2, 4, 5):  # samples and modes are binary
        assert set(np.unique(np.stack(tiles(row)))) <= {0, 255}
    for row in (3, 6):  # means are probabilities
        assert len(np.unique(np.stack(tiles(row)))) > 2
    assert panel[0:LABEL_HEIGHT].max() == 255  # the label's text is drawn
    np.testing.assert_array_equal(panel, model.images())  # fixed noise: deterministic


def test_one_step_changes_encoder_and_decoder_and_dynamic_binarization_is_fresh():
    images = np.random.default_rng(2).integers(0, 256, (32, 28, 28)).astype(np.uint8)
    model = ConvVAE(fake_data(images), binarize="dynamic", seed=0)
    x = model.prepare(images)
    assert 2 < len(np.unique(x.numpy())) and x.numpy().max() <= 1.0  # grey levels kept
    before = [v.numpy().copy() for v in model.vae.trainable_variables]
    out = model.step((x, tf.zeros([32], tf.int32)))
    assert set(out) == set(model.log_names)
    assert float(out["loss"]) == pytest.approx(float(out["reconstruction"] + out["kl"]),
                                               rel=1e-6)  # measured: 0
    changed = [not np.array_equal(b, v.numpy()) for b, v in zip(before, model.vae.trainable_variables)]
    assert all(changed)
    first = model.rng.uniform([3])  # the binarization stream moves on every draw
    assert not np.array_equal(first.numpy(), model.rng.uniform([3]).numpy())


def run(data_dir, out, *args):
    return train.main(["--data-dir", str(data_dir), "--out", str(out), *map(str, args)])


@pytest.mark.dynamics(seed=1)
def test_short_run_writes_every_output_and_its_test_elbo_improves(synthetic_mnist, tmp_path,
                                                                  dynamics_seed, margin):
    out = tmp_path / "run"
    assert run(synthetic_mnist, out, "--epochs", 4, "--seed", dynamics_seed,
               "--eval-every", 3) == 0
    rows = history(out)
    assert list(rows[0]) == ["epoch", "seconds", "train_seconds", "images_per_sec", "loss",
                             "reconstruction", "kl", "test_elbo", "host_mb"]
    assert [r["test_elbo"] != "" for r in rows] == [False, False, True, True]  # 3, and the last
    for r in rows:
        # three 7-digit values and float32 sums: within 1.3e-6; measured 1.3e-7 (both kinds)
        assert float(r["loss"]) == pytest.approx(float(r["reconstruction"]) + float(r["kl"]),
                                                 rel=2e-6)
    # measured over 5 seeds (--dynamics-seeds 1 2 3 4 5, 2026-12-01): gains of 1.73 to 3.72
    # nats from epoch 3 to 4, 2.84 to 5.07 from epoch 1 to 3
    margin.above("test_elbo gain, epoch 3 to 4", float(rows[-1]["test_elbo"])
                 - float(rows[2]["test_elbo"]), 0)

    first = tmp_path / "every"
    run(synthetic_mnist, first, "--epochs", 3, "--seed", dynamics_seed)
    elbos = [float(r["test_elbo"]) for r in history(first)]
    margin.above("test_elbo gain, epoch 1 to 3", elbos[-1] - elbos[0], 1.0)  # nats per image

    for name in ("latent_manifold.png", "latent_scatter.png", "losses.png", "timing.png",
                 "progress.gif", "images/image_at_epoch_0004.png"):
        with Image.open(out / name) as picture:
            picture.load()
    with Image.open(out / "latent_manifold.png") as manifold:
        assert manifold.size == (20 * 28, 20 * 28)


@pytest.mark.slow
def test_no_latent_figures_beyond_two_dimensions(synthetic_mnist, tmp_path):
    out = tmp_path / "run"
    assert run(synthetic_mnist, out, "--epochs", 1, "--latent-dim", 3, "--seed", 1) == 0
    assert not (out / "latent_manifold.png").exists()
    assert not (out / "latent_scatter.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("options", [(), ("--binarize", "dynamic", "--kl", "analytic")])
def test_resumed_run_equals_an_uninterrupted_one(synthetic_mnist, tmp_path, options):
    run(synthetic_mnist, tmp_path / "straight", "--epochs", 2, "--seed", 4, *options)
    run(synthetic_mnist, tmp_path / "resumed", "--epochs", 1, "--seed", 4, *options)
    run(synthetic_mnist, tmp_path / "resumed", "--epochs", 2, *options)
    straight, resumed = history(tmp_path / "straight"), history(tmp_path / "resumed")
    assert [r["epoch"] for r in resumed] == ["1", "2"]
    for column in ("loss", "reconstruction", "kl", "test_elbo"):
        np.testing.assert_allclose([float(r[column]) for r in resumed],
                                   [float(r[column]) for r in straight], rtol=1e-6)


@pytest.mark.slow
@pytest.mark.dynamics(seed=1)
def test_real_mnist_conv_vae_learns_in_one_epoch(real_mnist, tmp_path, dynamics_seed, margin):
    """10,000 real digits, one epoch at the defaults (313 steps): the test
    ELBO moves from the -543 nats of an untrained decoder (784 ln 2) past
    -300 (measured: -243 and -229 for seeds 1 and 2)."""
    out = tmp_path / "run"
    assert run(real_mnist, out, "--epochs", 1, "--train-size", 10_000, "--seed", dynamics_seed,
               "--metrics-every", 0) == 0
    # measured over 5 seeds (--dynamics-seeds 1 2 3 4 5, 2026-12-01): -235.8 to -227.3
    margin.above("test_elbo", float(history(out)[0]["test_elbo"]), -300)


def test_beta_weights_the_kl_term_of_the_loss_and_not_the_test_elbo(synthetic_mnist, tmp_path):
    """--beta 4, a beta-VAE (Higgins et al. 2017): each epoch's loss is its
    reconstruction plus 4 times its KL; the test ELBO of the same weights is
    the one a beta-1 VAE computes."""
    out = tmp_path / "beta"
    assert run(synthetic_mnist, out, "--model", "mlp_vae", "--epochs", 2, "--seed", 1,
               "--beta", 4) == 0
    for row in history(out):
        # three 7-digit values and float32 sums: within 1.3e-6; measured 1.9e-8
        assert float(row["loss"]) == pytest.approx(
            float(row["reconstruction"]) + 4 * float(row["kl"]), rel=2e-6)
    from common import runs

    beta = runs.open_run(out).model
    plain = type(beta)(data_module.load("mnist", synthetic_mnist), latent_dim=beta.latent_dim,
                       kl=beta.kl, binarize=beta.binarize, seed=1)  # the same model, beta 1
    plain.vae.set_weights(beta.vae.get_weights())
    assert beta.beta == 4 and plain.beta == 1
    assert plain.test_metrics() == beta.test_metrics()


def test_the_step_decay_multiplies_the_rate_after_each_milestone_epoch():
    """--lr-milestones 1,3 --lr-decay 0.5 on epochs of 4 steps: epoch 1 at
    the rate, epochs 2 and 3 at half, from epoch 4 a quarter (PyTorch's
    MultiStepLR, stepped at the end of each epoch)."""
    from common.model import step_decay

    rates = step_decay(1.0, (1, 3), 0.5, steps_per_epoch=4)
    assert [float(rates(step)) for step in range(16)] == [1.0] * 4 + [0.5] * 8 + [0.25] * 4
    assert step_decay(1e-3, (), 0.5, 4) == 1e-3  # no milestones: the constant rate


def test_a_run_resumed_at_a_milestone_goes_on_at_the_decayed_rate(synthetic_mnist, tmp_path):
    """Epochs 1 + 1 resumed equal 2 straight with the rate halved after
    epoch 1, the optimizer resumed at half the rate; without the milestone
    epoch 2 differs, so the schedule is what made it. A rollback, which
    halves a constant rate, is refused beside it in one line."""
    from common import runs

    schedule = ("--model", "mlp_vae", "--seed", 4, "--lr-milestones", 1, "--lr-decay", 0.5)
    run(synthetic_mnist, tmp_path / "straight", "--epochs", 2, *schedule)
    run(synthetic_mnist, tmp_path / "resumed", "--epochs", 1, *schedule)
    run(synthetic_mnist, tmp_path / "resumed", "--epochs", 2, *schedule)
    run(synthetic_mnist, tmp_path / "constant", "--epochs", 2, *schedule[:4])
    straight, resumed = history(tmp_path / "straight"), history(tmp_path / "resumed")
    constant = history(tmp_path / "constant")
    for column in ("loss", "test_elbo"):
        assert [r[column] for r in resumed] == [r[column] for r in straight]
    assert constant[0]["loss"] == straight[0]["loss"] and constant[1]["loss"] != straight[1]["loss"]
    optimizer = runs.open_run(tmp_path / "resumed").model.optimizer
    assert float(optimizer.learning_rate) == pytest.approx(1e-3 / 2)  # report 004's 1e-3, halved
    with pytest.raises(SystemExit) as refused:
        run(synthetic_mnist, tmp_path / "rollback", *schedule, "--on-nonfinite", "rollback")
    assert refused.value.code == 2


def test_the_rezende2015_preset_is_pythae_s_vae_on_binarized_mnist(synthetic_mnist, tmp_path):
    """784-400-40 and its mirror (676,864 weights), Adam with pythae's
    MultiStepLR, on binarized MNIST by default: its numbers are a
    likelihood, on the data config.json names."""
    import json

    from common import runs

    out = tmp_path / "rezende2015"
    assert run(synthetic_mnist, out, "--model", "mlp_vae", "--preset", "rezende2015",
               "--epochs", 1, "--metrics-every", 0) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["args"]["dataset"] == "binarized_mnist" and config["args"]["latent_dim"] == 40
    assert config["args"]["lr_milestones"] == [200, 350, 500, 750, 1000]
    assert config["test_data"] == "binarized_mnist, one fixed Bernoulli draw of the grey levels " \
                                  "(seed 2008)"
    model = runs.open_run(out).model
    assert model.parameter_count() == 676_864 and model.has_likelihood
    assert [layer.units for layer in model.vae.encoder.layers if hasattr(layer, "units")] == [400, 80]
