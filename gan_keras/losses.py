"""GAN losses on discriminator logits (positive = real), one function per
network, so that a new loss is a new pair of functions, not a new trainer."""
import tensorflow as tf


def _cross_entropy(labels, logits):
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def bce_generator(fake_logits):
    """Non-saturating generator loss, -log D(G(z)) (Goodfellow et al. 2014,
    section 3; the TensorFlow DCGAN tutorial's generator_loss)."""
    return _cross_entropy(tf.ones_like(fake_logits), fake_logits)


def bce_discriminator(real_logits, fake_logits):
    """-log D(x) - log(1 - D(G(z))), each averaged over its batch (the
    tutorial's discriminator_loss: the sum of the two cross-entropies)."""
    return (_cross_entropy(tf.ones_like(real_logits), real_logits)
            + _cross_entropy(tf.zeros_like(fake_logits), fake_logits))
