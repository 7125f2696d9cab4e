"""The one training loop every model shares: epochs, per-epoch timing and
memory, history.csv, checkpoints and resume, TensorBoard, and the per-epoch
picture; and what a long run meets on the way: non-finite losses, SIGTERM,
a damaged checkpoint (docs/reliability.md). common/model.py says what a
model brings to it, common/feeding.py how the batches reach it,
common/devices.py on which devices."""
import contextlib
import errno
import math
import os
import re
import shutil
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import keras
import tensorflow as tf

from common import atomic, devices, feeding, images, pages, rundir
from common.callbacks import EpochPicture
from common.errors import Diverged, Terminated, UsageError

KEEP_CHECKPOINTS = 3
MAX_ROLLBACKS = 3  # --on-nonfinite rollback: after these, the run stops as with stop


def train(model, data, run, *, epochs, batch_size, seed, save_every=1, checkpoint_every=1,
          keep_epochs=(), eval_every=1, evaluator=None, metrics_every=0, strategy=None,
          steps_per_call=1, jit=False, data_on_device=False, profile_epoch=0,
          on_nonfinite="stop", terminate=None):
    """Train `model` up to epoch `epochs`, resuming from the run's newest
    checkpoint that restores (see _Checkpoints). Each epoch appends a row to
    history.csv (written before the checkpoint, and trimmed back to it on
    resume, so it holds every epoch exactly once), logs to TensorBoard,
    writes the picture every `save_every` epochs, the model's evaluation
    every `eval_every`, and the `evaluator`'s sample-quality metrics to
    metrics.csv every `metrics_every` (mostly while the next epochs train:
    see _Scorer); the last epoch always does everything. The checkpoints of
    the epochs in `keep_epochs` are kept for good, beside the last few.

    Speed: `steps_per_call` train steps run inside one graph call, `jit`
    compiles the step with XLA, `data_on_device` keeps the training set on
    the device (common/feeding.py), and a tf.distribute `strategy` (the
    model built in its scope) splits each batch of `batch_size` across its
    replicas (see _stepper). history.csv's `seconds` is the whole epoch,
    `train_seconds` its train steps alone; epoch `profile_epoch`'s steps are
    profiled into the run's logs/.

    What a long run meets: every graph call reports whether the losses it
    summed and the weights it left are finite. When they are not, nothing
    of the epoch is written and the run stops (Diverged), or, with
    `on_nonfinite` "rollback", goes back to its newest checkpoint at half
    the learning rates, MAX_ROLLBACKS times at most. Once `terminate` (a
    StopRequest) has had its signal (SIGTERM, SIGHUP), the run saves a
    checkpoint at the next step boundary and stops (Terminated); it then
    resumes inside the epoch (see
    _termination_notice). events.csv records each of these."""
    checkpoints = _Checkpoints(model, run, keep_epochs)
    start = checkpoints.restore(owner=True)
    inside = int(checkpoints.progress.step)  # steps of epoch start + 1 done already
    history = run.read_table("history")
    writer = tf.summary.create_file_writer(str(run.logs))
    scorer = _Scorer(evaluator, run, writer, run.read_table("metrics"))
    page = None
    try:
        if not inside and scorer.missing(start, metrics_every):
            scorer.submit(model, start)  # killed while its statistics were computed
            scorer.flush()
        scalars = (*model.log_names, *model.test_metric_names)
        columns = ("epoch", "seconds", "train_seconds", "images_per_sec", *scalars,
                   *devices.memory_mb())
        per_step = batch_size * model.batches_per_step
        batches = feeding.feed(data, model.prepare, per_step, seed, strategy=strategy,
                               on_device=data_on_device, whole=model.batches_per_step > 1)
        run_steps = _stepper(model.step, strategy, jit, checkpoints.progress, _weights(model))
        if checkpoints.saved:
            print(f"Resuming {run.path} from its checkpoint after epoch {start}"
                  + (f", {inside} of {batches.steps} steps into epoch {start + 1}" if inside else "")
                  + f" (training to epoch {epochs})", flush=True)
        page = pages.RunPage(run, model.plots, history)
        picture = EpochPicture(run.images, save_every)
        callbacks = keras.callbacks.CallbackList([picture], model=model, epochs=epochs)
        callbacks.on_train_begin()

        if start >= epochs:
            print(f"{run.path} has trained {start} epochs already (--epochs {epochs}): nothing to train")
        notice = _termination_notice(strategy, run, checkpoints, terminate)
        epoch = start
        while epoch < epochs:
            epoch += 1
            last = epoch == epochs
            began = time.perf_counter() - float(checkpoints.progress.seconds)
            callbacks.on_epoch_begin(epoch - 1)

            def save():  # SIGTERM: the epoch so far, after every earlier epoch's metrics
                scorer.flush()
                checkpoints.progress.seconds.assign(time.perf_counter() - began)
                checkpoints.save(epoch - 1)

            try:
                with (tf.profiler.experimental.Profile(str(run.logs)) if epoch == profile_epoch
                      else contextlib.nullcontext()):
                    row = {"epoch": epoch, **_run_epoch(
                        run_steps, batches.epoch(epoch, skip=int(checkpoints.progress.step)),
                        batches.steps, steps_per_call, checkpoints.progress, lambda: notice(save))}
                    row["train_seconds"] = time.perf_counter() - began
            except _NonFinite as found:
                epoch = _roll_back(found, epoch, on_nonfinite, checkpoints, run, scorer)
                history = run.read_table("history")
                continue
            checkpoints.progress.reset()
            if epoch % eval_every == 0 or last:
                row.update(model.test_metrics())
            callbacks.on_epoch_end(epoch - 1, row)
            row["seconds"] = time.perf_counter() - began
            row["images_per_sec"] = len(data.train_images) / row["seconds"]
            row.update(devices.memory_mb())
            history.append(row)
            page.update(history)  # first: a kill between the two leaves the page ahead, not behind
            run.write_table("history", history, columns)
            _log(writer, row, picture.written.get("image"))
            print(f"Time for epoch {epoch} is {row['seconds']:.3f} sec "
                  f"({row['images_per_sec']:.0f} images/sec)  "
                  + "  ".join(f"{name} {row[name]:.4f}" for name in scalars if name in row),
                  flush=True)
            if evaluator is not None and (epoch % metrics_every == 0 or last):
                scorer.submit(model, epoch)
            scorer.flush(before=math.inf if last else epoch)
            if epoch % checkpoint_every == 0 or last or epoch in checkpoints.keep:
                checkpoints.save(epoch)
        scorer.close()
        callbacks.on_train_end()
        if history:
            _finish(run, model, history)
        page.finish(history)
    finally:  # also when the run stops early: a NaN, SIGTERM, Ctrl-C, a full disk
        scorer.close(flush=False)  # what was pending is scored again on resume
        writer.close()
        if page is not None and page.training:  # stopped early: the page says so at once
            with contextlib.suppress(OSError):
                page.finish(run.read_table("history"))


