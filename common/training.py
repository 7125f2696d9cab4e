"""The one training loop every model shares: epochs, per-epoch timing and
memory, history.csv, checkpoints and resume, TensorBoard, and the per-epoch
picture. common/model.py says what a model brings to it, common/feeding.py
how the batches reach it, common/devices.py on which devices."""
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import keras
import tensorflow as tf

from common import devices, feeding, images, pages

KEEP_CHECKPOINTS = 3


def train(model, data, run, *, epochs, batch_size, seed, save_every=1, checkpoint_every=1,
          eval_every=1, evaluator=None, metrics_every=0, strategy=None, steps_per_call=1,
          jit=False, data_on_device=False, profile_epoch=0):
    """Train `model` up to epoch `epochs`, resuming from the run's latest
    checkpoint. Each epoch appends a row to history.csv (written before the
    checkpoint, and trimmed back to it on resume, so it holds every epoch
    exactly once), logs to TensorBoard, writes the picture every
    `save_every` epochs, the model's evaluation every `eval_every`, and the
    `evaluator`'s sample-quality metrics to metrics.csv every
    `metrics_every` (mostly while the next epochs train: see _Scorer); the
    last epoch always does everything.

    Speed: `steps_per_call` train steps run inside one graph call, `jit`
    compiles the step with XLA, `data_on_device` keeps the training set on
    the device (common/feeding.py), and a tf.distribute `strategy` (the
    model built in its scope) splits each batch of `batch_size` across its
    replicas (see _stepper). history.csv's `seconds` is the whole epoch,
    `train_seconds` its train steps alone; epoch `profile_epoch`'s steps are
    profiled into the run's logs/."""
    checkpoint, manager = _checkpoint(model, run)
    start = _restore(checkpoint, manager)
    if start:
        print(f"Resuming {run.path} from its checkpoint after epoch {start} "
              f"(training to epoch {epochs})", flush=True)
    history = [row for row in run.read_table("history") if row["epoch"] <= start]
    writer = tf.summary.create_file_writer(str(run.logs))
    scores = [row for row in run.read_table("metrics") if row["epoch"] <= start]
    scorer = _Scorer(evaluator, run, writer, scores)
    if scorer.missing(start, metrics_every):  # killed while its statistics were computed
        scorer.submit(model, start)
        scorer.flush()
    scalars = (*model.metrics, *model.eval_metrics)
    columns = ("epoch", "seconds", "train_seconds", "images_per_sec", *scalars,
               *devices.memory_mb())
    batches = feeding.feed(data, model.prepare, batch_size, seed, strategy=strategy,
                           on_device=data_on_device)
    run_steps = _stepper(model.train_step, strategy, jit)
    page = pages.RunPage(run, model.plots)

    if start >= epochs:
        print(f"{run.path} has trained {start} epochs already (--epochs {epochs}): nothing to train")
    for epoch in range(start + 1, epochs + 1):
        last = epoch == epochs
        began = time.perf_counter()
        if epoch == profile_epoch:
            tf.profiler.experimental.start(str(run.logs))
        row = {"epoch": epoch, **_run_epoch(run_steps, batches.epoch(epoch), batches.steps,
                                            steps_per_call)}
        row["train_seconds"] = time.perf_counter() - began
        if epoch == profile_epoch:
            tf.profiler.experimental.stop()
        if epoch % eval_every == 0 or last:
            row.update(model.evaluate())
        pictures = _pictures(model) if epoch % save_every == 0 or last else {}
        for name, picture in pictures.items():
            images.save_png(picture, run.image_path(epoch, name))
        row["seconds"] = time.perf_counter() - began
        row["images_per_sec"] = len(data.train_images) / row["seconds"]
        row.update(devices.memory_mb())
        history.append(row)
        page.update(history)  # first: a kill between the two leaves the page ahead, not behind
        run.write_table("history", history, columns)
        _log(writer, row, pictures.get("image"))
        print(f"Time for epoch {epoch} is {row['seconds']:.3f} sec "
              f"({row['images_per_sec']:.0f} images/sec)  "
              + "  ".join(f"{name} {row[name]:.4f}" for name in scalars if name in row),
              flush=True)
        if evaluator is not None and (epoch % metrics_every == 0 or last):
            scorer.submit(model, epoch)
        scorer.flush(before=math.inf if last else epoch)
        if epoch % checkpoint_every == 0 or last:
            checkpoint.epoch.assign(epoch)
            manager.save(checkpoint_number=epoch)
    scorer.close()
    writer.close()
    if history:
        _finish(run, model, history)
    page.finish(history)


