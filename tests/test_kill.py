"""A training process killed with SIGKILL mid-epoch resumes where it stopped:
from the checkpoint the files hold, with every epoch in history.csv once, and
the losses an uninterrupted run of the same seed has."""
import csv
import signal
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from conftest import STOPPED_RUNS, environment, stopped_run, write_mnist
from PIL import Image

pytestmark = pytest.mark.slow  # real processes, killed


def _epochs_done(out):
    try:
        with open(out / "history.csv", newline="") as f:
            return [row for row in csv.DictReader(f)]
    except FileNotFoundError:
        return []


def saved_epoch(out):
    """The number of the run's latest checkpoint (its epoch), from the
    checkpoint state file TensorFlow rewrites whole; 0 before the first."""
    latest = tf.train.latest_checkpoint(str(out / "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def checkpoint_epoch(out):
    """The epoch stored in the run's latest checkpoint, read from its files."""
    latest = tf.train.latest_checkpoint(str(out / "checkpoints"))
    return int(tf.train.load_variable(latest, "epoch/.ATTRIBUTES/VARIABLE_VALUE"))


EPOCHS = 4  # conftest.STOPPED_RUNS's
MEASURED = {"epoch", "seconds", "train_seconds", "images_per_sec", "host_mb", "device_mb"}


# A GAN and a VAE: what a kill tests is the shared loop's and the run
# directory's; that every model's state (InfoGAN's codes, the VAE-GAN's three
# networks) comes back whole from its checkpoint is tested in process, each
# model's test_resumed_run_equals_an_uninterrupted_one.
@pytest.mark.parametrize("model", STOPPED_RUNS)
def test_sigkill_mid_epoch_then_resume_as_if_never_killed(model, tmp_path, uninterrupted, held):
    data_dir = write_mnist(tmp_path / "data", n_train=STOPPED_RUNS[model][2])

    def run(out):
        return stopped_run(model, data_dir, out)

    uninterrupted.start(model)  # the run never killed trains beside the one that is
    out = tmp_path / "run"
    killed = held(run(out))
    killed.hold(3)  # after epoch 3's first graph call (conftest.Held)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    killed_at = checkpoint_epoch(out)
    assert killed_at == 2 and saved_epoch(out) == 2, "not killed inside epoch 3"

    resumed = subprocess.run(run(out), env=environment(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"from its checkpoint after epoch {killed_at}" in resumed.stdout
    assert f"Time for epoch {killed_at + 1} is" in resumed.stdout
    assert "Time for epoch 1 is" not in resumed.stdout
    assert checkpoint_epoch(out) == EPOCHS

    history, whole = _epochs_done(out), _epochs_done(uninterrupted(model))
    assert [int(row["epoch"]) for row in history] == list(range(1, EPOCHS + 1))
    columns = [name for name in history[0] if name not in MEASURED]  # losses, evaluations
    assert len(columns) >= 3, columns
    np.testing.assert_allclose([[float(row[c]) for c in columns] for row in history],
                               [[float(row[c]) for c in columns] for row in whole],
                               rtol=1e-6)

    indexes = sorted(p.name for p in (out / "checkpoints").glob("*.index"))
    assert indexes == [f"ckpt-{e}.index" for e in range(EPOCHS - 2, EPOCHS + 1)]
    pictures = sorted((out / "images").glob("image_at_epoch_*.png"))
    assert [p.name for p in pictures] == [f"image_at_epoch_{e:04d}.png"
                                          for e in range(1, EPOCHS + 1)]
    for path in [*pictures, out / "progress.gif", out / "losses.png", out / "timing.png"]:
        with Image.open(path) as image:
            image.load()  # decodes the whole file
    assert not list(out.rglob(".*.tmp-*"))
