"""common/layers.py on one device: Keras's own layers, bit for bit (the
several-device half is tests/test_distribute.py)."""
import keras
import numpy as np
import tensorflow as tf

from common.layers import Dropout, batch_normalization
from vae_keras.vae import Reparameterize


def test_dropout_draws_keras_s_masks_on_one_device():
    ours, keras_s = Dropout(0.3, seed=7), keras.layers.Dropout(0.3, seed=7)
    x = tf.ones([16, 32])
    for _ in range(3):  # the seed generator's state advances alike
        assert np.array_equal(ours(x, training=True), keras_s(x, training=True))
    assert np.array_equal(ours(x), x)  # not training: the identity


def test_the_reparameterization_draws_keras_s_noise_on_one_device():
    layer = Reparameterize(seed=5)
    generator = keras.random.SeedGenerator(5)
    mean, logvar = tf.zeros([4, 3]), tf.zeros([4, 3])
    for _ in range(2):
        assert np.array_equal(layer(mean, logvar),
                              keras.random.normal([4, 3], seed=generator))


def test_batch_normalization_is_keras_s_unsynchronized_on_one_device():
    """Keras's synchronized=True computes the moments as E[x^2] - E[x]^2 even
    on one device, which changes the bits: it is asked for only across
    replicas."""
    assert batch_normalization().synchronized is False
    x = tf.constant(np.random.default_rng(0).normal(3, 2, (64, 50)), tf.float32)
    plain, synchronized = batch_normalization(), keras.layers.BatchNormalization(synchronized=True)
    assert not np.array_equal(plain(x, training=True), synchronized(x, training=True))
