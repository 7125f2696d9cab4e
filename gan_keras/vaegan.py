"""VAE-GAN (Larsen et al. 2016) as report 002 trained it: an encoder, a
decoder that is also the generator, and a discriminator whose hidden layer
Dis_l measures the reconstruction error in place of pixels; Adam instead of
the paper's RMSprop. The networks follow the paper's
(section 4, appendix) at MNIST's 28x28."""
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from common.images import labelled_rows, pictures
from common.model import GenerativeModel, Input, apply_gradients, with_channels
from gan_keras import losses
from gan_keras.gan import GAN, pack, shares, torch_batch_norm
from vae_keras.elbo import kl_analytic
from vae_keras.vae import Reparameterize

EVAL_BATCH = 1000


def vaegan_encoder(latent_dim=128, channels=1):
    """5x5 conv 64 stride 2, BN, ReLU; 5x5 conv 128 stride 2, BN, ReLU;
    FC 1024, BN, ReLU; FC to the mean and log-variance of q(z|x)."""
    return keras.Sequential([
        layers.Input((28, 28, channels)),
        layers.Conv2D(64, 5, strides=2, padding="same"), torch_batch_norm(), layers.ReLU(),
        layers.Conv2D(128, 5, strides=2, padding="same"), torch_batch_norm(),
        layers.ReLU(),
        layers.Flatten(),
        layers.Dense(1024), torch_batch_norm(), layers.ReLU(),
        layers.Dense(2 * latent_dim),
    ], name="encoder")


def vaegan_decoder(latent_dim=128, channels=1):
    """FC 7x7x128, BN, ReLU; 5x5 deconv 64 stride 2, BN, ReLU; 5x5 deconv 32
    stride 2, BN, ReLU; 5x5 conv 1 (channels), tanh."""
    return keras.Sequential([
        layers.Input((latent_dim,)),
        layers.Dense(7 * 7 * 128), torch_batch_norm(), layers.ReLU(),
        layers.Reshape((7, 7, 128)),
        layers.Conv2DTranspose(64, 5, strides=2, padding="same"), torch_batch_norm(),
        layers.ReLU(),
        layers.Conv2DTranspose(32, 5, strides=2, padding="same"), torch_batch_norm(),
        layers.ReLU(),
        layers.Conv2D(channels, 5, padding="same", activation="tanh"),
    ], name="decoder")


def vaegan_discriminator(channels=1):
    """5x5 conv 32, ReLU; 5x5 conv 128 stride 2, BN, ReLU; 5x5 conv 256
    stride 2, BN, ReLU (its output is Dis_l, 7x7x256); FC 512, BN, ReLU; FC 1.
    Returns [output, Dis_l]."""
    image = layers.Input((28, 28, channels))
    features = keras.Sequential([
        layers.Conv2D(32, 5, padding="same"), layers.ReLU(),
        layers.Conv2D(128, 5, strides=2, padding="same"), torch_batch_norm(),
        layers.ReLU(),
        layers.Conv2D(256, 5, strides=2, padding="same"), torch_batch_norm(),
        layers.ReLU(),
    ], name="features")(image)
    out = keras.Sequential([
        layers.Flatten(), layers.Dense(512), torch_batch_norm(), layers.ReLU(),
        layers.Dense(1),
    ], name="head")(features)
    return keras.Model(image, [out, features], name="discriminator")


