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
from common.images import pictures
from common.model import Input
from gan_keras import losses
from gan_keras.gan import GAN, pack, torch_batch_norm

CATEGORIES, CONTINUOUS = 10, 2
INFO_WEIGHT = 1.0  # lambda of Chen et al. 2016, eq. 5
SWEEP = np.linspace(-2.0, 2.0, 10)  # past the training range [-1, 1], as the paper's figure 2


def infogan_generator(noise_dim=62, channels=1):
    """Chen et al. 2016, appendix C.1 (MNIST): FC 1024, BN, ReLU; FC 7x7x128,
    BN, ReLU; 4x4 deconv 64 stride 2, BN, ReLU; 4x4 deconv 1 stride 2 (tanh:
    images are in [-1, 1] here; `channels` for Stacked MNIST)."""
    return keras.Sequential([
        layers.Input((noise_dim + CATEGORIES + CONTINUOUS,)),
        layers.Dense(1024), torch_batch_norm(), layers.ReLU(),
        layers.Dense(7 * 7 * 128), torch_batch_norm(), layers.ReLU(),
        layers.Reshape((7, 7, 128)),
        layers.Conv2DTranspose(64, 4, strides=2, padding="same"),
        torch_batch_norm(), layers.ReLU(),
        layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh"),
    ], name="generator")


def infogan_discriminator(channels=1, samples=1):
    """Chen et al. 2016, appendix C.1: a shared body (4x4 conv 64 stride 2,
    LeakyReLU 0.1; 4x4 conv 128 stride 2, BN, LeakyReLU; FC 1024, BN,
    LeakyReLU), then D's output (FC 1) and Q's (FC 128, BN, LeakyReLU; FC to
    10 categorical logits and the means of the 2 continuous codes), for each
    of the `samples` images an input packs (PacGAN) in its `channels`."""
    image = layers.Input((28, 28, channels))
    body = keras.Sequential([
        layers.Conv2D(64, 4, strides=2, padding="same"), layers.LeakyReLU(0.1),
        layers.Conv2D(128, 4, strides=2, padding="same"), torch_batch_norm(),
        layers.LeakyReLU(0.1),
        layers.Flatten(),
        layers.Dense(1024), torch_batch_norm(), layers.LeakyReLU(0.1),
    ], name="body")(image)
    q = keras.Sequential([
        layers.Dense(128), torch_batch_norm(), layers.LeakyReLU(0.1),
        layers.Dense((CATEGORIES + CONTINUOUS) * samples),
    ], name="q")(body)
    return keras.Model(image, [layers.Dense(1, name="d")(body), q], name="discriminator")


