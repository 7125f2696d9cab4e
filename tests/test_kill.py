"""A training process killed with SIGKILL mid-epoch resumes where it stopped."""
import csv
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, write_mnist
from PIL import Image


def _epochs_done(out):
    try:
        with open(out / "history.csv", newline="") as f:
            return [row for row in csv.DictReader(f)]
    except FileNotFoundError:
        return []


# Training images per script, at batch 8: an epoch of about a second on two
# CPU cores, long enough to be killed in the middle of one.
SIZES = {"gan_keras/train.py": 256, "vae_keras/train.py": 2048}


@pytest.mark.parametrize("script", SIZES)
def test_sigkill_mid_epoch_then_resume(script, tmp_path):
    data_dir = write_mnist(tmp_path / "data", n_train=SIZES[script])
    out = tmp_path / "run"
    command = [sys.executable, script, "--data-dir", str(data_dir), "--out", str(out),
               "--epochs", "5", "--batch-size", "8", "--seed", "2"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 300
    while len(rows := _epochs_done(out)) < 2:
        assert process.poll() is None and time.monotonic() < deadline, "no epoch 2 in time"
        time.sleep(0.05)
    time.sleep(float(rows[1]["seconds"]) / 2)  # about half-way through epoch 3
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = len(_epochs_done(out))
    assert killed_at < 5, "the run finished before it could be killed"

    resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"from its checkpoint after epoch {killed_at}" in resumed.stdout
    assert f"Time for epoch {killed_at + 1} is" in resumed.stdout
    assert "Time for epoch 1 is" not in resumed.stdout

    assert [int(row["epoch"]) for row in _epochs_done(out)] == [1, 2, 3, 4, 5]
    indexes = sorted(p.name for p in (out / "checkpoints").glob("*.index"))
    assert indexes == ["ckpt-3.index", "ckpt-4.index", "ckpt-5.index"]
    pictures = sorted((out / "images").iterdir())
    assert [p.name for p in pictures] == [f"image_at_epoch_{e:04d}.png" for e in range(1, 6)]
    figures = [out / "progress.gif", out / "losses.png", out / "timing.png"]
    if script.startswith("vae"):
        figures += [out / "latent_manifold.png", out / "latent_scatter.png"]
    for path in [*pictures, *figures]:
        with Image.open(path) as image:
            image.load()  # decodes the whole file
    assert not list(out.rglob(".*.tmp-*"))