class VAEGAN(GenerativeModel):
    """The VAE-GAN; its discriminator judges `pack` images at once (PacGAN,
    gan.pack)."""

    name = "vaegan"
    log_names = ("prior", "feature_reconstruction", "decoder_loss", "d_loss", "d_real", "d_fake")
    test_metric_names = ("test_mse",)
    plots = {"encoder's terms: prior (KL) and feature reconstruction (Dis_l)":
                 ("prior", "feature_reconstruction"),
             "decoder and discriminator losses": ("decoder_loss", "d_loss"),
             "mean discriminator output on real (d_real) and decoded (d_fake) images":
                 ("d_real", "d_fake"),
             "test images' reconstruction error (mean squared, pixels in [0, 1])": ("test_mse",)}

    def __init__(self, data, *, noise_dim=128, loss="bce", learning_rate=3e-4, beta_1=0.5,
                 gamma=1e-3, seed=0, pack=1):
        super().__init__()
        self.latent_dim, self.gamma, self.gan_loss = noise_dim, gamma, losses.LOSSES[loss]
        self.pack, self.batches_per_step = pack, self.gan_loss.critic_steps
        self.inputs = {"latent": Input((noise_dim,), "float32", "normal, N(0, I): the prior")}
        self.encoder = vaegan_encoder(noise_dim, data.channels)
        self.decoder = vaegan_decoder(noise_dim, data.channels)
        self.discriminator = vaegan_discriminator(data.channels * pack)
        self.reparameterize = Reparameterize()
        self.networks = {"encoder": self.encoder, "decoder": self.decoder,
                         "discriminator": self.discriminator}
        self.exported = {"decoder": self.decoder, "encoder": self.encoder}
        self.rng = tf.random.Generator.from_seed(seed)
        self.test_digits = data.test_images
        self.picture_prior = tf.random.Generator.from_seed(seed + 1).normal([10, noise_dim])
        beta_1, beta_2 = self.gan_loss.betas or (beta_1, 0.999)
        self.compile(**{f"{name}_optimizer": keras.optimizers.Adam(learning_rate, beta_1, beta_2)
                        for name in self.networks})

    def compile(self, encoder_optimizer, decoder_optimizer, discriminator_optimizer, **kwargs):
        """Keras's compile, with the optimizer of each network (one each, as
        Larsen et al.'s Algorithm 1)."""
        given = {"encoder": encoder_optimizer, "decoder": decoder_optimizer,
                 "discriminator": discriminator_optimizer}
        self.compile_optimizers({f"{name}_optimizer": (optimizer, self.networks[name])
                                 for name, optimizer in given.items()}, **kwargs)

    def prepare(self, images):
        """uint8 [..., 28, 28(, 3)] -> float32 [..., 28, 28, channels] in
        [-1, 1], as tanh."""
        return (with_channels(images) - 127.5) / 127.5

    @tf.function
    def step(self, batch):
        """Larsen et al. 2016, Algorithm 1, with one tape: the discriminator's
        update, then the encoder's and the decoder's, from the losses of
        `step_losses`. With several critic steps per update of the autoencoder
        (WGAN-GP), the batch holds one share per critic step, as a GAN's
        (gan.shares)."""
        for share, last in shares(batch[0], self.gan_loss.critic_steps):
            with tf.GradientTape(persistent=True) as tape:
                scalars = self.step_losses(share)
                encoder_loss = scalars["prior"] + scalars["feature_reconstruction"]
            self._apply("discriminator", tape, scalars["d_loss"])
            if last:
                self._apply("encoder", tape, encoder_loss)
                self._apply("decoder", tape, scalars["decoder_loss"])
        return scalars

    def step_losses(self, x):
        """The encoder minimizes L_prior + L_llike, the decoder gamma L_llike
        + its adversarial loss on reconstructions and prior samples, the
        discriminator its loss on real, reconstructed and prior-sampled
        images. L_llike = -log N(Dis_l(x); Dis_l(x~), I) up to a constant,
        the paper's eq. 8 and 9.

        The decoder sees reconstructions' and prior samples' codes in one
        call, the discriminator the three kinds of image in one call, as
        usual VAE-GAN code does: their batch normalization sees them together,
        and the step is reproducible (over three separate calls the tape sums
        the discriminator's gradients in an order TensorFlow does not fix).
        With packing (`pack` > 1) it judges packs of each kind, and Dis_l
        compares a pack of real images with the pack of their
        reconstructions."""
        n = tf.shape(x)[0]
        mean, logvar = tf.split(tf.cast(self.encoder(x, training=True), tf.float32), 2, axis=1)
        z = self.reparameterize(mean, logvar, self.rng.normal(tf.shape(mean)))
        decoded = tf.cast(self.decoder(
            tf.concat([z, self.rng.normal([n, self.latent_dim])], 0), training=True), x.dtype)
        real, sampled = pack(x, self.pack), pack(decoded[n:], self.pack)
        packs = tf.shape(real)[0]
        out, features = self.discriminator(
            tf.concat([real, pack(decoded[:n], self.pack), sampled], 0), training=True)
        real_out, recon_out, sampled_out = out[:packs], out[packs:2 * packs], out[2 * packs:]
        real_features, recon_features = features[:packs], features[packs:2 * packs]
        feature_reconstruction = tf.reduce_mean(0.5 * tf.reduce_sum(tf.reshape(
            tf.cast(real_features - recon_features, tf.float32), [packs, -1]) ** 2, axis=1))
        d_loss = (self.gan_loss.real(real_out) + self.gan_loss.fake(recon_out)
                  + self.gan_loss.fake(sampled_out))
        if self.gan_loss.penalty:
            d_loss += self.gan_loss.penalty * losses.gradient_penalty(
                self.discriminator, real, sampled, self.rng)
        return {"prior": tf.reduce_mean(kl_analytic(mean, logvar)),
                "feature_reconstruction": feature_reconstruction,
                "decoder_loss": (self.gamma * feature_reconstruction
                                 + self.gan_loss.generator(recon_out)
                                 + self.gan_loss.generator(sampled_out)),
                "d_loss": d_loss,
                "d_real": tf.reduce_mean(self.gan_loss.score(real_out)),
                "d_fake": tf.reduce_mean(self.gan_loss.score(recon_out))}

    def _apply(self, name, tape, loss):
        apply_gradients(self.optimizers[f"{name}_optimizer"], tape, loss,
                        self.networks[name].trainable_variables)

    def reconstruct(self, images, labels=None):
        """uint8 images [n, 28, 28(, 3)] -> their reconstructions from the
        mean of q(z|x), numpy float32 of the same shape in [0, 1] (`labels`:
        for the interface of conditional models, unused)."""
        x = self.prepare(images)
        parts = []
        for i in range(0, len(x), EVAL_BATCH):
            mean, _ = tf.split(self.encoder(x[i:i + EVAL_BATCH], training=False), 2, axis=1)
            parts.append(self.generate({"latent": mean}).numpy())
        return pictures(np.concatenate(parts))

    def test_metrics(self):
        """The test images' mean squared reconstruction error, pixels in [0, 1],
        summed EVAL_BATCH images at a time (at once, Stacked MNIST's 26,000
        test images took 2 GB of float64)."""
        squared = 0.0
        for i in range(0, len(self.test_digits), EVAL_BATCH):
            images = self.test_digits[i:i + EVAL_BATCH]
            squared += float(np.sum((self.reconstruct(images) - images / 255.0) ** 2))
        return {"test_mse": squared / self.test_digits.size}

    def draw(self, n, seed=0, digit=None):
        return {"latent": tf.random.Generator.from_seed(seed).normal([n, self.latent_dim])}

    def export_card(self):
        channels = self.decoder.output_shape[-1]
        images = f"[n, 28, 28, {channels}]"
        return {"networks": {
            "decoder": {"input": f"latent code [n, {self.latent_dim}], normal N(0, I)",
                        "output": f"{images} in [-1, 1] (tanh): images x / 2 + 0.5"},
            "encoder": {"input": f"images {images} in [-1, 1]: 2 x - 1 for x in [0, 1]",
                        "output": f"[n, {2 * self.latent_dim}]: the mean of q(z|x), then its "
                                  f"log-variance"}},
            "python": "import keras, numpy as np\n"
                      'decoder = keras.saving.load_model("decoder.keras")\n'
                      "images = decoder.predict(np.random.default_rng(0).standard_normal("
                      f"(16, {self.latent_dim})), verbose=0) / 2 + 0.5"}

    def generate(self, inputs):
        return GAN.to_unit(self.decoder(inputs["latent"], training=False))

    def images(self):
        """Report 002's comparison: 10 test digits, their reconstructions, and
        10 decoded prior samples (fixed noise)."""
        originals = self.test_digits[:10]
        prior = pictures(self.generate({"latent": self.picture_prior}).numpy())
        return labelled_rows([("Test originals", originals / 255.0),
                              ("Reconstructions", self.reconstruct(originals)),
                              ("Prior samples", prior)])
