"""What every model of the project is: a keras.Model whose train step
`fit` runs, and which the long-run loop (common/training.py) trains too.

A model file holds its networks, its train step and its picture, nothing
else: the loop owns the data pipeline, epochs and resume, and the callbacks
of common/callbacks.py write the run's files, with `fit` too
(docs/python.md)."""
import math
from typing import NamedTuple

import keras
import numpy as np

from common.data import SIDE
from common.images import pictures


class Input(NamedTuple):
    """One input of a model's generator: the shape of one example, its
    dtype, and the distribution `draw` takes it from, in words."""

    shape: tuple
    dtype: str
    distribution: str


class GenerativeModel(keras.Model):
    """What `fit`, the loop, and what reads a trained run, need from a model.

    Attributes a subclass sets:
      name        the model's name in the reports and literature ("dcgan")
      networks    {name: keras.Model}, checkpointed and counted
      optimizers  {name: keras optimizer}, set by `compile` and built there,
                  so that a checkpoint restores their slots
      rng         tf.random.Generator for the step's randomness (noise),
                  checkpointed so that a resumed run draws what it would have
      log_names   names of the scalars `step` returns, in history order
      plots       {panel title: history columns} for losses.png
      test_metric_names  names of the scalars test_metrics() returns
      inputs      {name: Input} of what `generate` takes: the noise or latent
                  code (and a conditional model's digit, InfoGAN's codes)
      exported    {name: keras.Model} of the networks an export writes, the
                  generative one first (common/export.py)

    `step` is the train step on one screen: one batch, its losses. Keras's
    `train_step`, which `fit` calls, runs it and averages its losses over
    the epoch in Keras metric trackers (`metrics`, which fit resets each
    epoch); the long-run loop calls `step` itself, k steps a graph call,
    and keeps their sums in its checkpoints, so that an epoch resumes where
    it stopped.
    """

    log_names = ()
    test_metric_names = ()
    batches_per_step = 1  # batches a train step takes at once (GAN.step: WGAN-GP's)
    conditional = False  # True: the model generates a digit it is given
    has_likelihood = False  # True: likelihood() bounds the test set's log-likelihood
    inputs = {}
    exported = {}

    def __init__(self):
        super().__init__(name=type(self).name)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.log_names}

    @property
    def metrics(self):
        """Keras's metric trackers: the epoch's mean of each of `log_names`."""
        return list(self.trackers.values())

    def compile_optimizers(self, optimizers, jit_compile="auto"):
        """What every model's `compile` does with its optimizers {name:
        (optimizer, network)}: each built over its network's trainable
        variables now (a checkpoint then restores its slots; under a
        tf.distribute strategy they are made in its scope), wrapped in
        Keras's loss scaling under the mixed_float16 policy; Keras's own
        `optimizer` is not used (None)."""
        super().compile(optimizer=None, jit_compile=jit_compile)
        self.optimizers = {}
        for name, (optimizer, network) in optimizers.items():
            if (keras.mixed_precision.global_policy().name == "mixed_float16"
                    and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(network.trainable_variables)
            self.optimizers[name] = optimizer
            setattr(self, name, optimizer)

    def train_step(self, data):
        """Keras's train step (`fit`): `step` on the batch `data`, (images,
        labels), its losses added to the epoch's means."""
        for name, value in self.step(data).items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def prepare(self, images):
        """uint8 images [n, 28, 28] (or [n, 28, 28, 3]) -> the float tensor
        the networks train on; applied once to the whole training set, which
        stays in memory."""
        raise NotImplementedError

    def step(self, batch):
        """One optimisation step on batch = (prepared images, labels), as a
        tf.function; returns {name of `log_names`: scalar tensor}."""
        raise NotImplementedError

    def images(self):
        """The per-epoch picture, a uint8 array [height, width] (or [height,
        width, 3]): a deterministic function of the weights (fixed noise,
        fixed digits). Or several, {name: picture}: "image" is the main one,
        the others are written as images/<name>_at_epoch_N.png."""
        raise NotImplementedError

    def draw(self, n, seed=0, digit=None):
        """{name: tensor} for every one of `inputs`: n draws from `seed`
        (a conditional model's digit: conditional_labels(n, digit))."""
        raise NotImplementedError

    def generate(self, inputs):
        """The images the generator makes of `inputs` (as `draw` gives
        them), float32 [n, 28, 28, channels] in [0, 1]; TensorFlow
        operations only, so that an export can serve it."""
        raise NotImplementedError

    def sample(self, n, seed=0, digit=None, batch=1000):
        """n generated images, float32 [n, 28, 28] (or [n, 28, 28, 3]) in
        [0, 1]: the images of draw(n, seed, digit), a deterministic function
        of the weights and `seed` (for the metrics, generate and export)."""
        drawn = self.draw(n, seed, digit)
        return pictures(np.concatenate([
            self.generate({name: value[i:i + batch] for name, value in drawn.items()}).numpy()
            for i in range(0, n, batch)]))

    def export_card(self):
        """What an export says of the model (common/export.py): {"networks":
        {name of each of `exported`: {"input": words, "output": words}},
        "python": lines that load the first from its .keras file, with Keras
        and numpy alone, and make 16 images of it in [0, 1]}."""
        raise NotImplementedError(f"{type(self).__name__} has no export card")

    def test_metrics(self):
        """{name of `test_metric_names`: float}, computed every --eval-every
        epochs."""
        return {}

    def likelihood(self, images, iw_samples, seed=0, progress=None):
        """Bounds on the test-set log-likelihood of the first `images` test
        images, {name: nats per image}, for models that define one
        (has_likelihood); progress(images done) as it goes."""
        return {}

    def parameter_count(self):
        """Weights of all the networks, trainable or not, as Keras's
        count_params() counts them, but for subclassed models too."""
        return sum(math.prod(w.shape) for net in self.networks.values() for w in net.weights)

    def figures(self, path):
        """Write the model's own end-of-run figures, each to path(name)
        (RunDir.figure)."""


def with_channels(images):
    """uint8 images [..., 28, 28] or [..., 28, 28, 3] -> float32 [..., 28,
    28, channels], the shape the networks take."""
    import tensorflow as tf

    images = tf.cast(images, tf.float32)
    return images[..., None] if images.shape[-1] == SIDE else images



def step_decay(learning_rate, milestones, decay, steps_per_epoch):
    """The learning rate multiplied by `decay` at the end of each epoch of
    `milestones` (PyTorch's MultiStepLR): a schedule of the optimizer's
    step count, which a checkpoint holds, so a run resumed anywhere goes on
    at the rate it had. Without milestones, the constant `learning_rate`."""
    if not milestones:
        return learning_rate
    # the step number the schedule sees is 0 at the first step: step
    # m * steps_per_epoch, the first of epoch m + 1, is the first at the new rate
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [m * steps_per_epoch - 1 for m in milestones],
        [learning_rate * decay ** i for i in range(len(milestones) + 1)])


