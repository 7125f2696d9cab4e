"""The one training loop every model shares: epochs, per-epoch timing and
memory, history.csv, checkpoints and resume, TensorBoard, and the per-epoch
picture. common/model.py says what a model brings to it, common/feeding.py
how the batches reach it, common/devices.py on which devices."""
import sys
import time

import keras
import tensorflow as tf

from common import devices, feeding, images

KEEP_CHECKPOINTS = 3


def train(model, data, run, *, epochs, batch_size, seed, save_every=1, checkpoint_every=1,
          eval_every=1, evaluator=None, metrics_every=0, strategy=None, steps_per_call=1,
          jit=False, data_on_device=False):
    """Train `model` up to epoch `epochs`, resuming from the run's latest
    checkpoint. Each epoch appends a row to history.csv (written before the
    checkpoint, and trimmed back to it on resume, so it holds every epoch
    exactly once), logs to TensorBoard, writes the picture every
    `save_every` epochs, the model's evaluation every `eval_every`, and the
    `evaluator`'s sample-quality metrics to metrics.csv every
    `metrics_every` (their time is not part of the epoch's seconds); the last
    epoch always does everything.

    Speed: `steps_per_call` train steps run inside one graph call, `jit`
    compiles the step with XLA, `data_on_device` keeps the training set on
    the device (common/feeding.py), and a tf.distribute `strategy` (the
    model built in its scope) splits each batch of `batch_size` across its
    replicas (see _stepper). history.csv's `seconds` is the whole epoch,
    `train_seconds` its train steps alone."""
    checkpoint, manager = _checkpoint(model, run)
    start = _restore(checkpoint, manager)
    if start:
        print(f"Resuming {run.path} from its checkpoint after epoch {start} "
              f"(training to epoch {epochs})", flush=True)
    history = [row for row in run.read_table("history") if row["epoch"] <= start]
    scores = [row for row in run.read_table("metrics") if row["epoch"] <= start]
    scalars = (*model.metrics, *model.eval_metrics)
    columns = ("epoch", "seconds", "train_seconds", "images_per_sec", *scalars,
               *devices.memory_mb())
    batches = feeding.feed(data, model.prepare, batch_size, seed, strategy=strategy,
                           on_device=data_on_device)
    run_steps = _stepper(model.train_step, strategy, jit)
    writer = tf.summary.create_file_writer(str(run.logs))

    if start >= epochs:
        print(f"{run.path} has trained {start} epochs already (--epochs {epochs}): nothing to train")
    for epoch in range(start + 1, epochs + 1):
        last = epoch == epochs
        began = time.perf_counter()
        row = {"epoch": epoch, **_run_epoch(run_steps, batches.epoch(epoch), batches.steps,
                                            steps_per_call)}
        row["train_seconds"] = time.perf_counter() - began
        if epoch % eval_every == 0 or last:
            row.update(model.evaluate())
        pictures = _pictures(model) if epoch % save_every == 0 or last else {}
        for name, picture in pictures.items():
            images.save_png(picture, run.image_path(epoch, name))
        row["seconds"] = time.perf_counter() - began
        row["images_per_sec"] = len(data.train_images) / row["seconds"]
        row.update(devices.memory_mb())
        history.append(row)
        run.write_table("history", history, columns)
        _log(writer, row, pictures.get("image"))
        print(f"Time for epoch {epoch} is {row['seconds']:.3f} sec "
              f"({row['images_per_sec']:.0f} images/sec)  "
              + "  ".join(f"{name} {row[name]:.4f}" for name in scalars if name in row),
              flush=True)
        if evaluator is not None and (epoch % metrics_every == 0 or last):
            scores.append(_score(evaluator, model, epoch, writer))
            run.write_table("metrics", scores, evaluator.columns)
        if epoch % checkpoint_every == 0 or last:
            checkpoint.epoch.assign(epoch)
            manager.save(checkpoint_number=epoch)
    writer.close()
    if history:
        _finish(run, model, history)


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


def _score(evaluator, model, epoch, writer):
    """The evaluator's metrics of the model now, logged and printed."""
    began = time.perf_counter()
    score = {"epoch": epoch, **evaluator.score(model)}
    score["seconds"] = time.perf_counter() - began
    _log(writer, {"epoch": epoch, **{f"metrics/{k}": v for k, v in score.items() if k != "epoch"}})
    print(f"Metrics at epoch {epoch} ({score['seconds']:.1f} sec)  "
          + "  ".join(f"{name} {score[name]:.4g}" for name in evaluator.columns[3:]), flush=True)
    return score


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
