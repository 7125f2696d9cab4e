"""How the training set reaches the train step, one epoch at a time: a
tf.data pipeline from host memory (any tf.distribute strategy), or the whole
set resident on the training device, shuffled and batched inside the graph.

Either way the set is prepared once (model.prepare) and each epoch is a new
permutation drawn from (seed, epoch), so a resumed run sees the order an
uninterrupted one would have; the last, smaller batch is kept, as in the
TensorFlow tutorials, except across several replicas and for a step that
takes several batches at once."""
import math

import tensorflow as tf


def feed(data, prepare, batch_size, seed, *, strategy=None, on_device=False, whole=False):
    """The feed of `data`'s training set: feed.steps batches an epoch and
    feed.epoch(n, skip=0), an iterator of (images, labels) batches that a
    tf.function calls next() on, past the epoch's first `skip` batches (a
    run resumed inside an epoch). `whole`: the last, smaller batch is
    dropped (a step that splits its batch into equal shares)."""
    images, labels = prepare(data.train_images), tf.cast(data.train_labels, tf.int32)
    whole = whole or strategy is not None
    if on_device and strategy is None:
        return OnDevice(images, labels, batch_size, seed, whole)
    return Pipeline(images, labels, batch_size, seed, whole, strategy)


def steps_per_epoch(size, batch_size, whole):
    """Batches in an epoch of `size` images: the last, smaller one kept
    unless `whole`."""
    return size // batch_size if whole else math.ceil(size / batch_size)


class Pipeline:
    """tf.data: shuffled, batched and prefetched from host memory. Under a
    strategy each batch of `batch_size` (the global batch) is split across
    the replicas, and the last, smaller batch is dropped: it may hold fewer
    images than there are replicas."""

    def __init__(self, images, labels, batch_size, seed, whole, strategy=None):
        self.dataset = tf.data.Dataset.from_tensor_slices((images, labels))
        self.size, self.batch_size, self.seed = len(labels), batch_size, seed
        self.strategy, self.whole = strategy, whole
        self.steps = steps_per_epoch(self.size, batch_size, whole)

    def epoch(self, epoch, skip=0):
        dataset = (self.dataset.shuffle(self.size, seed=self.seed * 100_003 + epoch)
                   .batch(self.batch_size, drop_remainder=self.whole)
                   .skip(skip)
                   .prefetch(tf.data.AUTOTUNE))
        if self.strategy is not None:
            dataset = self.strategy.experimental_distribute_dataset(dataset)
        return iter(dataset)


class OnDevice:
    """The prepared set held as tensors on the training device (TensorFlow
    places them on GPU:0 when there is one); an epoch's order is a stateless
    permutation and each batch a gather, both in the graph, so no batch
    crosses from the host. The iterator is this object: next() reads and
    advances a position variable."""

    def __init__(self, images, labels, batch_size, seed, whole):
        self.images, self.labels = images, labels
        self.size, self.batch_size, self.seed = len(labels), batch_size, seed
        self.steps = steps_per_epoch(self.size, batch_size, whole)
        self.order = tf.Variable(tf.range(self.size), trainable=False)
        self.position = tf.Variable(0, trainable=False)

    def epoch(self, epoch, skip=0):
        self.order.assign(tf.random.experimental.stateless_shuffle(
            tf.range(self.size), seed=[self.seed, epoch]))
        self.position.assign(skip * self.batch_size)
        return self

    def __iter__(self):
        return self

    def __next__(self):
        start = self.position.read_value()
        self.position.assign_add(self.batch_size)
        index = self.order[start:start + self.batch_size]
        return tf.gather(self.images, index), tf.gather(self.labels, index)