def apply_gradients(optimizer, tape, loss, variables):
    """One optimizer step on `variables` from `loss`, a mean over this
    replica's examples (its tape closed). Backpropagation starts from a
    scale rather than 1: Keras optimizers sum gradients across tf.distribute
    replicas, so the scale is 1 / replicas and the sum is the gradient of
    the global batch's mean; under fp16 it also holds the loss scale (the
    optimizer unscales), so small gradients do not underflow. One replica,
    fp32: a scale of 1, the plain gradient."""
    import tensorflow as tf

    replicas = tf.distribute.get_replica_context()
    scale = optimizer.scale_loss(tf.ones_like(loss)) / replicas.num_replicas_in_sync
    gradients = tape.gradient(loss, variables, output_gradients=scale)
    if hasattr(optimizer, "inner_optimizer") and replicas.num_replicas_in_sync > 1:
        # Keras's loss scaling looks for an overflow in the first replica's
        # gradients only, before they are summed: an inf on another would
        # reach the weights. Every replica's gradients become inf where any
        # replica's are not finite, so that all skip the step and the scale halves.
        overflows = replicas.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(
            tf.logical_not(tf.reduce_all([tf.reduce_all(tf.math.is_finite(g))
                                          for g in gradients if g is not None])), tf.float32))
        gradients = [g if g is None else tf.where(overflows == 0, g, tf.constant(np.inf, g.dtype))
                     for g in gradients]
    optimizer.apply_gradients(zip(gradients, variables))
