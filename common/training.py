"""The long-run loop every model shares: what `fit` does, plus what a run of
thousands of epochs needs (docs/reliability.md): it resumes inside an
epoch, runs k steps a graph call, keeps the data on the device, stops at a
step boundary on a signal, and rolls back a non-finite loss. Everything
else is a Keras callback (common/callbacks.py, common/checkpoints.py).
common/model.py says what a model brings to it, common/feeding.py how the
batches reach it, common/devices.py on which devices.

`fit` cannot be this core: keras.callbacks.BackupAndRestore resumes a run
at the start of its epoch, not at the step it stopped."""
import contextlib
import signal
import sys
import time

import keras
import tensorflow as tf

from common import callbacks as cb
from common import feeding
from common.checkpoints import Checkpoints
from common.errors import Diverged, Terminated

MAX_ROLLBACKS = 3  # --on-nonfinite rollback: after these, the run stops as with stop


def train(model, data, run, options, *, evaluator=None, strategy=None, stop=None):
    """Train `model` on `data` into `run` (a RunDir) up to epoch
    options.epochs, from the run's newest checkpoint that restores; the
    loop's settings are the training command's options (common/cli.py says
    each). A tf.distribute `strategy` (the model built in its scope) splits
    each batch across its replicas; `evaluator` scores samples into
    metrics.csv; `stop`, a StopRequest, asks the run to save at its next
    step boundary and stop (Terminated)."""
    checkpoints = Checkpoints(model, run, options.checkpoint_every, options.keep_epochs)
    epoch = checkpoints.restore(owner=True)
    progress = checkpoints.progress
    batches = feeding.feed(data, model.prepare, options.batch_size * model.batches_per_step,
                           options.seed, strategy=strategy, on_device=options.data_on_device,
                           whole=model.batches_per_step > 1)
    run_steps = _stepper(model.step, strategy, options.jit, progress, _weights(model))
    callbacks = keras.callbacks.CallbackList(
        run_callbacks(run, data, options, checkpoints, evaluator), model=model,
        epochs=options.epochs, steps=batches.steps)
    _say_where(run, checkpoints, batches.steps, options.epochs)

    def stop_here():  # every earlier epoch's metrics first, then the checkpoint
        progress.seconds.assign(time.perf_counter() - began)
        callbacks.on_train_end({"stopped": "terminated"})
        checkpoints.save(epoch)

    at_boundary = _stop_notice(strategy, run, checkpoints, stop, stop_here)
    callbacks.on_train_begin({"initial_epoch": epoch, "initial_step": int(progress.step)})
    try:
        while epoch < options.epochs:
            callbacks.on_epoch_begin(epoch, {"seconds": float(progress.seconds)})
            began = time.perf_counter() - float(progress.seconds)
            try:
                with (tf.profiler.experimental.Profile(str(run.logs))
                      if epoch + 1 == options.profile_epoch else contextlib.nullcontext()):
                    _run_epoch(run_steps, batches.epoch(epoch + 1, skip=int(progress.step)),
                               batches.steps, options.steps_per_call, progress, callbacks,
                               at_boundary)
            except cb.NonFinite as found:
                epoch = _roll_back(found, epoch + 1, options.on_nonfinite, checkpoints, run)
                callbacks.on_train_begin({"initial_epoch": epoch})
                continue
            logs = progress.means()
            progress.reset()
            epoch += 1
            if epoch % options.eval_every == 0 or epoch == options.epochs:
                logs.update(model.test_metrics())
            callbacks.on_epoch_end(epoch - 1, logs)
    except BaseException as error:  # a NaN, Ctrl-C twice, a full disk: the page says so at once
        if not isinstance(error, Terminated):
            callbacks.on_train_end({"stopped": "diverged" if isinstance(error, Diverged)
                                    else "failed"})
        raise
    callbacks.on_train_end()


