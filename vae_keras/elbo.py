"""The evidence lower bound of a VAE with a Bernoulli decoder and a Gaussian
encoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes", eq. 3 and
appendix B), in nats, one value per example:

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)),   p(z) = N(0, I).

The expectation is estimated with one sample of z, as in the TensorFlow CVAE
tutorial; the KL term either with that same sample ("mc", the tutorial's
log p(z) - log q(z|x)) or in closed form ("analytic", appendix B)."""
import math

import tensorflow as tf

LOG_2PI = math.log(2.0 * math.pi)


def log_normal_pdf(sample, mean, logvar):
    """log N(sample; mean, exp(logvar)), summed over the last axis."""
    return tf.reduce_sum(-0.5 * ((sample - mean) ** 2 * tf.exp(-logvar) + logvar + LOG_2PI),
                         axis=-1)


def bernoulli_log_likelihood(x, logits):
    """log p(x|z) for binary pixels x and decoder logits, summed per example."""
    per_pixel = -tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)
    return tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(x)[0], -1]), axis=1)


def kl_analytic(mean, logvar):
    """KL(N(mean, exp(logvar)) || N(0, I)) = 1/2 sum(exp(logvar) + mean^2 - 1 - logvar);
    never negative."""
    return 0.5 * tf.reduce_sum(tf.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)


def kl_mc(z, mean, logvar):
    """One-sample estimate log q(z|x) - log p(z) at z ~ q(z|x): unbiased, but
    one sample can be negative."""
    return log_normal_pdf(z, mean, logvar) - log_normal_pdf(z, 0.0, 0.0)


def elbo_terms(x, logits, z, mean, logvar, kl="mc"):
    """Per-example (reconstruction, kl): ELBO = -reconstruction - kl, with
    reconstruction = -log p(x|z) in nats. The arguments are float32 under
    any mixed-precision policy: VAE.encode and VAE.decode cast to it."""
    reconstruction = -bernoulli_log_likelihood(x, logits)
    divergence = kl_mc(z, mean, logvar) if kl == "mc" else kl_analytic(mean, logvar)
    return reconstruction, divergence
