"""What every VAE of the project shares, so that a model file only defines
its encoder and decoder: the reparameterization layer, the encoder-decoder
keras.Model, and the training object (negative-ELBO step, test-set ELBO,
the report's per-epoch panel, the latent-space figures)."""
from statistics import NormalDist

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from common import images
from common.model import GenerativeModel
from vae_keras import elbo

BINARIZATIONS = ("static", "dynamic")
PANEL_ROWS = ("Originals", "Decoded Random Samples", "Decoded Modes", "Decoded Means",
              "Randomly Generated Samples", "Randomly Generated Modes",
              "Randomly Generated Means")  # report 000, section 5
EVAL_BATCH = 1000


class Reparameterize(layers.Layer):
    """z = mean + exp(logvar / 2) * eps with eps ~ N(0, I), the
    reparameterization trick (Kingma & Welling 2014, section 2.4). `eps` may
    be given, for pictures and evaluation that must not depend on the
    training's random stream."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, mean, logvar, eps=None):
        if eps is None:
            eps = keras.random.normal(tf.shape(mean), seed=self.seed_generator)
        return mean + tf.exp(0.5 * logvar) * eps


class VAE(keras.Model):
    """A Sequential encoder giving [mean, log-variance] of q(z|x), the
    reparameterization, and a Sequential decoder giving Bernoulli logits."""

    def __init__(self, encoder, decoder, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.reparameterize = Reparameterize(seed)

    def encode(self, x):
        mean, logvar = tf.split(self.encoder(x), 2, axis=-1)
        return mean, logvar

    def call(self, x, eps=None, training=False):
        """x -> (logits, z, mean, logvar)."""
        mean, logvar = self.encode(x)
        z = self.reparameterize(mean, logvar, eps)
        return self.decoder(z, training=training), z, mean, logvar


class VariationalAutoencoder(GenerativeModel):
    """A VAE on binarized images, trained on the negative ELBO (elbo.py)."""

    metrics = ("loss", "reconstruction", "kl")
    eval_metrics = ("test_elbo",)
    plots = {"negative ELBO, training batches (nats)": ("loss",),
             "its terms (nats)": ("reconstruction", "kl"),
             "test-set ELBO (nats)": ("test_elbo",)}

    def __init__(self, encoder, decoder, data, *, learning_rate=1e-4, kl="mc",
                 binarize="static", seed=0):
        self.latent_dim = decoder.input_shape[-1]
        self.kl, self.binarize = kl, binarize
        self.vae = VAE(encoder, decoder, seed=seed, name=self.name)
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.vae.trainable_variables)
        self.networks = {"vae": self.vae}
        self.optimizers = {"optimizer": self.optimizer}
        self.rng = tf.random.Generator.from_seed(seed)  # dynamic binarization

        # Everything below is drawn once: the test ELBO and the panel are
        # deterministic functions of the weights, comparable across epochs.
        fixed = tf.random.Generator.from_seed(seed + 1)
        test = self.prepare(data.test_images)
        if binarize == "dynamic":  # one fixed binarization of the test set
            test = tf.cast(fixed.uniform(tf.shape(test)) < test, tf.float32)
        self.test_images, self.test_labels = test, data.test_labels
        self.test_eps = fixed.normal([len(data.test_images), self.latent_dim])
        self.panel_prior = fixed.normal([10, self.latent_dim])
        self.panel_uniform = fixed.uniform([2, 10, 28, 28, 1])

    def prepare(self, images):
        """uint8 [..., 28, 28] -> float32 [..., 28, 28, 1]: binary (threshold
        0.5, as the tutorial) for static binarization, grey levels in [0, 1]
        for dynamic (a Bernoulli draw per pixel at every step)."""
        x = tf.cast(images, tf.float32)[..., None] / 255.0
        return tf.cast(x > 0.5, tf.float32) if self.binarize == "static" else x

    @tf.function
    def train_step(self, batch):
        x, _ = batch
        if self.binarize == "dynamic":
            x = tf.cast(self.rng.uniform(tf.shape(x)) < x, tf.float32)
        with tf.GradientTape() as tape:
            logits, z, mean, logvar = self.vae(x, training=True)
            reconstruction, kl = elbo.elbo_terms(x, logits, z, mean, logvar, self.kl)
            loss = tf.reduce_mean(reconstruction + kl)
        variables = self.vae.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss, "reconstruction": tf.reduce_mean(reconstruction),
                "kl": tf.reduce_mean(kl)}

    @tf.function
    def _elbo_sum(self, x, eps):
        logits, z, mean, logvar = self.vae(x, eps=eps)
        reconstruction, kl = elbo.elbo_terms(x, logits, z, mean, logvar, self.kl)
        return -tf.reduce_sum(reconstruction + kl)

    def evaluate(self):
        """The ELBO per test image (nats; higher is better), one fixed sample
        of z per image, with the training's KL estimator."""
        total = sum(float(self._elbo_sum(self.test_images[i:i + EVAL_BATCH],
                                         self.test_eps[i:i + EVAL_BATCH]))
                    for i in range(0, len(self.test_images), EVAL_BATCH))
        return {"test_elbo": total / len(self.test_images)}

    def sample(self, n, seed=0):
        """Decoder means p (not Bernoulli draws, which are salt-and-pepper
        noise) for z from the prior."""
        z = tf.random.Generator.from_seed(seed).normal([n, self.latent_dim])
        return np.concatenate([tf.sigmoid(self.vae.decoder(z[i:i + EVAL_BATCH])).numpy()[..., 0]
                               for i in range(0, n, EVAL_BATCH)])

    def likelihood(self, images, iw_samples, seed=0, batch=10, chunk=100):
        """On the first `images` test images: their ELBO (as in `evaluate`)
        and the importance-weighted bound of Burda et al. 2015 (eq. 8),
        log p(x) >= log 1/K sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x), whose
        negative estimates the negative log-likelihood; K = `iw_samples`,
        drawn `chunk` at a time for `batch` images at once."""
        x, eps = self.test_images[:images], self.test_eps[:images]
        elbo_sum = sum(float(self._elbo_sum(x[i:i + EVAL_BATCH], eps[i:i + EVAL_BATCH]))
                       for i in range(0, len(x), EVAL_BATCH))
        rng = tf.random.Generator.from_seed(seed)
        bounds = []
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            log_w = tf.concat([self._log_weights(xb, rng.normal([min(chunk, iw_samples - k),
                                                                  len(xb), self.latent_dim]))
                               for k in range(0, iw_samples, chunk)], axis=0)
            bounds.append(tf.reduce_logsumexp(log_w, axis=0) - np.log(iw_samples))
        return {"test_elbo": elbo_sum / len(x),
                "nll_iw": -float(tf.reduce_mean(tf.concat(bounds, axis=0)))}

    @tf.function(reduce_retracing=True)
    def _log_weights(self, x, eps):
        """log p(x, z) - log q(z|x) for z = mean + sigma * eps, eps [k, b, d]."""
        mean, logvar = self.vae.encode(x)
        z = mean + tf.exp(0.5 * logvar) * eps  # [k, b, d]
        k, b = tf.shape(eps)[0], tf.shape(eps)[1]
        logits = self.vae.decoder(tf.reshape(z, [-1, self.latent_dim]))
        repeated = tf.reshape(tf.tile(x[None], [k, 1, 1, 1, 1]), tf.shape(logits))
        log_px = tf.reshape(elbo.bernoulli_log_likelihood(repeated, logits), [k, b])
        return log_px + elbo.log_normal_pdf(z, 0.0, 0.0) - elbo.log_normal_pdf(z, mean, logvar)

    def images(self):
        """Report 000's panel: 10 test digits and their decodings (z drawn
        from q(z|x)), then 10 decodings of prior samples; each as a Bernoulli
        sample, its mode (p > 0.5) and its mean p."""
        x = self.test_images[:10]
        decoded = tf.sigmoid(self.vae(x, eps=self.test_eps[:10])[0])
        generated = tf.sigmoid(self.vae.decoder(self.panel_prior))
        rows = [x]
        for p, uniform in ((decoded, self.panel_uniform[0]), (generated, self.panel_uniform[1])):
            rows += [tf.cast(uniform < p, tf.float32), tf.cast(p > 0.5, tf.float32), p]
        return images.labelled_rows([(label, row.numpy()[..., 0])
                                     for label, row in zip(PANEL_ROWS, rows)])

    def figures(self, directory):
        """For a 2-D latent space: the decoded manifold and the test set's
        encodings (Kingma & Welling 2014, figure 4)."""
        if self.latent_dim != 2:
            return
        quantiles = [NormalDist().inv_cdf(q) for q in np.linspace(0.05, 0.95, 20)]
        grid_z = np.array([[x, y] for y in quantiles[::-1] for x in quantiles], np.float32)
        means = tf.sigmoid(self.vae.decoder(grid_z)).numpy()[..., 0]
        images.save_png(images.grid(means, cols=20, scale=1, pad=0),
                        directory / "latent_manifold.png")
        encoded = np.concatenate([self.vae.encode(self.test_images[i:i + EVAL_BATCH])[0].numpy()
                                  for i in range(0, len(self.test_images), EVAL_BATCH)])
        images.plot_latent_scatter(encoded, self.test_labels, directory / "latent_scatter.png")
