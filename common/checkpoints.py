"""A run's checkpoints: what a resumed run needs, saved at the end of
epochs (a Keras callback, usable with `fit`) and inside one when a run is
stopped, read back newest first past a damaged one (docs/reliability.md)."""
import errno
import os
import re
import shutil
import sys

import keras
import tensorflow as tf

from common import atomic, rundir
from common.errors import UsageError

KEEP_CHECKPOINTS = 3


class Checkpoints(keras.callbacks.Callback):
    """The run's checkpoints: networks, optimizers, RNG, the epoch, and how
    far the epoch in progress had come (`progress`). After every `every`-th
    epoch, the last, and those of `keep` it saves one; the last
    KEEP_CHECKPOINTS are kept, and those of `keep` for good, in RunDir.kept.
    Each is numbered by the epoch it ends, or, saved inside an epoch (a
    stopped run), by that epoch: the epoch's own checkpoint replaces it.

    Keras 3 does not track the seed-generator state of Dropout layers in the
    object graph; listing every network's variables as well saves it, so a
    resumed run draws the dropout masks it would have drawn. Under fp16 the
    optimizer saved is the one inside the loss scaling, so a run may change
    --precision when it resumes (the loss scale then adapts again)."""

    def __init__(self, model, run, every=1, keep=()):
        super().__init__()
        self.every, self.keep = every, frozenset(keep)
        variables = {f"{name}_variables": network.variables
                     for name, network in model.networks.items()}
        self.optimizers = {name: getattr(optimizer, "inner_optimizer", optimizer)
                           for name, optimizer in model.optimizers.items()}
        self.run, self.epoch = run, tf.Variable(0, dtype=tf.int64)
        self.progress = Progress(model.log_names)
        self.parts = dict(epoch=self.epoch, rng=model.rng, **model.networks, **self.optimizers,
                          **variables)
        self.checkpoint = tf.train.Checkpoint(**self.parts, progress=self.progress)
        self.manager = tf.train.CheckpointManager(self.checkpoint, run.checkpoints,
                                                  max_to_keep=KEEP_CHECKPOINTS)
        self.saved = None  # (epoch, step) of the newest checkpoint, restored or saved

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1  # Keras counts epochs from 0, the checkpoints from 1
        if number % self.every == 0 or number == self.params.get("epochs") or number in self.keep:
            self.save(number)

    def restore(self, owner=False):
        """Restore the newest checkpoint that reads; one that does not (torn,
        truncated, garbled) is passed over with a line on stderr saying so.
        Returns its epoch, 0 if the run has none; a UsageError if none
        restores. The `owner`, the process training the run, also trims
        history.csv and metrics.csv to that epoch and logs what was passed
        over in events.csv."""
        damaged = []
        for _, index in sorted(rundir.checkpoint_numbers(self.run.checkpoints).items(),
                               reverse=True):
            try:
                self.read(str(index.with_suffix("")))
            except (tf.errors.OpError, IndexError, ValueError, AssertionError) as error:
                damaged.append(f"{index.stem} ({reason(error)})")
                continue
            self.saved = (int(self.epoch), int(self.progress.step))
            if damaged:
                print(f"{self.run.checkpoints}: cannot restore {'; '.join(damaged)}; "
                      f"{'resuming from' if owner else 'reading'} {index.stem} (epoch "
                      f"{self.saved[0]})", file=sys.stderr, flush=True)
                if owner:
                    self.run.log_event(self.saved[0], "fallback", "; ".join(damaged))
            break
        else:
            if damaged:
                raise UsageError(f"no checkpoint in {self.run.checkpoints} can be restored: "
                                 f"{'; '.join(damaged)}")
        epoch = self.saved[0] if self.saved else 0
        if owner:
            for table in ("history", "metrics"):
                self.run.trim_table(table, epoch)
            self._keep()  # killed between saving this checkpoint and keeping it
        return epoch

    def read(self, path):
        """Restore the checkpoint at `path` (its prefix)."""
        if any(name.startswith("progress/") for name, _ in tf.train.list_variables(path)):
            self.checkpoint.restore(path).assert_consumed()
        else:  # saved before a checkpoint could fall inside an epoch: at an epoch's end
            self.progress.reset()
            tf.train.Checkpoint(**self.parts).restore(path).assert_consumed()

    def save(self, epoch):
        """Checkpoint the state after `epoch` and progress.step steps of the
        next, unless that is the newest checkpoint already. A full disk
        raises the OSError (ENOSPC) the other writers raise."""
        step = int(self.progress.step)
        if self.saved == (epoch, step):
            return
        self.epoch.assign(epoch)
        number = epoch + 1 if step else epoch
        try:
            self.manager.save(checkpoint_number=number)
        except tf.errors.ResourceExhaustedError as error:
            raise OSError(errno.ENOSPC, reason(error),
                          str(self.run.checkpoints / rundir.checkpoint_name(number))) from None
        self.saved = (epoch, step)
        self._keep()

    def _keep(self):
        """Keep the newest checkpoint for good, when it ends an epoch of
        `keep` and is not kept yet: its files linked into RunDir.kept (no
        copy, no second write; a copy where the file system has no links),
        the index last, so that a kept checkpoint with an index is whole."""
        if not self.saved or self.saved[1] or self.saved[0] not in self.keep:
            return
        source = self.run.checkpoints / rundir.checkpoint_name(self.saved[0])
        target = self.run.kept / source.name
        if target.with_suffix(".index").exists():
            return
        self.run.kept.mkdir(exist_ok=True)
        files = sorted(source.parent.glob(f"{source.name}.*"), key=lambda p: p.suffix == ".index")
        for file in files:
            partial = self.run.kept / f".{file.name}{atomic.TEMPORARY}{os.getpid()}"
            partial.unlink(missing_ok=True)
            try:
                os.link(file, partial)
            except OSError as error:
                if error.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise
                shutil.copy2(file, partial)
            partial.replace(self.run.kept / file.name)


