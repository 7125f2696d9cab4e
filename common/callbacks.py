"""Keras callbacks for what a run writes as it trains, each usable with
`model.fit` as with the long-run loop (common/training.py), which calls
them through a keras.callbacks.CallbackList in Keras's order.

Beyond what `fit` passes, the loop passes on_train_begin the epoch and
step it resumes from (`initial_epoch`, `initial_step`), on_epoch_begin the
seconds the epoch had trained before (`seconds`, a run resumed inside it),
on_train_batch_end whether the call's losses and weights are all finite
(`finite`), and on_train_end why a run stopped early (`stopped`:
"terminated" or "diverged", its files whole up to its checkpoint, or
"failed", an error on the way). A rollback
(--on-nonfinite rollback) begins training again from a checkpoint: each
callback's on_train_begin reads the run's files afresh."""
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import tensorflow as tf

from common import devices, images, pages
from common.rundir import picture_name


class EpochPicture(keras.callbacks.Callback):
    """Report 000's picture of every epoch: after each `every`-th epoch,
    and the last, the model's picture (`model.images()`: a GAN's 4x4 grid
    of fixed noise, a VAE's panel) as `directory`/image_at_epoch_NNNN.png,
    and its other pictures by their names. `written` holds the last ones
    written, {name: uint8 array}."""

    def __init__(self, directory, every=1):
        super().__init__()
        self.directory, self.every, self.written = Path(directory), every, {}

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1  # Keras counts epochs from 0, the files from 1
        if number % self.every and number != self.params.get("epochs"):
            self.written = {}
            return
        pictures = self.model.images()
        self.written = pictures if isinstance(pictures, dict) else {"image": pictures}
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, picture in self.written.items():
            images.save_png(picture, self.directory / picture_name(number, name))


class EpochTiming(keras.callbacks.Callback):
    """Adds to each epoch's logs its `seconds` (the whole epoch, until this
    callback: put it after those whose time counts), `train_seconds` (until
    the last train batch ended), `images_per_sec` of the `images` an epoch
    trains on, and the host's and device's memory (devices.memory_mb)."""

    def __init__(self, images):
        super().__init__()
        self.images = images

    def on_epoch_begin(self, epoch, logs=None):
        self.began = self.trained = time.perf_counter() - (logs or {}).get("seconds", 0.0)

    def on_train_batch_end(self, batch, logs=None):
        self.trained = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.began
        logs.update(seconds=seconds, train_seconds=self.trained - self.began,
                    images_per_sec=self.images / seconds, **devices.memory_mb())