def run_callbacks(run, data, options, checkpoints, evaluator=None):
    """The callbacks of a training run, in the order they run at an epoch's
    end: the picture and the test metrics count in the epoch's seconds; the
    page is rewritten before history.csv (a kill between the two leaves the
    page ahead, not behind); every earlier epoch's sample metrics are
    written before the checkpoint."""
    picture = cb.EpochPicture(run.images, options.save_every)
    summaries = cb.EpochSummaries(run.logs, picture)
    return [picture, cb.EpochTiming(len(data.train_images)), cb.LivePage(run), cb.HistoryCSV(run),
            summaries,
            *([cb.SampleMetrics(evaluator, run, options.metrics_every, summaries)]
              if evaluator is not None else []),
            checkpoints, cb.Figures(run), cb.StopOnNonFinite()]


def _run_epoch(run_steps, iterator, steps, per_call, progress, callbacks, at_boundary):
    """The epoch's steps, `per_call` to a graph call, from the step
    `progress` has reached (a run resumed inside the epoch). The sums stay
    on the device; the host reads one flag a call (the sums too when it is
    false, to say which). at_boundary() comes before each call."""
    bar = keras.utils.Progbar(steps) if sys.stdout.isatty() else None
    done = int(progress.step)
    while done < steps:
        at_boundary()
        k = min(per_call, steps - done)
        finite = bool(run_steps(iterator, k))
        callbacks.on_train_batch_end(done, {"finite": finite, **({} if finite else progress.sums)})
        done += k
        if bar is not None:
            bar.update(done)


def _say_where(run, checkpoints, steps, epochs):
    if checkpoints.saved:
        epoch, inside = checkpoints.saved
        print(f"Resuming {run.path} from its checkpoint after epoch {epoch}"
              + (f", {inside} of {steps} steps into epoch {epoch + 1}" if inside else "")
              + f" (training to epoch {epochs})", flush=True)
    if checkpoints.saved and checkpoints.saved[0] >= epochs:
        print(f"{run.path} has trained {checkpoints.saved[0]} epochs already (--epochs {epochs}): "
              "nothing to train")


def _roll_back(found, epoch, on_nonfinite, checkpoints, run):
    """After non-finite values in `epoch`: raise Diverged or, with
    `on_nonfinite` "rollback", restore the newest checkpoint at half the
    learning rates and return its epoch."""
    rollbacks = sum(row["event"] == "rollback" for row in run.events())
    if on_nonfinite == "stop" or rollbacks >= MAX_ROLLBACKS or not checkpoints.saved:
        run.log_event(epoch, "diverged", found.what)
        raise Diverged(epoch, found.what, checkpoints.saved[0] if checkpoints.saved else 0,
                       rollbacks)
    rates = {name: float(optimizer.learning_rate) / 2  # of the rates that diverged
             for name, optimizer in checkpoints.optimizers.items()}
    restored = checkpoints.restore(owner=True)
    for name, optimizer in checkpoints.optimizers.items():
        optimizer.learning_rate = rates[name]
    run.log_event(epoch, "rollback", f"{found.what}; back to epoch {restored}, learning rate "
                  + ", ".join(f"{name} {rate:.4g}" for name, rate in rates.items()))
    print(f"Epoch {epoch}: {found.what}; rolled back to the checkpoint of epoch {restored} at "
          f"half the learning rate (rollback {rollbacks + 1} of {MAX_ROLLBACKS})", flush=True)
    return restored


class StopRequest:
    """The signal handler of the signals that stop a run at its next step
    boundary (SIGTERM, SIGHUP, a first Ctrl-C: cli.main installs it), and
    which came."""

    def __init__(self):
        self.signum = None

    def __call__(self, signum, frame=None):
        self.signum = signum

    def is_set(self):
        return self.signum is not None


def _stop_notice(strategy, run, checkpoints, request, stop_here):
    """at_boundary(), for the loop to call at every step boundary: once the
    run is to end (SIGTERM: a scheduler's or a spot machine's notice, before
    its grace period ends; SIGHUP: its terminal closed; Ctrl-C), it calls
    stop_here() and raises Terminated. One process ends when `request`, a
    StopRequest, has received a signal. A multi-worker run uses TensorFlow's
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
                exit_fn=stop, save_fn=stop_here))
        return handler.save_checkpoint_if_preempted

    def at_boundary():
        if request is not None and request.is_set():
            stop_here()
            stop(request.signum)

    return at_boundary


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