class Progress(tf.Module):
    """How far the epoch in progress has come: its steps, the sums of the
    scalars they returned, its seconds of training. Saved in every
    checkpoint (zero at an epoch's end), so that a run stopped inside an
    epoch resumes inside it, with the sums it had."""

    def __init__(self, names):
        super().__init__(name="progress")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.sums = {name: tf.Variable(0.0, trainable=False) for name in names}

    def add(self, steps, totals):
        self.step.assign_add(steps)
        for name, total in totals.items():
            self.sums[name].assign_add(tf.cast(total, tf.float32))

    def means(self):
        """The mean of each scalar over the steps so far."""
        return {name: float(total) / int(self.step) for name, total in self.sums.items()}

    def reset(self):
        for variable in (self.step, self.seconds, *self.sums.values()):
            variable.assign(tf.zeros_like(variable))


def restore(model, run, epoch=None):
    """Load into `model` the run's newest checkpoint that restores, or the
    one at the end of `epoch` (a UsageError naming the epochs that have one
    when it has none); returns its epoch (0 when the run has none)."""
    if epoch is None:
        return Checkpoints(model, run).restore()
    path = run.checkpoint(epoch)
    if path is None:
        kept = run.checkpoint_epochs()
        raise UsageError(f"{run.path} kept no checkpoint of epoch {epoch}; it has epochs "
                         + (", ".join(map(str, kept)) if kept else "none"))
    checkpoints = Checkpoints(model, run)
    try:
        checkpoints.read(str(path))
    except (tf.errors.OpError, IndexError, ValueError, AssertionError) as error:
        raise UsageError(f"{path} cannot be restored ({reason(error)})") from None
    if (int(checkpoints.epoch), int(checkpoints.progress.step)) != (epoch, 0):
        raise UsageError(f"{path} was saved inside epoch {int(checkpoints.epoch) + 1}, not at "
                         f"the end of epoch {epoch}: resume the run to finish it")
    return epoch


def reason(error):
    """An exception in one line, without TensorFlow's graph-node prefix."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", str(error)).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