class HistoryCSV(keras.callbacks.Callback):
    """history.csv, a row per epoch (its scalars, its test metrics when it
    has them, its timing), and the report's line for it on the terminal."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    def on_train_begin(self, logs=None):
        self.rows = self.run.read_table("history")
        self.scalars = (*self.model.log_names, *self.model.test_metric_names)
        self.columns = ("epoch", "seconds", "train_seconds", "images_per_sec", *self.scalars,
                        *devices.memory_mb())

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **logs}
        self.rows.append(row)
        self.run.write_table("history", self.rows, self.columns)
        print(f"Time for epoch {epoch + 1} is {row['seconds']:.3f} sec "
              f"({row['images_per_sec']:.0f} images/sec)  "
              + "  ".join(f"{name} {row[name]:.4f}" for name in self.scalars if name in row),
              flush=True)


class EpochSummaries(keras.callbacks.Callback):
    """TensorBoard summaries in `directory`, at step = epoch: each epoch's
    logs and the main picture `picture` (an EpochPicture) wrote, and the
    rows others `log`. (keras.callbacks.TensorBoard logs neither pictures
    nor rows of another table, and counts epochs from 0.)"""

    def __init__(self, directory, picture=None):
        super().__init__()
        self.directory, self.picture, self.writer = str(directory), picture, None

    def on_train_begin(self, logs=None):
        self.writer = self.writer or tf.summary.create_file_writer(self.directory)

    def on_epoch_end(self, epoch, logs=None):
        self.log(epoch + 1, logs, self.picture.written.get("image") if self.picture else None)

    def log(self, epoch, scalars, picture=None):
        """`scalars` {name: value} (and a uint8 picture) at step `epoch`."""
        with self.writer.as_default(step=epoch):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
            if picture is not None:  # [height, width] grey or [height, width, 3] colour
                tf.summary.image("samples",
                                 (picture if picture.ndim == 3 else picture[..., None])[None])
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class SampleMetrics(keras.callbacks.Callback):
    """The evaluator's sample-quality metrics (FD, KID, ...: docs/evaluation.md)
    of every `every`-th epoch and the last, into metrics.csv, the terminal
    and TensorBoard (`summaries`, an EpochSummaries), off the training's
    critical path: the device's half (samples, their features) runs between
    two epochs, the host's (numpy statistics) in a thread while the next
    epochs train. Rows are written in epoch order, every earlier epoch's by
    the end of an epoch (put the checkpoints after this callback), so after
    a kill only the checkpoint's own epoch can lack its row: resumed there,
    it is scored again, from that epoch's weights."""

    def __init__(self, evaluator, run, every, summaries=None):
        super().__init__()
        self.evaluator, self.run, self.every, self.summaries = evaluator, run, every, summaries
        self.pending, self.pool = [], None  # pending: (epoch, device seconds, host's future)

    def on_train_begin(self, logs=None):
        logs = logs or {}
        self._close(flush=False)  # a rollback: what was pending is scored again if needed
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.scores = self.run.read_table("metrics")
        start = int(logs.get("initial_epoch", 0))
        if (start and not logs.get("initial_step") and start % self.every == 0
                and all(row["epoch"] != start for row in self.scores)):
            self._submit(start)  # killed while its statistics were computed
            self._flush()

    def on_epoch_end(self, epoch, logs=None):
        number, last = epoch + 1, epoch + 1 == self.params.get("epochs")
        if number % self.every == 0 or last:
            self._submit(number)
        self._flush(before=math.inf if last else number)

    def on_train_end(self, logs=None):
        self._close(flush=(logs or {}).get("stopped") != "failed")

    def _submit(self, epoch):
        began = time.perf_counter()
        statistics = self.evaluator.scoring(self.model)
        device_seconds = time.perf_counter() - began
        self.pending.append((epoch, device_seconds, self.pool.submit(_timed, statistics)))

    def _flush(self, before=math.inf):
        """Write the rows of the scorings done, waiting for those of epochs
        before `before`."""
        while self.pending and (self.pending[0][0] < before or self.pending[0][2].done()):
            epoch, device_seconds, future = self.pending.pop(0)
            score, host_seconds = future.result()
            score = {"epoch": epoch, **score, "seconds": device_seconds + host_seconds}
            self.scores.append(score)
            self.run.write_table("metrics", self.scores, self.evaluator.columns)
            if self.summaries is not None:
                self.summaries.log(epoch, {f"metrics/{k}": v for k, v in score.items()
                                           if k != "epoch"})
            print(f"Metrics at epoch {epoch} ({score['seconds']:.1f} sec)  " + "  ".join(
                f"{name} {score[name]:.4g}" for name in self.evaluator.columns[3:]), flush=True)

    def _close(self, flush):
        if flush:
            self._flush()
        self.pending = []
        if self.pool:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


def _timed(function):
    began = time.perf_counter()
    return function(), time.perf_counter() - began


class LivePage(keras.callbacks.Callback):
    """The run's page (common/pages: index.html, and the index of the
    directory that holds the run), rewritten after every epoch and marked
    as no longer training when training ends, however it ends."""

    def __init__(self, run):
        super().__init__()
        self.run, self.page = run, None

    def on_train_begin(self, logs=None):
        self.rows = self.run.read_table("history")
        if self.page is None:
            self.page = pages.RunPage(self.run, self.model.plots, self.rows)

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch + 1, **logs})
        self.page.update(self.rows)

    def on_train_end(self, logs=None):
        if self.page is None:
            return
        try:
            self.page.finish(self.rows)
        except OSError:  # a full disk: the run's own error says so
            if (logs or {}).get("stopped") != "failed":
                raise


class Figures(keras.callbacks.Callback):
    """The figures of a run that trained to its end: progress.gif,
    losses.png, timing.png, and the model's own (model.figures)."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    def on_train_end(self, logs=None):
        history = self.run.read_table("history")
        if (logs or {}).get("stopped") or not history:
            return
        last = history[-1]["epoch"]
        pictures = sorted(self.run.pictures().get("image", {}).items())
        images.save_gif([p for epoch, p in pictures if epoch <= last], self.run.figure("progress"))
        images.plot_history(history, self.model.plots, self.run.figure("losses"))
        images.plot_timing(history, self.run.figure("timing"))
        self.model.figures(self.run.figure)


class NonFinite(ArithmeticError):
    """A loss or a weight is NaN or infinite: `what` says which."""

    def __init__(self, what):
        super().__init__(what)
        self.what = what


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training as soon as a train batch's losses (or, where the loop
    reports it as `finite`, a weight) are not all finite, by raising
    NonFinite: unlike keras.callbacks.TerminateOnNaN, nothing of the epoch
    is then written (no row, no checkpoint of its weights)."""

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        names = getattr(self.model, "log_names", None) or sorted(logs)  # in the model's order
        bad = [f"{name} {logs[name]}" for name in names
               if isinstance(logs.get(name), float) and not math.isfinite(logs[name])]
        if bad or not logs.get("finite", True):
            raise NonFinite(", ".join(bad) or "a weight (the losses still finite)")
