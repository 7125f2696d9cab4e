"""Fixtures: MNIST-format files written by the tests themselves, the real
MNIST when MNIST_DIR is set, and helpers to run the train.py scripts."""
import csv
import gzip
import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array, magic=None):
    """An IDX file's bytes: magic, one big-endian size per dimension, data."""
    array = np.asarray(array, dtype=np.uint8)
    magic = magic if magic is not None else (0x803 if array.ndim == 3 else 0x801)
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def write_file(path, raw):
    path = Path(path)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def synthetic_digits(n, seed=0):
    """n fake 28x28 'digits' (a bright random rectangle on black) and labels."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    for image in images:
        top, left = rng.integers(2, 12, size=2)
        height, width = rng.integers(8, 15, size=2)
        image[top:top + height, left:left + width] = rng.integers(150, 256)
    return images, rng.integers(0, 10, n).astype(np.uint8)


def write_mnist(directory, n_train=256, n_test=64, gz=True, seed=0):
    """The four IDX files of a synthetic data set in `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n, s in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
        images, labels = synthetic_digits(n, s)
        write_file(directory / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images))
        write_file(directory / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels))
    return directory


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same Python, numpy and TensorFlow seeds,
    whatever ran before it in this process: a model a test builds gets the
    same weights alone or in the whole suite; and in float32, whatever
    --precision a run before it set."""
    import keras

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def synthetic_mnist(tmp_path_factory):
    """256 training and 64 test images, IDX .gz, read-only by convention."""
    return write_mnist(tmp_path_factory.mktemp("synthetic_mnist"))


@pytest.fixture
def real_mnist():
    """The real MNIST IDX directory named by MNIST_DIR, else skip."""
    path = os.environ.get("MNIST_DIR")
    if not path:
        pytest.skip("MNIST_DIR is not set: real-data test skipped")
    return Path(path)


def run_script(script, *args, env=None, timeout=600):
    """Run `python <script> args...` from the repository root, as a user would."""
    return subprocess.run([sys.executable, script, *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def tree_digest(directory):
    """{relative path: sha256} of every file below `directory`."""
    directory = Path(directory)
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def history(out):
    """The rows of a run's history.csv, as strings."""
    with open(Path(out) / "history.csv", newline="") as f:
        return list(csv.DictReader(f))
