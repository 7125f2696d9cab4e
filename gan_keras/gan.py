"""What a generator-and-discriminator GAN shares, so that a model file only
defines its networks: the TensorFlow DCGAN tutorial's train step for any
loss of losses.py, PacGAN's packing of the discriminator's input, the
per-epoch 4x4 grid, and sampling."""
import keras
import tensorflow as tf

from common.images import grid, pictures
from common.layers import batch_normalization
from common.model import GenerativeModel, Input, apply_gradients, with_channels
from gan_keras import losses


def torch_batch_norm():
    """Batch normalization with PyTorch's defaults (momentum 0.1 in its
    convention, 0.9 in Keras's; epsilon 1e-5), for the networks of the
    reports written in PyTorch (001, 002, 004). With Keras's own 0.99, the
    statistics used at inference lag about a hundred steps behind the
    training's, and early pictures and reconstructions come out wrong."""
    return batch_normalization(momentum=0.9, epsilon=1e-5)


def pack(images, m):
    """PacGAN's packing (Lin et al. 2018, section 3): each run of m
    consecutive images of the batch becomes one input of m times their
    channels, image j in channels j C to (j + 1) C - 1 as in the authors'
    code, so that the discriminator judges m samples at once: [n, 28, 28, C]
    -> [n // m, 28, 28, m C] (the last n % m images left out). m = 1 is the
    images themselves, no operation added."""
    if m == 1:
        return images
    n, side, channels = tf.shape(images)[0] // m * m, images.shape[1], images.shape[3]
    grouped = tf.reshape(images[:n], [-1, m, side, side, channels])
    return tf.reshape(tf.transpose(grouped, [0, 2, 3, 1, 4]), [-1, side, side, m * channels])


