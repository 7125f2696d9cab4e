"""InfoGAN (Chen et al. 2016) as report 004 trained it on MNIST and
Fashion-MNIST: the generator's input is 62 noise values,
a 10-way categorical code and 2 continuous codes; a Q head on the
discriminator's body predicts the codes from the image, and the variational
bound on their mutual information with it (weight 1) joins both networks'
losses."""
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from common.images import labelled_rows
from gan_keras import losses
from gan_keras.gan import GAN, torch_batch_norm

CATEGORIES, CONTINUOUS = 10, 2
INFO_WEIGHT = 1.0  # lambda of Chen et al. 2016, eq. 5
SWEEP = np.linspace(-2.0, 2.0, 10)  # past the training range [-1, 1], as the paper's figure 2


def infogan_generator(noise_dim=62):
    """Chen et al. 2016, appendix C.1 (MNIST): FC 1024, BN, ReLU; FC 7x7x128,
    BN, ReLU; 4x4 deconv 64 stride 2, BN, ReLU; 4x4 deconv 1 stride 2 (tanh:
    images are in [-1, 1] here)."""
    return keras.Sequential([
        layers.Input((noise_dim + CATEGORIES + CONTINUOUS,)),
        layers.Dense(1024), torch_batch_norm(), layers.ReLU(),
        layers.Dense(7 * 7 * 128), torch_batch_norm(), layers.ReLU(),
        layers.Reshape((7, 7, 128)),
        layers.Conv2DTranspose(64, 4, strides=2, padding="same"),
        torch_batch_norm(), layers.ReLU(),
        layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh"),
    ], name="generator")


def infogan_discriminator():
    """Chen et al. 2016, appendix C.1: a shared body (4x4 conv 64 stride 2,
    LeakyReLU 0.1; 4x4 conv 128 stride 2, BN, LeakyReLU; FC 1024, BN,
    LeakyReLU), then D's output (FC 1) and Q's (FC 128, BN, LeakyReLU; FC to
    10 categorical logits and the means of the 2 continuous codes)."""
    image = layers.Input((28, 28, 1))
    body = keras.Sequential([
        layers.Conv2D(64, 4, strides=2, padding="same"), layers.LeakyReLU(0.1),
        layers.Conv2D(128, 4, strides=2, padding="same"), torch_batch_norm(),
        layers.LeakyReLU(0.1),
        layers.Flatten(),
        layers.Dense(1024), torch_batch_norm(), layers.LeakyReLU(0.1),
    ], name="body")(image)
    q = keras.Sequential([
        layers.Dense(128), torch_batch_norm(), layers.LeakyReLU(0.1),
        layers.Dense(CATEGORIES + CONTINUOUS),
    ], name="q")(body)
    return keras.Model(image, [layers.Dense(1, name="d")(body), q], name="discriminator")


class InfoGAN(GAN):
    name = "infogan"
    networks_by_preset = {"chen2016": (infogan_generator, infogan_discriminator)}
    metrics = GAN.metrics + ("info_loss", "q_accuracy")
    plots = {**GAN.plots,
             "mutual-information loss (lower: the codes are better recovered)": ("info_loss",),
             "Q's accuracy on the categorical code of generated images": ("q_accuracy",)}

    def __init__(self, preset=None, *, seed=0, **kwargs):
        super().__init__(preset, seed=seed, **kwargs)
        fixed = tf.random.Generator.from_seed(seed + 2)
        # the picture: one row per category, one column per (noise, code) draw
        columns = self._codes(fixed, 10)
        self.picture_input = self._input(
            tf.tile(columns[0], [CATEGORIES, 1]), tf.repeat(tf.range(CATEGORIES), 10),
            tf.tile(columns[2], [CATEGORIES, 1]))
        self.sweep_noise = fixed.normal([1, self.noise_dim])

    def _codes(self, rng, n):
        """Noise ~ N(0, I), a uniform category, continuous codes ~ U(-1, 1)."""
        return (rng.normal([n, self.noise_dim]),
                rng.uniform([n], 0, CATEGORIES, dtype=tf.int32),
                rng.uniform([n, CONTINUOUS], -1.0, 1.0))

    def _input(self, noise, category, continuous):
        return tf.concat([noise, tf.one_hot(category, CATEGORIES), continuous], axis=1)

    @tf.function
    def train_step(self, batch):
        real, _ = batch
        noise, category, continuous = self._codes(self.rng, tf.shape(real)[0])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(self._input(noise, category, continuous), training=True)
            real_out, _ = self.discriminator(real, training=True)
            fake_out, q = self.discriminator(fake, training=True)
            info = self._info_loss(category, continuous, q)
            g_loss = self.loss.generator(fake_out) + INFO_WEIGHT * info
            d_loss = self.loss.real(real_out) + self.loss.fake(fake_out) + INFO_WEIGHT * info
            if self.loss.penalty:
                d_loss += self.loss.penalty * losses.gradient_penalty(
                    self.discriminator, real, fake, self.rng)
        self._update(d_tape, d_loss, g_tape, g_loss)
        guessed = tf.argmax(q[:, :CATEGORIES], axis=1, output_type=tf.int32)
        return {"g_loss": g_loss, "d_loss": d_loss,
                "d_real": tf.reduce_mean(self.loss.score(real_out)),
                "d_fake": tf.reduce_mean(self.loss.score(fake_out)),
                "info_loss": info,
                "q_accuracy": tf.reduce_mean(tf.cast(guessed == category, tf.float32))}

    @staticmethod
    def _info_loss(category, continuous, q):
        """Minus the variational lower bound L_I of Chen et al. 2016 (eq. 4),
        without its constant H(c): the cross-entropy of Q's categorical
        prediction, plus the negative log-likelihood of the continuous codes
        under a unit-variance Gaussian at Q's means (a factored Gaussian, as
        the paper), 0.5 (c - mu)^2 up to a constant."""
        q = tf.cast(q, tf.float32)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=category, logits=q[:, :CATEGORIES])
        squared = 0.5 * tf.reduce_sum((continuous - q[:, CATEGORIES:]) ** 2, axis=1)
        return tf.reduce_mean(cross_entropy + squared)

    def sample(self, n, seed=0, batch=1000):
        noise, category, continuous = self._codes(tf.random.Generator.from_seed(seed), n)
        codes = self._input(noise, category, continuous)
        fakes = [self.generator(codes[i:i + batch], training=False) for i in range(0, n, batch)]
        return tf.concat(fakes, axis=0).numpy()[..., 0] * 0.5 + 0.5

    def images(self):
        """The epoch's picture (one row per category, the same ten draws of
        noise and continuous codes in every row) and, for each continuous
        code, a sweep from -2 to 2 across the columns (one row per category,
        one noise vector, the other code at 0)."""
        pictures = {"image": self._rows(self.picture_input)}
        for code in range(CONTINUOUS):
            continuous = np.zeros((CATEGORIES * len(SWEEP), CONTINUOUS), np.float32)
            continuous[:, code] = np.tile(SWEEP, CATEGORIES)
            pictures[f"continuous_{code + 1}"] = self._rows(self._input(
                tf.tile(self.sweep_noise, [len(continuous), 1]),
                tf.repeat(tf.range(CATEGORIES), len(SWEEP)), continuous))
        return pictures

    def _rows(self, codes):
        images = self.generator(codes, training=False).numpy()[..., 0] * 0.5 + 0.5
        return labelled_rows([(f"category {c}", images[c * 10:(c + 1) * 10])
                              for c in range(CATEGORIES)])
