"""What every VAE of the project shares, so that a model file only defines
its encoder and decoder: the reparameterization layer, the encoder and
decoder joined (optionally conditioned on a one-hot label), and the VAE, a
keras.Model (the negative-ELBO step, the test-set ELBO and likelihood bound,
the report's per-epoch panel, reconstructions, the latent-space figures)."""
from statistics import NormalDist

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from common import images
from common.data import TEST_DRAW_SEED, has_likelihood
from common.layers import replica_seed
from common.data import conditional_labels
from common.images import pictures
from common.model import GenerativeModel, Input, apply_gradients, step_decay, with_channels
from vae_keras import elbo

PANEL_ROWS = ("Originals", "Decoded Random Samples", "Decoded Modes", "Decoded Means",
              "Randomly Generated Samples", "Randomly Generated Modes",
              "Randomly Generated Means")  # report 000, section 5
EVAL_BATCH = 1000
CLASSES = 10


class Reparameterize(layers.Layer):
    """z = mean + exp(logvar / 2) * eps with eps ~ N(0, I), the
    reparameterization trick (Kingma & Welling 2014, section 2.4). `eps` may
    be given, for pictures and evaluation that must not depend on the
    training's random stream."""

    def __init__(self, seed=None, **kwargs):
        # float32 under any mixed-precision policy: z is a sample of q(z|x),
        # not a network's activation (the decoder casts it as it needs)
        super().__init__(dtype="float32", **kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, mean, logvar, eps=None):
        if eps is None:  # each tf.distribute replica its own (as keras.random.normal on one)
            eps = tf.random.stateless_normal(tf.shape(mean), replica_seed(self.seed_generator))
        return mean + tf.exp(0.5 * logvar) * eps