def restore(model, run):
    """Load the run's latest checkpoint into `model`; returns its epoch (0
    when the run has none)."""
    return _restore(*_checkpoint(model, run))


def _checkpoint(model, run):
    """Everything a resumed run needs (networks, optimizers, RNG, epoch),
    and the manager of the run's checkpoints.

    Keras 3 does not track the seed-generator state of Dropout layers in the
    object graph; listing every network's variables as well saves it, so a
    resumed run draws the dropout masks it would have drawn. Under fp16 the
    optimizer saved is the one inside the loss scaling, so a run may change
    --precision when it resumes (the loss scale then adapts again)."""
    variables = {f"{name}_variables": network.variables for name, network in model.networks.items()}
    optimizers = {name: getattr(optimizer, "inner_optimizer", optimizer)
                  for name, optimizer in model.optimizers.items()}
    checkpoint = tf.train.Checkpoint(epoch=tf.Variable(0, dtype=tf.int64), rng=model.rng,
                                     **model.networks, **optimizers, **variables)
    return checkpoint, tf.train.CheckpointManager(checkpoint, run.checkpoints,
                                                  max_to_keep=KEEP_CHECKPOINTS)


def _restore(checkpoint, manager):
    if not manager.latest_checkpoint:
        return 0
    checkpoint.restore(manager.latest_checkpoint).assert_consumed()
    return int(checkpoint.epoch)


def _stepper(step, strategy, jit):
    """run_steps(iterator, k): k train steps on the iterator's batches in one
    graph call, returning the sum of each scalar the step returns. Under a
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
        return totals
    return run_steps


def _run_epoch(run_steps, iterator, steps, per_call):
    """The mean over the epoch's steps of each scalar the step returns,
    `per_call` steps to a call. The sums stay on the device until the epoch
    ends (no host synchronization inside it but the terminal's progress bar)."""
    bar = keras.utils.Progbar(steps) if sys.stdout.isatty() else None
    totals, done = None, 0
    while done < steps:
        k = min(per_call, steps - done)
        outputs = run_steps(iterator, k)
        totals = outputs if totals is None else {n: totals[n] + outputs[n] for n in totals}
        done += k
        if bar is not None:
            bar.update(done)
    return {name: float(total) / steps for name, total in totals.items()}


def _pictures(model):
    """The model's pictures as {name: picture}; "image" is the main one."""
    pictures = model.images()
    return pictures if isinstance(pictures, dict) else {"image": pictures}


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

    def close(self):
        self.flush()
        if self.pool:
            self.pool.shutdown()


def _timed(function):
    began = time.perf_counter()
    return function(), time.perf_counter() - began


def _log(writer, row, picture=None):
    """A table's row (and picture) as TensorBoard summaries at step = epoch."""
    with writer.as_default(step=row["epoch"]):
        for name, value in row.items():
            if name != "epoch":
                tf.summary.scalar(name, value)
        if picture is not None:
            tf.summary.image("samples", picture[None, :, :, None])
    writer.flush()


def _finish(run, model, history):
    """The end-of-run figures: progress.gif, losses.png, timing.png, and
    the model's own."""
    last = history[-1]["epoch"]
    pictures = sorted((int(p.stem.rsplit("_", 1)[1]), p) for p in run.images.glob("image_at_epoch_*.png"))
    images.save_gif([p for epoch, p in pictures if epoch <= last], run.path / "progress.gif")
    images.plot_history(history, model.plots, run.path / "losses.png")
    images.plot_timing(history, run.path / "timing.png")
    model.figures(run.path)