def restore(model, run, epoch=None):
    """Load into `model` the run's newest checkpoint that restores, or the
    one at the end of `epoch` (a UsageError naming the epochs that have one
    when it has none); returns its epoch (0 when the run has none)."""
    if epoch is None:
        return _Checkpoints(model, run).restore()
    path = run.checkpoint(epoch)
    if path is None:
        kept = run.checkpoint_epochs()
        raise UsageError(f"{run.path} kept no checkpoint of epoch {epoch}; it has epochs "
                         + (", ".join(map(str, kept)) if kept else "none"))
    checkpoints = _Checkpoints(model, run)
    try:
        checkpoints._read(str(path))
    except (tf.errors.OpError, IndexError, ValueError, AssertionError) as error:
        raise UsageError(f"{path} cannot be restored ({_reason(error)})") from None
    if (int(checkpoints.epoch), int(checkpoints.progress.step)) != (epoch, 0):
        raise UsageError(f"{path} was saved inside epoch {int(checkpoints.epoch) + 1}, not at "
                         f"the end of epoch {epoch}: resume the run to finish it")
    return epoch


class _Checkpoints:
    """The run's checkpoints: everything a resumed run needs (networks,
    optimizers, RNG, the epoch, and how far the epoch in progress had come),
    the last KEEP_CHECKPOINTS kept, and those at the end of the epochs of
    `keep` kept for good, in RunDir.kept. Each is numbered by the epoch it
    ends, or, saved inside an epoch (SIGTERM), by that epoch: the epoch's
    own checkpoint replaces it.

    Keras 3 does not track the seed-generator state of Dropout layers in the
    object graph; listing every network's variables as well saves it, so a
    resumed run draws the dropout masks it would have drawn. Under fp16 the
    optimizer saved is the one inside the loss scaling, so a run may change
    --precision when it resumes (the loss scale then adapts again)."""

    def __init__(self, model, run, keep=()):
        self.keep = frozenset(keep)
        variables = {f"{name}_variables": network.variables
                     for name, network in model.networks.items()}
        self.optimizers = {name: getattr(optimizer, "inner_optimizer", optimizer)
                           for name, optimizer in model.optimizers.items()}
        self.run, self.epoch = run, tf.Variable(0, dtype=tf.int64)
        self.progress = _Progress(model.log_names)
        self.parts = dict(epoch=self.epoch, rng=model.rng, **model.networks, **self.optimizers,
                          **variables)
        self.checkpoint = tf.train.Checkpoint(**self.parts, progress=self.progress)
        self.manager = tf.train.CheckpointManager(self.checkpoint, run.checkpoints,
                                                  max_to_keep=KEEP_CHECKPOINTS)
        self.saved = None  # (epoch, step) of the newest checkpoint, restored or saved

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
                self._read(str(index.with_suffix("")))
            except (tf.errors.OpError, IndexError, ValueError, AssertionError) as error:
                damaged.append(f"{index.stem} ({_reason(error)})")
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

    def _read(self, path):
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
            raise OSError(errno.ENOSPC, _reason(error),
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


class _Progress(tf.Module):
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

    def reset(self):
        for variable in (self.step, self.seconds, *self.sums.values()):
            variable.assign(tf.zeros_like(variable))


class _NonFinite(Exception):
    """A graph call's losses or weights are not all finite; `what` says which."""

    def __init__(self, what):
        super().__init__(what)
        self.what = what


def _roll_back(found, epoch, on_nonfinite, checkpoints, run, scorer):
    """After non-finite values in `epoch`: raise Diverged or, with
    `on_nonfinite` "rollback", restore the newest checkpoint at half the
    learning rates and return its epoch."""
    scorer.flush()  # the earlier epochs' metrics, before the tables are trimmed
    rollbacks = sum(row["event"] == "rollback" for row in run.events())
    if on_nonfinite == "stop" or rollbacks >= MAX_ROLLBACKS or not checkpoints.saved:
        run.log_event(epoch, "diverged", found.what)
        raise Diverged(epoch, found.what, checkpoints.saved[0] if checkpoints.saved else 0,
                       rollbacks)
    rates = {name: float(optimizer.learning_rate) / 2  # of the rates that diverged
             for name, optimizer in checkpoints.optimizers.items()}
    restored = checkpoints.restore(owner=True)
    scorer.scores = run.read_table("metrics")
    for name, optimizer in checkpoints.optimizers.items():
        optimizer.learning_rate = rates[name]
    run.log_event(epoch, "rollback", f"{found.what}; back to epoch {restored}, learning rate "
                  + ", ".join(f"{name} {rate:.4g}" for name, rate in rates.items()))
    print(f"Epoch {epoch}: {found.what}; rolled back to the checkpoint of epoch {restored} at "
          f"half the learning rate (rollback {rollbacks + 1} of {MAX_ROLLBACKS})", flush=True)
    return restored


class StopRequest:
    """The signal handler of the signals that stop a run at its next step
    boundary (SIGTERM, SIGHUP: cli.main installs it), and which came."""

    def __init__(self):
        self.signum = None

    def __call__(self, signum, frame=None):
        self.signum = signum

    def is_set(self):
        return self.signum is not None


def _termination_notice(strategy, run, checkpoints, terminate):
    """notice(save), for the loop to call at every step boundary: once the
    run is to end (SIGTERM: a scheduler's or a spot machine's notice, before
    its grace period ends; SIGHUP: its terminal closed), it calls save() and
    raises Terminated. One process ends when `terminate`, a StopRequest, has
    received a signal. A multi-worker run uses TensorFlow's
    PreemptionCheckpointHandler instead, which watches for SIGTERM itself
    and has every worker save at the same step (saving is a collective
    operation there)."""
    def stop(signum=signal.SIGTERM):
        epoch, step = checkpoints.saved
        run.log_event(epoch + 1 if step else epoch, "terminated",
                      f"{signal.Signals(signum).name}; checkpoint saved {step} steps into the epoch")
        raise Terminated(epoch, step, signum)

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # The handler decides when; the save is ours (save_fn). Its own
        # manager keeps an empty checkpoint, in a folder never written: one
        # of ours it would restore when created, and add a counter to.
        handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            strategy.cluster_resolver,
            tf.train.CheckpointManager(tf.train.Checkpoint(), run.checkpoints / "preemption",
                                       max_to_keep=1),
            termination_config=tf.distribute.experimental.TerminationConfig(
                exit_fn=stop, save_fn=lambda save: save()))
        return handler.save_checkpoint_if_preempted

    def notice(save):
        if terminate is not None and terminate.is_set():
            save()
            stop(terminate.signum)

    return notice


