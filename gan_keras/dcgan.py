"""The DCGAN of report 000 (SPEC.md "DCGAN"): the TensorFlow DCGAN tutorial's
Sequential generator and discriminator (after Radford et al. 2016), trained
with binary cross-entropy and one Adam(1e-4) per network."""
import keras
import tensorflow as tf
from keras import layers

from common.images import grid
from common.model import GenerativeModel
from gan_keras import losses


def make_generator(noise_dim=100):
    """noise -> 28x28x1 image in [-1, 1]; 2,330,944 parameters (report 000,
    section 4.1), of which the BatchNorm moving statistics are not trained."""
    return keras.Sequential([
        layers.Input((noise_dim,)),
        layers.Dense(7 * 7 * 256, use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Reshape((7, 7, 256)),
        layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False,
                               activation="tanh"),
    ], name="generator")


def make_discriminator():
    """28x28x1 image -> one logit (positive = real); 212,865 parameters."""
    return keras.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(64, 5, strides=2, padding="same"),
        layers.LeakyReLU(),
        layers.Dropout(0.3),
        layers.Conv2D(128, 5, strides=2, padding="same"),
        layers.LeakyReLU(),
        layers.Dropout(0.3),
        layers.Flatten(),
        layers.Dense(1),
    ], name="discriminator")


class DCGAN(GenerativeModel):
    name = "dcgan"
    metrics = ("g_loss", "d_loss", "d_real", "d_fake")
    plots = {"loss": ("g_loss", "d_loss"),
             "mean discriminator output: D(x) and D(G(z))": ("d_real", "d_fake")}

    def __init__(self, noise_dim=100, learning_rate=1e-4, seed=0):
        self.noise_dim = noise_dim
        self.generator = make_generator(noise_dim)
        self.discriminator = make_discriminator()
        self.generator_optimizer = keras.optimizers.Adam(learning_rate)
        self.discriminator_optimizer = keras.optimizers.Adam(learning_rate)
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self.optimizers = {"generator_optimizer": self.generator_optimizer,
                           "discriminator_optimizer": self.discriminator_optimizer}
        self.rng = tf.random.Generator.from_seed(seed)
        # The tutorial's `seed`: one noise batch reused for every epoch's picture.
        self.picture_noise = tf.random.Generator.from_seed(seed + 1).normal([16, noise_dim])

    def prepare(self, images):
        """uint8 [..., 28, 28] -> float32 [..., 28, 28, 1] in [-1, 1], as tanh."""
        return (tf.cast(images, tf.float32)[..., None] - 127.5) / 127.5

    @tf.function
    def train_step(self, batch):
        """The tutorial's step: both networks updated from one noise batch."""
        real, _ = batch
        noise = self.rng.normal([tf.shape(real)[0], self.noise_dim])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(noise, training=True)
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            g_loss = losses.bce_generator(fake_logits)
            d_loss = losses.bce_discriminator(real_logits, fake_logits)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
        self.discriminator_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars))
        return {"g_loss": g_loss, "d_loss": d_loss,
                "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
                "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits))}

    def sample(self, n, seed=0, batch=1000):
        noise = tf.random.Generator.from_seed(seed).normal([n, self.noise_dim])
        fakes = [self.generator(noise[i:i + batch], training=False) for i in range(0, n, batch)]
        return tf.concat(fakes, axis=0).numpy()[..., 0] * 0.5 + 0.5

    def images(self):
        """4x4 grid of the generator's images for the fixed noise batch."""
        fake = self.generator(self.picture_noise, training=False)
        return grid(fake.numpy()[..., 0] * 0.5 + 0.5, cols=4, scale=3)