class GAN(GenerativeModel):
    """A subclass sets `name` and `networks_by_preset`: {preset: (make
    generator from noise size and channels, make discriminator from the
    channels of its input)}. The generator makes images of `channels`
    (1, or 3 for Stacked MNIST); the discriminator judges `pack` of them at
    once (PacGAN, `pack`). It is made compiled with the report's Adams
    (`learning_rate`, the generator's `generator_learning_rate` where it
    differs); `compile` takes others."""

    log_names = ("g_loss", "d_loss", "d_real", "d_fake")
    plots = {"loss": ("g_loss", "d_loss"),
             "mean discriminator output on real (d_real) and generated (d_fake) images":
                 ("d_real", "d_fake")}
    networks_by_preset = {}

    def __init__(self, preset=None, *, noise_dim=100, loss="bce", learning_rate=1e-4,
                 generator_learning_rate=None, beta_1=0.9, seed=0, channels=1, pack=1):
        super().__init__()
        preset = preset or next(iter(self.networks_by_preset))
        make_generator, make_discriminator = self.networks_by_preset[preset]
        self.noise_dim, self.gan_loss, self.pack = noise_dim, losses.LOSSES[loss], pack
        self.batches_per_step = self.gan_loss.critic_steps
        self.inputs = {"noise": Input((noise_dim,), "float32", "normal, N(0, I)")}
        self.generator = make_generator(noise_dim, channels)
        self.discriminator = self.make_discriminator(make_discriminator, channels)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self.exported = {"generator": self.generator}
        self.rng = tf.random.Generator.from_seed(seed)
        # The tutorial's `seed`: one noise batch reused for every epoch's picture.
        self.picture_noise = tf.random.Generator.from_seed(seed + 1).normal([16, noise_dim])
        # Adam, with the betas of the loss's paper where it names them (WGAN-GP)
        beta_1, beta_2 = self.gan_loss.betas or (beta_1, 0.999)
        self.compile(generator_optimizer=keras.optimizers.Adam(
                         generator_learning_rate or learning_rate, beta_1, beta_2),
                     discriminator_optimizer=keras.optimizers.Adam(learning_rate, beta_1, beta_2))

    def compile(self, generator_optimizer, discriminator_optimizer, **kwargs):
        """Keras's compile, with the optimizer of each network (the
        tutorial's two Adams)."""
        self.compile_optimizers({"generator_optimizer": (generator_optimizer, self.generator),
                                 "discriminator_optimizer": (discriminator_optimizer,
                                                             self.discriminator)}, **kwargs)

    def make_discriminator(self, make, channels):
        """The discriminator of the preset (`make`), for packs of
        `self.pack` images of `channels` each."""
        return make(channels * self.pack)

    def prepare(self, images):
        """uint8 [..., 28, 28(, 3)] -> float32 [..., 28, 28, channels] in
        [-1, 1], as tanh."""
        return (with_channels(images) - 127.5) / 127.5

    @tf.function
    def step(self, batch):
        """The tutorial's step: both networks' losses from one noise batch,
        one tape each, the discriminator's update then the generator's.
        With several critic steps per generator step (WGAN-GP), the batch
        holds one share of images per critic step (the loop feeds
        batches_per_step batches at once): the critic takes a step on each
        share, the generator one on the last's losses (Gulrajani et al.
        2017, Algorithm 1); the scalars returned are the last share's."""
        for share, last in shares(batch[0], self.gan_loss.critic_steps):
            with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
                scalars = self.step_losses(share)
            _apply(self.discriminator_optimizer, d_tape, scalars["d_loss"], self.discriminator)
            if last:
                _apply(self.generator_optimizer, g_tape, scalars["g_loss"], self.generator)
        return scalars

    def step_losses(self, real):
        """The scalars of one step on the real images `real` (the model's
        `log_names`), g_loss and d_loss among them: the generated images from
        new noise, both packed (`pack`) for the discriminator."""
        noise = self.rng.normal([tf.shape(real)[0], self.noise_dim])
        fake = pack(self.generator(noise, training=True), self.pack)
        real = pack(real, self.pack)
        real_out = self.discriminator(real, training=True)
        fake_out = self.discriminator(fake, training=True)
        d_loss = self.gan_loss.real(real_out) + self.gan_loss.fake(fake_out)
        if self.gan_loss.penalty:
            d_loss += self.gan_loss.penalty * losses.gradient_penalty(
                self.discriminator, real, fake, self.rng)
        return {"g_loss": self.gan_loss.generator(fake_out), "d_loss": d_loss,
                "d_real": tf.reduce_mean(self.gan_loss.score(real_out)),
                "d_fake": tf.reduce_mean(self.gan_loss.score(fake_out))}

    def draw(self, n, seed=0, digit=None):
        return {"noise": tf.random.Generator.from_seed(seed).normal([n, self.noise_dim])}

    def generate(self, inputs):
        return self.to_unit(self.generator(inputs["noise"], training=False))

    @staticmethod
    def to_unit(images):
        """The generator's tanh output, [-1, 1], as float32 in [0, 1]."""
        return tf.cast(images, tf.float32) * 0.5 + 0.5

    def export_card(self):
        channels = self.generator.output_shape[-1]
        return {"networks": {"generator": {
                    "input": f"noise [n, {self.noise_dim}], normal N(0, I)",
                    "output": f"[n, 28, 28, {channels}] in [-1, 1] (tanh): images x / 2 + 0.5"}},
                "python": "import keras, numpy as np\n"
                          'generator = keras.saving.load_model("generator.keras")\n'
                          "images = generator.predict(np.random.default_rng(0).standard_normal("
                          f"(16, {self.noise_dim})), verbose=0) / 2 + 0.5"}

    def images(self):
        """4x4 grid of the generator's images for the fixed noise batch."""
        return grid(pictures(self.generate({"noise": self.picture_noise}).numpy()), cols=4,
                    scale=3)


def shares(images, n):
    """(share, whether it is the last) for the n equal shares of a batch of
    `images`: the batch itself when n is 1. Python's loop, unrolled in the
    graph: an optimizer step inside TensorFlow's control flow cannot reach
    the other tf.distribute replicas."""
    if n == 1:
        return [(images, True)]
    size = tf.shape(images)[0] // n
    return [(images[i * size:(i + 1) * size], i == n - 1) for i in range(n)]


def _apply(optimizer, tape, loss, network):
    """One optimizer step on `network`'s trainable variables."""
    apply_gradients(optimizer, tape, loss, network.trainable_variables)