def _reason(error):
    """An exception in one line, without TensorFlow's graph-node prefix."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", str(error)).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _weights(model):
    """The networks' float weights (batch-norm statistics included)."""
    return [weight for network in model.networks.values() for weight in network.weights
            if keras.backend.is_float_dtype(weight.dtype)]


def _stepper(step, strategy, jit, progress, weights):
    """run_steps(iterator, k): k train steps on the iterator's batches in one
    graph call, adding to `progress` the steps and the sum of each scalar
    the step returns; it returns whether those sums and the `weights` after
    the steps are all finite (the loss of a step is computed before its
    update: a non-finite update shows in the weights first). Under a
    strategy each step runs on every replica (its share of the batch) and
    the scalars are averaged across replicas; the models divide their
    losses by the replicas (common.model.apply_gradients), as the
    optimizers sum the replicas' gradients. With jit, the step is compiled
    by XLA (the iterator, outside it, cannot be)."""
    if jit:
        step = tf.function(step, jit_compile=True)
    if strategy is not None:
        replica_step = step

        def step(batch):
            outputs = strategy.run(replica_step, args=(batch,))
            return {name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                    for name, value in outputs.items()}

    @tf.function
    def run_steps(iterator, k):
        totals = step(next(iterator))
        for _ in tf.range(k - 1):
            outputs = step(next(iterator))
            totals = {name: totals[name] + outputs[name] for name in totals}
        progress.add(k, totals)
        return tf.reduce_all([tf.reduce_all(tf.math.is_finite(value))
                              for value in (*totals.values(), *weights)])
    return run_steps


