"""The DCGAN against report 000's model summaries, and its train step."""
import math

import numpy as np
import pytest
import tensorflow as tf

from gan_keras import losses
from gan_keras.dcgan import DCGAN, tutorial_discriminator, tutorial_generator

# Report 000, section 4.1, the two Keras model summaries: (layer type,
# output shape without the batch dimension, parameters), in order.
GENERATOR_TABLE = [
    ("Dense", (12544,), 1254400),
    ("BatchNormalization", (12544,), 50176),
    ("LeakyReLU", (12544,), 0),
    ("Reshape", (7, 7, 256), 0),
    ("Conv2DTranspose", (7, 7, 128), 819200),
    ("BatchNormalization", (7, 7, 128), 512),
    ("LeakyReLU", (7, 7, 128), 0),
    ("Conv2DTranspose", (14, 14, 64), 204800),
    ("BatchNormalization", (14, 14, 64), 256),
    ("LeakyReLU", (14, 14, 64), 0),
    ("Conv2DTranspose", (28, 28, 1), 1600),
]
DISCRIMINATOR_TABLE = [
    ("Conv2D", (14, 14, 64), 1664),
    ("LeakyReLU", (14, 14, 64), 0),
    ("Dropout", (14, 14, 64), 0),
    ("Conv2D", (7, 7, 128), 204928),
    ("LeakyReLU", (7, 7, 128), 0),
    ("Dropout", (7, 7, 128), 0),
    ("Flatten", (6272,), 0),
    ("Dense", (1,), 6273),
]


def _trainable(model):
    return sum(math.prod(v.shape) for v in model.trainable_variables)


@pytest.mark.parametrize("make, table, total, trainable", [
    (tutorial_generator, GENERATOR_TABLE, 2_330_944, 2_305_472),
    (tutorial_discriminator, DISCRIMINATOR_TABLE, 212_865, 212_865),
])
def test_networks_match_the_reports_summary(make, table, total, trainable):
    model = make()
    assert model.count_params() == total
    assert _trainable(model) == trainable
    assert sum(params for _, _, params in table) == total  # the table itself adds up
    found = [(type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params())
             for layer in model.layers]
    assert found == table


def test_prepare_scales_to_the_tanh_range():
    model = DCGAN(seed=0)
    out = model.prepare(tf.constant(np.array([[[0, 255] * 14] * 28], np.uint8)))
    assert out.shape == (1, 28, 28, 1) and out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy()[0, 0, :2, 0], [-1.0, 1.0])


def test_bce_losses_by_hand():
    zero = tf.zeros([8, 1])
    bce = losses.BCE
    assert float(bce.generator(zero)) == pytest.approx(math.log(2), rel=1e-6)
    assert float(bce.real(zero) + bce.fake(zero)) == pytest.approx(2 * math.log(2), rel=1e-6)
    confident_real, confident_fake = tf.fill([8, 1], 20.0), tf.fill([8, 1], -20.0)
    assert float(bce.real(confident_real) + bce.fake(confident_fake)) < 1e-6
    # measured: 0 (fp32, bf16 and AVX512_CORE CPUs; 20 + 2e-9 rounds to 20 in float32)
    assert float(bce.generator(confident_fake)) == pytest.approx(20.0, rel=1e-6)


def test_one_train_step_changes_both_networks():
    model = DCGAN(seed=0)
    before = {name: [v.numpy().copy() for v in net.variables]
              for name, net in model.networks.items()}
    images = model.prepare(tf.constant(np.random.default_rng(0).integers(0, 256, (16, 28, 28)),
                                       tf.uint8))
    out = model.step((images, tf.zeros([16], tf.int32)))
    assert set(out) == set(model.log_names)
    assert all(np.isfinite(float(v)) for v in out.values())
    assert 0 < float(out["d_real"]) < 1 and 0 < float(out["d_fake"]) < 1
    for name, net in model.networks.items():
        for old, variable in zip(before[name], net.trainable_variables):
            assert not np.array_equal(old, variable.numpy()), f"{name}: {variable.path} unchanged"
    assert int(model.generator_optimizer.iterations) == 1
    assert int(model.discriminator_optimizer.iterations) == 1


def test_picture_is_a_deterministic_4x4_grid():
    model = DCGAN(seed=0)
    picture = model.images()
    assert picture.dtype == np.uint8 and picture.shape == (3 * (4 * 28 + 5 * 2),) * 2
    np.testing.assert_array_equal(picture, model.images())  # fixed noise, inference mode


def test_the_train_step_is_the_tutorial_s():
    """From the same weights, batches and noise, three of our steps in one
    graph call (the shared loop's while loop) take the networks where three
    of the tutorial's steps take them (bench/ref_dcgan.py: both gradients
    from one noise batch, then the generator's and the discriminator's
    updates): to the last bit on one CPU, to 3e-8 on another (oneDNN sums in
    an order of its own per machine); the bound, 1e-6, is a hundredth of the
    step Adam takes at lr 1e-4, the size by which a different loss, noise
    draw or update would move a weight. The discriminator's dropout is off
    in both: its masks are the only randomness the two cannot share. (In a
    tf.function the order of the two updates does not matter: the gradients
    use the weights the forward pass read.)"""
    import keras

    from common import checkpoints, training

    ours = DCGAN(seed=3)
    generator, discriminator = tutorial_generator(), tutorial_discriminator()
    generator.set_weights(ours.generator.get_weights())
    discriminator.set_weights(ours.discriminator.get_weights())
    for network in (ours.discriminator, discriminator):
        for layer in network.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    g_opt, d_opt = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
    noise = tf.random.Generator.from_seed(3)  # ours draws its noise from the same stream

    @tf.function
    def tutorial_step(images):
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated = generator(noise.normal([tf.shape(images)[0], 100]), training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                         + cross_entropy(tf.zeros_like(fake_output), fake_output))
        g_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
        d_grads = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        g_opt.apply_gradients(zip(g_grads, generator.trainable_variables))
        d_opt.apply_gradients(zip(d_grads, discriminator.trainable_variables))

    start = ours.generator.variables[0].numpy().copy()
    rng = np.random.default_rng(0)
    batches = [ours.prepare(tf.constant(rng.integers(0, 256, (32, 28, 28)), tf.uint8))
               for _ in range(3)]
    for images in batches:
        tutorial_step(images)
    labels = tf.zeros([32], tf.int32)
    iterator = iter(tf.data.Dataset.from_tensor_slices(
        (tf.stack(batches), tf.stack([labels] * 3))))
    run_steps = training._stepper(ours.step, None, False,
                                  checkpoints.Progress(ours.log_names), ours.generator.weights)
    assert bool(run_steps(iterator, 3))  # finite
    for mine, theirs in ((ours.generator, generator), (ours.discriminator, discriminator)):
        for a, b in zip(mine.weights, theirs.weights):  # BatchNorm's statistics too
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6,
                                       err_msg=a.path)
    moved = np.abs(ours.generator.variables[0].numpy() - start).max()
    assert moved > 1e-5  # both trained: three Adam steps of 1e-4, not none