class InfoGAN(GAN):
    name = "infogan"
    networks_by_preset = {"chen2016": (infogan_generator, infogan_discriminator)}
    log_names = GAN.log_names + ("info_loss", "q_accuracy")
    plots = {**GAN.plots,
             "mutual-information loss (lower: the codes are better recovered)": ("info_loss",),
             "Q's accuracy on the categorical code of generated images": ("q_accuracy",)}

    def __init__(self, preset=None, *, seed=0, **kwargs):
        super().__init__(preset, seed=seed, **kwargs)
        self.inputs = {"noise": self.inputs["noise"],
                       "category": Input((), "int32", f"uniform over 0 to {CATEGORIES - 1}"),
                       "continuous": Input((CONTINUOUS,), "float32", "uniform, U(-1, 1)")}
        fixed = tf.random.Generator.from_seed(seed + 2)
        # the picture: one row per category, one column per (noise, code) draw
        self.picture_columns = dict(zip(self.inputs, self._codes(fixed, 10)))
        self.sweep_noise = fixed.normal([1, self.noise_dim])

    def _codes(self, rng, n):
        """Noise ~ N(0, I), a uniform category, continuous codes ~ U(-1, 1)."""
        return (rng.normal([n, self.noise_dim]),
                rng.uniform([n], 0, CATEGORIES, dtype=tf.int32),
                rng.uniform([n, CONTINUOUS], -1.0, 1.0))

    def _input(self, noise, category, continuous):
        """The generator's input: the noise, the category one-hot, the
        continuous codes, side by side (the layout an export writes down)."""
        return tf.concat([noise, tf.one_hot(category, CATEGORIES), continuous], axis=1)

    def make_discriminator(self, make, channels):
        """Q predicts the codes of each of the images of a pack."""
        return make(channels * self.pack, samples=self.pack)

    def step_losses(self, real):
        """GAN's losses with Q's: the codes' mutual-information bound joins
        both networks' losses. With packing, Q's outputs for a pack are the
        codes of its images in turn."""
        noise, category, continuous = self._codes(self.rng, tf.shape(real)[0])
        fake = pack(self.generator(self._input(noise, category, continuous), training=True),
                    self.pack)
        real = pack(real, self.pack)
        real_out, _ = self.discriminator(real, training=True)
        fake_out, q = self.discriminator(fake, training=True)
        if self.pack > 1:  # one row of codes per image, the last n % pack left out
            q = tf.reshape(q, [-1, CATEGORIES + CONTINUOUS])
            category, continuous = category[:tf.shape(q)[0]], continuous[:tf.shape(q)[0]]
        info = self._info_loss(category, continuous, q)
        d_loss = self.gan_loss.real(real_out) + self.gan_loss.fake(fake_out) + INFO_WEIGHT * info
        if self.gan_loss.penalty:
            d_loss += self.gan_loss.penalty * losses.gradient_penalty(
                self.discriminator, real, fake, self.rng)
        guessed = tf.argmax(q[:, :CATEGORIES], axis=1, output_type=tf.int32)
        return {"g_loss": self.gan_loss.generator(fake_out) + INFO_WEIGHT * info, "d_loss": d_loss,
                "d_real": tf.reduce_mean(self.gan_loss.score(real_out)),
                "d_fake": tf.reduce_mean(self.gan_loss.score(fake_out)),
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

    def draw(self, n, seed=0, digit=None):
        return dict(zip(self.inputs, self._codes(tf.random.Generator.from_seed(seed), n)))

    def export_card(self):
        card = super().export_card()
        width = self.noise_dim + CATEGORIES + CONTINUOUS
        card["networks"]["generator"]["input"] = (
            f"[n, {width}]: columns 0-{self.noise_dim - 1} the noise, normal N(0, I); "
            f"{self.noise_dim}-{self.noise_dim + CATEGORIES - 1} the category one-hot, "
            f"uniform over 0 to {CATEGORIES - 1}; {width - CONTINUOUS}-{width - 1} the "
            f"continuous codes, uniform U(-1, 1)")
        card["python"] = (
            "import keras, numpy as np\n"
            'generator, rng = keras.saving.load_model("generator.keras"), np.random.default_rng(0)\n'
            f"images = generator.predict(np.concatenate([rng.standard_normal((16, {self.noise_dim})), "
            f"np.eye({CATEGORIES})[rng.integers(0, {CATEGORIES}, 16)], rng.uniform(-1, 1, "
            f"(16, {CONTINUOUS}))], axis=1), verbose=0) / 2 + 0.5")
        return card

    def generate(self, inputs):
        return self.to_unit(self.generator(self._input(
            inputs["noise"], inputs["category"], inputs["continuous"]), training=False))

    def images(self):
        """The epoch's pictures of the fixed draws (code_pictures)."""
        return self.code_pictures(self.picture_columns, self.sweep_noise)

    def code_pictures(self, columns, sweep_noise):
        """Each code swept (Chen et al. 2016, figure 2): "image", one row per
        category, one column per draw of `columns` (noise and continuous
        codes, the same in every row); for each continuous code, one row per
        category with noise `sweep_noise` [1, noise size], the code from -2
        to 2 across the columns, the other at 0."""
        n = len(columns["noise"])
        pictures = {"image": self._rows({
            "noise": tf.tile(columns["noise"], [CATEGORIES, 1]),
            "category": tf.repeat(tf.range(CATEGORIES), n),
            "continuous": tf.tile(columns["continuous"], [CATEGORIES, 1])}, n)}
        for code in range(CONTINUOUS):
            continuous = np.zeros((CATEGORIES * len(SWEEP), CONTINUOUS), np.float32)
            continuous[:, code] = np.tile(SWEEP, CATEGORIES)
            pictures[f"continuous_{code + 1}"] = self._rows({
                "noise": tf.tile(sweep_noise, [len(continuous), 1]),
                "category": tf.repeat(tf.range(CATEGORIES), len(SWEEP)),
                "continuous": continuous}, len(SWEEP))
        return pictures

    def _rows(self, inputs, columns):
        images = pictures(self.generate(inputs).numpy())
        return labelled_rows([(f"category {c}", images[c * columns:(c + 1) * columns])
                              for c in range(CATEGORIES)])
