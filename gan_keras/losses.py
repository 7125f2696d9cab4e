"""GAN losses on the discriminator's raw output (positive = real), one small
set of functions per loss, so that a new loss is a new entry here, not a
new trainer. Every GAN of gan_keras/ takes any of them (--loss)."""
import dataclasses
from typing import Callable

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Loss:
    """The discriminator's loss is real(real outputs) + fake(fake outputs)
    (+ a gradient penalty); the generator's is generator(fake outputs).
    `critic_steps` discriminator steps are taken per generator step;
    `score` turns an output into what history.csv reports as d_real and
    d_fake; `betas` are the Adam betas its paper trained with (None: the
    model's own)."""

    real: Callable
    fake: Callable
    generator: Callable
    score: Callable
    critic_steps: int = 1
    penalty: float = 0.0
    betas: tuple | None = None


def _f32(out):
    """The discriminator's output in float32: under mixed precision the
    networks compute in 16 bits, the losses do not."""
    return tf.cast(out, tf.float32)


def _cross_entropy(label, logits):
    logits = _f32(logits)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(logits), label), logits=logits))


def _mean(out):
    return tf.reduce_mean(_f32(out))


# Goodfellow et al. 2014: D maximizes log D(x) + log(1 - D(G(z))); G the
# non-saturating log D(G(z)) (section 3). The TensorFlow DCGAN tutorial's.
BCE = Loss(real=lambda out: _cross_entropy(1.0, out),
           fake=lambda out: _cross_entropy(0.0, out),
           generator=lambda out: _cross_entropy(1.0, out),
           score=lambda out: tf.sigmoid(_f32(out)))

# Mao et al. 2017, eq. 9 with a = 0, b = c = 1: least squares on the raw output.
LSGAN = Loss(real=lambda out: 0.5 * tf.reduce_mean((_f32(out) - 1.0) ** 2),
             fake=lambda out: 0.5 * tf.reduce_mean(_f32(out) ** 2),
             generator=lambda out: 0.5 * tf.reduce_mean((_f32(out) - 1.0) ** 2),
             score=_f32)

# Gulrajani et al. 2017, Algorithm 1: the critic's Wasserstein estimate, a
# gradient penalty of weight 10 at uniform interpolates, 5 critic steps per
# generator step, Adam(beta_1 = 0, beta_2 = 0.9).
WGAN_GP = Loss(real=lambda out: -_mean(out),
               fake=lambda out: _mean(out),
               generator=lambda out: -_mean(out),
               score=_f32, critic_steps=5, penalty=10.0, betas=(0.0, 0.9))

# Lim & Ye 2017 (the geometric GAN), as Miyato et al. 2018 train their
# spectrally normalised GANs (eq. 16-17): the discriminator's hinge loss,
# the generator raising the discriminator's raw output.
HINGE = Loss(real=lambda out: tf.reduce_mean(tf.nn.relu(1.0 - _f32(out))),
             fake=lambda out: tf.reduce_mean(tf.nn.relu(1.0 + _f32(out))),
             generator=lambda out: -_mean(out),
             score=_f32)

LOSSES = {"bce": BCE, "lsgan": LSGAN, "wgan-gp": WGAN_GP, "hinge": HINGE}


def gradient_penalty(discriminator, real, fake, rng):
    """E[(|grad_x D(x_hat)|_2 - 1)^2] at x_hat = e x + (1 - e) G(z), e ~ U[0, 1]
    per example (Gulrajani et al. 2017, eq. 3)."""
    shape = [tf.shape(real)[0]] + [1] * (len(real.shape) - 1)
    e = rng.uniform(shape)
    x_hat = e * _f32(real) + (1.0 - e) * _f32(fake)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        out = discriminator(x_hat, training=True)
        out = _f32(out[0] if isinstance(out, (list, tuple)) else out)  # D with a Q head
    grads = tape.gradient(out, x_hat)
    norms = tf.sqrt(tf.reduce_sum(tf.reshape(grads, [tf.shape(real)[0], -1]) ** 2, axis=1) + 1e-12)
    return tf.reduce_mean((norms - 1.0) ** 2)
