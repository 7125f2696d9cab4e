"""What a generator-and-discriminator GAN shares, so that a model file only
defines its networks: the TensorFlow DCGAN tutorial's train step for any
loss of losses.py, the per-epoch 4x4 grid, and sampling."""
import tensorflow as tf
from keras import layers

from common.images import grid
from common.model import GenerativeModel, apply_gradients, make_optimizer
from gan_keras import losses


def torch_batch_norm():
    """Batch normalization with PyTorch's defaults (momentum 0.1 in its
    convention, 0.9 in Keras's; epsilon 1e-5), for the networks of the
    reports written in PyTorch (001, 002, 004). With Keras's own 0.99, the
    statistics used at inference lag about a hundred steps behind the
    training's, and early pictures and reconstructions come out wrong."""
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5)


class GAN(GenerativeModel):
    """A subclass sets `name` and `networks_by_preset`: {preset: (make
    generator from noise size, make discriminator)}."""

    metrics = ("g_loss", "d_loss", "d_real", "d_fake")
    plots = {"loss": ("g_loss", "d_loss"),
             "mean discriminator output on real (d_real) and generated (d_fake) images":
                 ("d_real", "d_fake")}
    networks_by_preset = {}

    def __init__(self, preset=None, *, noise_dim=100, loss="bce", learning_rate=1e-4,
                 generator_learning_rate=None, beta_1=0.9, seed=0):
        preset = preset or next(iter(self.networks_by_preset))
        make_generator, make_discriminator = self.networks_by_preset[preset]
        self.noise_dim, self.loss = noise_dim, losses.LOSSES[loss]
        self.generator = make_generator(noise_dim)
        self.discriminator = make_discriminator()
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self.generator_optimizer = self._adam(generator_learning_rate or learning_rate, beta_1,
                                              self.generator)
        self.discriminator_optimizer = self._adam(learning_rate, beta_1, self.discriminator)
        self.optimizers = {"generator_optimizer": self.generator_optimizer,
                           "discriminator_optimizer": self.discriminator_optimizer}
        self.rng = tf.random.Generator.from_seed(seed)
        # The tutorial's `seed`: one noise batch reused for every epoch's picture.
        self.picture_noise = tf.random.Generator.from_seed(seed + 1).normal([16, noise_dim])

    def _adam(self, learning_rate, beta_1, network):
        """Adam, with the betas of the loss's paper where it names them
        (WGAN-GP)."""
        beta_1, beta_2 = self.loss.betas or (beta_1, 0.999)
        return make_optimizer(learning_rate, network.trainable_variables, beta_1, beta_2)

    def prepare(self, images):
        """uint8 [..., 28, 28] -> float32 [..., 28, 28, 1] in [-1, 1], as tanh."""
        return (tf.cast(images, tf.float32)[..., None] - 127.5) / 127.5

    @tf.function
    def train_step(self, batch):
        """The tutorial's step: both networks' losses from one noise batch,
        one tape each. With several critic steps per generator step
        (WGAN-GP), the generator is updated on every critic_steps-th call."""
        real, _ = batch
        noise = self.rng.normal([tf.shape(real)[0], self.noise_dim])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(noise, training=True)
            real_out = self.discriminator(real, training=True)
            fake_out = self.discriminator(fake, training=True)
            g_loss = self.loss.generator(fake_out)
            d_loss = self.loss.real(real_out) + self.loss.fake(fake_out)
            if self.loss.penalty:
                d_loss += self.loss.penalty * losses.gradient_penalty(
                    self.discriminator, real, fake, self.rng)
        self._update(d_tape, d_loss, g_tape, g_loss)
        return {"g_loss": g_loss, "d_loss": d_loss,
                "d_real": tf.reduce_mean(self.loss.score(real_out)),
                "d_fake": tf.reduce_mean(self.loss.score(fake_out))}

    def _update(self, d_tape, d_loss, g_tape, g_loss):
        """The discriminator's step, then the generator's: on every call, or
        on every critic_steps-th with several critic steps (WGAN-GP)."""
        _apply(self.discriminator_optimizer, d_tape, d_loss, self.discriminator)
        if self.loss.critic_steps == 1:
            _apply(self.generator_optimizer, g_tape, g_loss, self.generator)
        else:
            tf.cond(self.discriminator_optimizer.iterations % self.loss.critic_steps == 0,
                    lambda: _apply(self.generator_optimizer, g_tape, g_loss, self.generator),
                    lambda: tf.constant(False))

    def sample(self, n, seed=0, batch=1000):
        noise = tf.random.Generator.from_seed(seed).normal([n, self.noise_dim])
        fakes = [self.generator(noise[i:i + batch], training=False) for i in range(0, n, batch)]
        return tf.concat(fakes, axis=0).numpy()[..., 0] * 0.5 + 0.5

    def images(self):
        """4x4 grid of the generator's images for the fixed noise batch."""
        fake = self.generator(self.picture_noise, training=False)
        return grid(fake.numpy()[..., 0] * 0.5 + 0.5, cols=4, scale=3)


def _apply(optimizer, tape, loss, network):
    """One optimizer step on `network`'s trainable variables."""
    apply_gradients(optimizer, tape, loss, network.trainable_variables)
    return tf.constant(True)
