"""Keras layers whose step on R tf.distribute replicas is the step one
device takes on the whole batch, where Keras's own are not: batch
statistics over the global batch, and random draws of each replica's own
(docs/distributed.md, "What several devices compute"). On one device each
is Keras's layer, bit for bit."""
import keras
import tensorflow as tf
from keras import layers


def replicas():
    """How many replicas the tf.distribute strategy in scope trains on (1:
    one device)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def batch_normalization(**kwargs):
    """Keras's BatchNormalization, its statistics all-reduced across the
    replicas when built in the scope of a strategy of several
    (synchronized=True): without it each replica normalises its own share
    and keeps moving statistics of its own. On one device synchronized
    stays False, since Keras's synchronized moments, E[x^2] - E[x]^2, are
    not tf.nn.moments' to the last bit."""
    return layers.BatchNormalization(synchronized=replicas() > 1, **kwargs)


def replica_seed(seed_generator):
    """The next seed of a Keras SeedGenerator, int32 [2] for the
    tf.random.stateless_* ops, folded with this replica's number: Keras
    gives every replica the same state, so each would draw the same dropout
    masks and noise for its share of the batch. Replica 0, and one device,
    get Keras's own seed."""
    seed = seed_generator.next()
    context = tf.distribute.get_replica_context()
    replica = context.replica_id_in_sync_group if context is not None else 0
    if tf.get_static_value(replica) != 0:
        seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(replica, seed.dtype))
    # as Keras's TensorFlow backend casts its int64 state for the stateless ops
    return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)


@keras.saving.register_keras_serializable(package="gan_vae")
class Dropout(layers.Dropout):
    """Keras's Dropout, each replica drawing its own masks (replica_seed)."""

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        return tf.nn.experimental.stateless_dropout(
            inputs, self.rate, noise_shape=self.noise_shape,
            seed=replica_seed(self.seed_generator))