def _run_epoch(run_steps, iterator, steps, per_call, progress, at_boundary):
    """The mean over the epoch's steps of each scalar the step returns,
    `per_call` steps to a call, from the step `progress` has reached (a run
    resumed inside the epoch). The sums stay on the device until the epoch
    ends; the host reads one flag at the end of each call, and raises
    _NonFinite when the call's losses or weights are not all finite.
    at_boundary() comes before each call: SIGTERM saves and stops there."""
    bar = keras.utils.Progbar(steps) if sys.stdout.isatty() else None
    done = int(progress.step)
    while done < steps:
        at_boundary()
        k = min(per_call, steps - done)
        if not run_steps(iterator, k):
            raise _NonFinite(", ".join(f"{name} {float(total)}"
                                       for name, total in progress.sums.items()
                                       if not math.isfinite(float(total)))
                             or "a weight (the losses still finite)")
        done += k
        if bar is not None:
            bar.update(done)
    return {name: float(total) / steps for name, total in progress.sums.items()}


class _Scorer:
    """The evaluator's sample-quality metrics, off the training's critical
    path: the device's half (samples, their features) runs between two
    epochs, the host's (numpy statistics) in a thread while the next epochs
    train. Rows reach metrics.csv, TensorBoard and the terminal in epoch
    order. The loop flushes every earlier epoch's row before it saves a
    checkpoint, so after a kill only the checkpoint's own epoch can lack
    its row; resume then scores it again, from that epoch's weights."""

    def __init__(self, evaluator, run, writer, scores):
        self.evaluator, self.run, self.writer, self.scores = evaluator, run, writer, scores
        self.pending = []  # (epoch, seconds of the device's half, future of the host's)
        self.pool = ThreadPoolExecutor(max_workers=1) if evaluator else None

    def missing(self, epoch, metrics_every):
        """Whether `epoch` (a checkpoint's) was to be scored and has no row."""
        return (self.evaluator is not None and epoch > 0 and epoch % metrics_every == 0
                and all(row["epoch"] != epoch for row in self.scores))

    def submit(self, model, epoch):
        began = time.perf_counter()
        statistics = self.evaluator.scoring(model)
        device_seconds = time.perf_counter() - began
        self.pending.append((epoch, device_seconds, self.pool.submit(_timed, statistics)))

    def flush(self, before=math.inf):
        """Write the rows of the scorings done, waiting for those of epochs
        before `before`."""
        while self.pending and (self.pending[0][0] < before or self.pending[0][2].done()):
            epoch, device_seconds, future = self.pending.pop(0)
            score, host_seconds = future.result()
            score = {"epoch": epoch, **score, "seconds": device_seconds + host_seconds}
            self.scores.append(score)
            self.run.write_table("metrics", self.scores, self.evaluator.columns)
            _log(self.writer, {"epoch": epoch, **{f"metrics/{k}": v for k, v in score.items()
                                                  if k != "epoch"}})
            print(f"Metrics at epoch {epoch} ({score['seconds']:.1f} sec)  " + "  ".join(
                f"{name} {score[name]:.4g}" for name in self.evaluator.columns[3:]), flush=True)

    def close(self, flush=True):
        """Write what is pending (with `flush`), then release the thread."""
        if flush:
            self.flush()
        if self.pool:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


def _timed(function):
    began = time.perf_counter()
    return function(), time.perf_counter() - began


def _log(writer, row, picture=None):
    """A table's row (and picture) as TensorBoard summaries at step = epoch."""
    with writer.as_default(step=row["epoch"]):
        for name, value in row.items():
            if name != "epoch":
                tf.summary.scalar(name, value)
        if picture is not None:  # [height, width] grey or [height, width, 3] colour
            tf.summary.image("samples", (picture if picture.ndim == 3 else picture[..., None])[None])
    writer.flush()


def _finish(run, model, history):
    """The end-of-run figures: progress.gif, losses.png, timing.png, and
    the model's own."""
    last = history[-1]["epoch"]
    pictures = sorted(run.pictures().get("image", {}).items())
    images.save_gif([p for epoch, p in pictures if epoch <= last], run.path / "progress.gif")
    images.plot_history(history, model.plots, run.path / "losses.png")
    images.plot_timing(history, run.path / "timing.png")
    model.figures(run.path)
