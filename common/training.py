"""The one training loop every model shares: the tf.data pipeline, epochs,
per-epoch timing, history.csv, checkpoints and resume, TensorBoard, and the
per-epoch picture. common/model.py says what a model brings to it."""
import math
import sys
import time

import keras
import tensorflow as tf

from common import images

KEEP_CHECKPOINTS = 3


def describe_device():
    """The device TensorFlow trains on, in words, for the log and config.json."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"CPU (TensorFlow {tf.__version__} sees no GPU)"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    unused = f" ({len(gpus) - 1} more GPUs unused)" if len(gpus) > 1 else ""
    return f"GPU:0 {name}{unused}"


def batches(data, prepare, batch_size, seed):
    """A function epoch -> tf.data.Dataset of (images, labels) batches.

    The training set is prepared once, as one array op, and kept in memory
    (a per-image map then .cache() took 2-3 s longer for the 60,000 images);
    each epoch is reshuffled with a seed drawn from (seed, epoch), so a
    resumed run sees the order an uninterrupted one would have, batched and
    prefetched. The last, smaller batch is kept, as in the TensorFlow
    tutorials."""
    prepared = tf.data.Dataset.from_tensor_slices(
        (prepare(data.train_images), tf.cast(data.train_labels, tf.int32)))
    size = len(data.train_images)

    def epoch_batches(epoch):
        return (prepared.shuffle(size, seed=seed * 100_003 + epoch)
                .batch(batch_size)
                .prefetch(tf.data.AUTOTUNE))
    return epoch_batches


def train(model, data, run, *, epochs, batch_size, seed, save_every=1, checkpoint_every=1,
          eval_every=1, evaluator=None, metrics_every=0):
    """Train `model` up to epoch `epochs`, resuming from the run's latest
    checkpoint. Each epoch appends a row to history.csv (written before the
    checkpoint, and trimmed back to it on resume, so it holds every epoch
    exactly once), logs to TensorBoard, writes the picture every
    `save_every` epochs, the model's evaluation every `eval_every`, and the
    `evaluator`'s sample-quality metrics to metrics.csv every
    `metrics_every` (their time is not part of the epoch's seconds); the last
    epoch always does everything."""
    checkpoint, manager = _checkpoint(model, run)
    start = _restore(checkpoint, manager)
    if start:
        print(f"Resuming {run.path} from its checkpoint after epoch {start} "
              f"(training to epoch {epochs})", flush=True)
    history = [row for row in run.read_table("history") if row["epoch"] <= start]
    scores = [row for row in run.read_table("metrics") if row["epoch"] <= start]
    columns = ("epoch", "seconds", "images_per_sec", *model.metrics, *model.eval_metrics)
    epoch_batches = batches(data, model.prepare, batch_size, seed)
    steps = math.ceil(len(data.train_images) / batch_size)
    writer = tf.summary.create_file_writer(str(run.logs))

    if start >= epochs:
        print(f"{run.path} has trained {start} epochs already (--epochs {epochs}): nothing to train")
    for epoch in range(start + 1, epochs + 1):
        last = epoch == epochs
        began = time.perf_counter()
        row = {"epoch": epoch, **_run_epoch(model.train_step, epoch_batches(epoch), steps)}
        if epoch % eval_every == 0 or last:
            row.update(model.evaluate())
        pictures = _pictures(model) if epoch % save_every == 0 or last else {}
        for name, picture in pictures.items():
            images.save_png(picture, run.image_path(epoch, name))
        row["seconds"] = time.perf_counter() - began
        row["images_per_sec"] = len(data.train_images) / row["seconds"]
        history.append(row)
        run.write_table("history", history, columns)
        _log(writer, row, pictures.get("image"))
        print(f"Time for epoch {epoch} is {row['seconds']:.3f} sec "
              f"({row['images_per_sec']:.0f} images/sec)  "
              + "  ".join(f"{name} {row[name]:.4f}" for name in columns[3:] if name in row),
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
    resumed run draws the dropout masks it would have drawn."""
    variables = {f"{name}_variables": network.variables for name, network in model.networks.items()}
    checkpoint = tf.train.Checkpoint(epoch=tf.Variable(0, dtype=tf.int64), rng=model.rng,
                                     **model.networks, **model.optimizers, **variables)
    return checkpoint, tf.train.CheckpointManager(checkpoint, run.checkpoints,
                                                  max_to_keep=KEEP_CHECKPOINTS)


def _restore(checkpoint, manager):
    if not manager.latest_checkpoint:
        return 0
    checkpoint.restore(manager.latest_checkpoint).assert_consumed()
    return int(checkpoint.epoch)


def _run_epoch(step, dataset, steps):
    """Run `step` on every batch; the mean of each returned scalar. Step
    outputs stay on the device until the epoch ends (no per-step sync)."""
    bar = keras.utils.Progbar(steps) if sys.stdout.isatty() else None
    outputs = []
    for i, batch in enumerate(dataset, 1):
        outputs.append(step(batch))
        if bar is not None:
            bar.update(i)
    return {name: float(tf.reduce_mean([out[name] for out in outputs])) for name in outputs[0]}


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