class EncoderDecoder(keras.Model):
    """An encoder giving [mean, log-variance] of q(z|x), the
    reparameterization, and a decoder giving Bernoulli logits. With a
    `condition` (a one-hot label), the encoder takes [x, condition] and the
    decoder [z, condition]: the conditional VAE."""

    def __init__(self, encoder, decoder, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.reparameterize = Reparameterize(seed)

    def encode(self, x, condition=None):
        """The mean and log-variance of q(z|x), in float32 whatever the
        encoder computes in (mixed precision)."""
        inputs = x if condition is None else [x, condition]
        mean, logvar = tf.split(tf.cast(self.encoder(inputs), tf.float32), 2, axis=-1)
        return mean, logvar

    def decode(self, z, condition=None, training=False):
        """Bernoulli logits of p(x|z), in float32 as `encode`'s output."""
        return tf.cast(self.decoder(z if condition is None else [z, condition],
                                    training=training), tf.float32)

    def call(self, x, condition=None, eps=None, training=False):
        """x -> (logits, z, mean, logvar)."""
        mean, logvar = self.encode(x, condition)
        z = self.reparameterize(mean, logvar, eps)
        return self.decode(z, condition, training), z, mean, logvar


class VAE(GenerativeModel):
    """A VAE trained on the negative ELBO (elbo.py), its KL term weighted by
    `beta` (1: the ELBO; above 1 the beta-VAE of Higgins et al. 2017; the
    test ELBO is the ELBO whatever beta), its learning rate multiplied by
    `lr_decay` after each epoch of `lr_milestones` (epochs of
    `steps_per_epoch` steps). A subclass sets `name`
    and `networks_by_preset`: {preset: (make encoder, make decoder), each
    from the latent size}; `conditional` models see one-hot labels. It is
    made compiled with Adam at `learning_rate`; `compile` takes another."""

    log_names = ("loss", "reconstruction", "kl")
    test_metric_names = ("test_elbo",)
    plots = {"negative ELBO, training batches (nats)": ("loss",),
             "its terms (nats)": ("reconstruction", "kl"),
             "test-set ELBO (nats)": ("test_elbo",)}
    networks_by_preset = {}

    def __init__(self, data, preset=None, *, latent_dim=2, learning_rate=1e-4, kl="mc",
                 binarize="static", beta=1.0, seed=0, lr_milestones=(), lr_decay=0.1,
                 steps_per_epoch=None):
        super().__init__()
        preset = preset or next(iter(self.networks_by_preset))
        make_encoder, make_decoder = self.networks_by_preset[preset]
        self.latent_dim, self.kl, self.binarize, self.beta = latent_dim, kl, binarize, beta
        self.has_likelihood = has_likelihood(binarize, data.name)
        if not self.has_likelihood:  # grey levels: the run's own curve, not a likelihood
            self.plots = {**{title: columns for title, columns in self.plots.items()
                             if columns != ("test_elbo",)},
                          "test-set ELBO on grey levels (minus the reports' loss; no likelihood)":
                              ("test_elbo",)}
        self.inputs = {"latent": Input((latent_dim,), "float32", "normal, N(0, I): the prior")}
        if self.conditional:
            self.inputs["digit"] = Input((), "int32", f"the digit to draw, 0 to {CLASSES - 1}")
        self.vae = EncoderDecoder(make_encoder(latent_dim, data.channels),
                                  make_decoder(latent_dim, data.channels), seed=seed,
                                  name=self.name)
        self.networks = {"vae": self.vae}
        self.exported = {"decoder": self.vae.decoder, "encoder": self.vae.encoder}
        self.rng = tf.random.Generator.from_seed(seed)  # dynamic binarization

        # Everything below is drawn once: the test ELBO and the panel are
        # deterministic functions of the weights, comparable across epochs.
        fixed = tf.random.Generator.from_seed(seed + 1)
        test = self.prepare(data.test_images)
        if binarize == "dynamic":  # one fixed binarization of the test set, every run's
            draw = tf.random.Generator.from_seed(TEST_DRAW_SEED).uniform(tf.shape(test))
            test = tf.cast(draw < test, tf.float32)
        self.test_images, self.test_labels = test, data.test_labels
        self.test_eps = fixed.normal([len(data.test_images), self.latent_dim])
        self.panel_prior = fixed.normal([10, self.latent_dim])
        self.panel_uniform = fixed.uniform([2, 10, 28, 28, data.channels])
        self.compile(optimizer=keras.optimizers.Adam(
            step_decay(learning_rate, lr_milestones, lr_decay, steps_per_epoch)))

    def compile(self, optimizer, **kwargs):
        """Keras's compile, with the optimizer of the encoder and decoder."""
        self.compile_optimizers({"optimizer": (optimizer, self.vae)}, **kwargs)

    def condition(self, labels):
        """The decoder's and encoder's extra input: None, or for a
        conditional model the labels one-hot."""
        return tf.one_hot(labels, CLASSES) if self.conditional else None

    def prepare(self, images):
        """uint8 [..., 28, 28(, 3)] -> float32 [..., 28, 28, channels]:
        binary (threshold 0.5, as the tutorial) for static binarization;
        grey levels in [0, 1] for dynamic (a Bernoulli draw per pixel at
        every step) and for none (grey targets of the Bernoulli likelihood,
        as the PyTorch code of reports 001, 003 and 004: a loss, not a proper
        likelihood)."""
        x = with_channels(images) / 255.0
        return tf.cast(x > 0.5, tf.float32) if self.binarize == "static" else x

    @tf.function
    def step(self, batch):
        """The negative ELBO of a batch (its KL term weighted by `beta`), one
        tape, one update."""
        x, labels = batch
        if self.binarize == "dynamic":
            x = tf.cast(self.rng.uniform(tf.shape(x)) < x, tf.float32)
        with tf.GradientTape() as tape:
            logits, z, mean, logvar = self.vae(x, self.condition(labels), training=True)
            reconstruction, kl = elbo.elbo_terms(x, logits, z, mean, logvar, self.kl)
            loss = tf.reduce_mean(reconstruction + self.beta * kl)  # beta 1: the negative ELBO
        apply_gradients(self.optimizer, tape, loss, self.vae.trainable_variables)
        return {"loss": loss, "reconstruction": tf.reduce_mean(reconstruction),
                "kl": tf.reduce_mean(kl)}

    @tf.function(reduce_retracing=True)
    def _elbo_sum(self, x, labels, eps):
        logits, z, mean, logvar = self.vae(x, self.condition(labels), eps=eps)
        reconstruction, kl = elbo.elbo_terms(x, logits, z, mean, logvar, self.kl)
        return -tf.reduce_sum(reconstruction + kl)

    def _test_elbo(self, images):
        """The ELBO per image of the first `images` test images (one fixed
        draw of z each)."""
        total = sum(float(self._elbo_sum(self.test_images[i:min(i + EVAL_BATCH, images)],
                                         self.test_labels[i:min(i + EVAL_BATCH, images)],
                                         self.test_eps[i:min(i + EVAL_BATCH, images)]))
                    for i in range(0, images, EVAL_BATCH))
        return total / images

    def test_metrics(self):
        """The ELBO per test image (nats; higher is better), one fixed sample
        of z per image, with the training's KL estimator."""
        return {"test_elbo": self._test_elbo(len(self.test_images))}

    def likelihood(self, images, iw_samples, seed=0, progress=None, batch=10, chunk=100):
        """On the first `images` test images: their ELBO (as in `evaluate`)
        and the importance-weighted bound of Burda et al. 2015 (eq. 8),
        log p(x) >= log 1/K sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x), whose
        negative estimates the negative log-likelihood; K = `iw_samples`,
        drawn `chunk` at a time for `batch` images at once, calling
        progress(images done) after each batch. A conditional model's bound
        is on log p(x|y)."""
        rng = tf.random.Generator.from_seed(seed)
        bounds = []
        for i in range(0, images, batch):
            xb = self.test_images[i:min(i + batch, images)]
            condition = self.condition(self.test_labels[i:min(i + batch, images)])
            log_w = tf.concat([self._log_weights(xb, condition,
                                                 rng.normal([min(chunk, iw_samples - k),
                                                             len(xb), self.latent_dim]))
                               for k in range(0, iw_samples, chunk)], axis=0)
            bounds.append(tf.reduce_logsumexp(log_w, axis=0) - np.log(iw_samples))
            if progress is not None:
                progress(min(i + batch, images))
        return {"test_elbo": self._test_elbo(images),
                "nll_iw": -float(tf.reduce_mean(tf.concat(bounds, axis=0)))}

    @tf.function(reduce_retracing=True)
    def _log_weights(self, x, condition, eps):
        """log p(x, z) - log q(z|x) for z = mean + sigma * eps, eps [k, b, d]."""
        mean, logvar = self.vae.encode(x, condition)
        z = mean + tf.exp(0.5 * logvar) * eps  # [k, b, d]
        k, b = tf.shape(eps)[0], tf.shape(eps)[1]
        tiled = None if condition is None else tf.reshape(
            tf.tile(condition[None], [k, 1, 1]), [-1, CLASSES])
        logits = self.vae.decode(tf.reshape(z, [-1, self.latent_dim]), tiled)
        repeated = tf.reshape(tf.tile(x[None], [k, 1, 1, 1, 1]), tf.shape(logits))
        log_px = tf.reshape(elbo.bernoulli_log_likelihood(repeated, logits), [k, b])
        return log_px + elbo.log_normal_pdf(z, 0.0, 0.0) - elbo.log_normal_pdf(z, mean, logvar)

    def _decode_means(self, z, labels):
        """Decoder means p for codes z (and labels), numpy [n, 28, 28(, 3)]."""
        return pictures(np.concatenate([
            self.generate({"latent": z[i:i + EVAL_BATCH], "digit": labels[i:i + EVAL_BATCH]}).numpy()
            for i in range(0, len(z), EVAL_BATCH)]))

    def draw(self, n, seed=0, digit=None):
        """z from the prior; a conditional model draws the digits of
        `conditional_labels`."""
        drawn = {"latent": tf.random.Generator.from_seed(seed).normal([n, self.latent_dim])}
        if self.conditional:
            drawn["digit"] = tf.constant(conditional_labels(n, digit))
        return drawn

    def export_card(self):
        channels = self.vae.decoder.output_shape[-1]
        images, label = f"[n, 28, 28, {channels}]", f", and the digit one-hot [n, {CLASSES}]"
        label = label if self.conditional else ""
        binary = ", binarized at 0.5 as in training" if self.binarize == "static" else ""
        z = ("[rng.standard_normal((16, {0})), np.eye(10)[np.arange(16) % 10]]"
             if self.conditional else "rng.standard_normal((16, {0}))").format(self.latent_dim)
        return {"networks": {
            "decoder": {"input": f"latent code [n, {self.latent_dim}], normal N(0, I){label}",
                        "output": f"Bernoulli logits {images}: images sigmoid(x), in [0, 1]"},
            "encoder": {"input": f"images {images} in [0, 1]{binary}{label}",
                        "output": f"[n, {2 * self.latent_dim}]: the mean of q(z|x), then its "
                                  f"log-variance"}},
            "python": "import keras, numpy as np\n"
                      'decoder, rng = keras.saving.load_model("decoder.keras"), '
                      "np.random.default_rng(0)\n"
                      f"images = 1 / (1 + np.exp(-decoder.predict({z}, verbose=0)))"}

    def generate(self, inputs):
        """Decoder means p (not Bernoulli draws, which are salt-and-pepper
        noise)."""
        latent = tf.convert_to_tensor(inputs["latent"], tf.float32)  # no mix of arrays and tensors
        return tf.sigmoid(self.vae.decode(latent, self.condition(inputs.get("digit"))))

    def reconstruct(self, images, labels):
        """uint8 images [n, 28, 28] (and their labels) -> the decoder's means
        at the mean of q(z|x), numpy [n, 28, 28] in [0, 1]."""
        x = self.prepare(images)
        codes = np.concatenate([
            self.vae.encode(x[i:i + EVAL_BATCH], self.condition(labels[i:i + EVAL_BATCH]))[0]
            for i in range(0, len(x), EVAL_BATCH)])
        return self._decode_means(codes, labels)

    def images(self):
        """Report 000's panel: 10 test digits and their decodings (z drawn
        from q(z|x)), then 10 decodings of prior samples; each as a Bernoulli
        sample, its mode (p > 0.5) and its mean p. A conditional model
        generates the digits 0 to 9 in the panel's last rows, and adds a
        grid of one row per digit from one set of prior codes."""
        x, labels = self.test_images[:10], self.test_labels[:10]
        digits = np.arange(10)
        decoded = tf.sigmoid(self.vae(x, self.condition(labels), eps=self.test_eps[:10])[0])
        generated = tf.sigmoid(self.vae.decode(self.panel_prior, self.condition(digits)))
        rows = [x]
        for p, uniform in ((decoded, self.panel_uniform[0]), (generated, self.panel_uniform[1])):
            rows += [tf.cast(uniform < p, tf.float32), tf.cast(p > 0.5, tf.float32), p]
        panel = images.labelled_rows([(label, pictures(np.asarray(row)))
                                      for label, row in zip(PANEL_ROWS, rows)])
        if not self.conditional:
            return panel
        codes = np.tile(self.panel_prior.numpy(), (10, 1))
        by_digit = self._decode_means(codes, np.repeat(digits, 10))
        return {"image": panel, "digits": images.labelled_rows(
            [(f"digit {d}", by_digit[d * 10:(d + 1) * 10]) for d in digits])}

    def figures(self, path):
        """For a 2-D latent space: the decoded manifold and the test set's
        encodings (Kingma & Welling 2014, figure 4); not for conditional
        models, whose decoder also needs a label."""
        if self.latent_dim != 2 or self.conditional:
            return
        quantiles = [NormalDist().inv_cdf(q) for q in np.linspace(0.05, 0.95, 20)]
        grid_z = np.array([[x, y] for y in quantiles[::-1] for x in quantiles], np.float32)
        means = self._decode_means(grid_z, np.zeros(len(grid_z), np.int32))
        images.save_png(images.grid(means, cols=20, scale=1, pad=0),
                        path("latent_manifold"))
        encoded = np.concatenate([self.vae.encode(self.test_images[i:i + EVAL_BATCH])[0].numpy()
                                  for i in range(0, len(self.test_images), EVAL_BATCH)])
        # a stacked image by the digit of its first channel (its mode's hundreds)
        digits = self.test_labels if self.test_labels.max() < CLASSES else self.test_labels // 100
        images.plot_latent_scatter(encoded, digits, path("latent_scatter"))
