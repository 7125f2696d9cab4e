"""The evaluation classifier: a small CNN trained once per data set on its
training split, cached on disk, whose penultimate layer is the feature space
of the sample-quality metrics (common/evaluation/metrics.py), as the Inception network
is for FID on natural images (Heusel et al. 2017). It is built, trained and
run in float32 whatever precision policy the run trains in, so that every
run's metrics are measured with the same numbers."""
import contextlib
import fcntl
import hashlib
import inspect
import json
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from common.atomic import atomic_write, check_directory

EPOCHS, BATCH, LEARNING_RATE, SEED = 6, 128, 1e-3, 0  # 99.2% on MNIST in about a minute here
FEATURES = "features"  # the name of the layer the metrics read
WEIGHTS, INFO = "classifier.weights.h5", "info.json"  # the cache's files


def make_classifier():
    """28x28 grey image in [0, 1] -> 10 logits; the 128-unit ReLU layer
    before the output is the feature space."""
    return keras.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dropout(0.25),
        layers.Dense(128, activation="relu", name=FEATURES),
        layers.Dropout(0.5),
        layers.Dense(10),
    ], name="classifier")


@contextlib.contextmanager
def _float32():
    """Keras's global precision policy set to float32 inside, restored after:
    layers take their policy when they are made."""
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(policy)


@contextlib.contextmanager
def _only_process(directory):
    """An OS lock on `directory`'s lock file, held inside: runs started
    together (a sweep's --workers) find the classifier one of them trains
    rather than all training it into one place. Where the file system has
    no locks, nothing is held."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.with_name(f".{directory.name}.lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"Waiting for another process training the classifier into {directory}",
                  flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError:  # no locks on this file system
            pass
        yield


def to_input(images):
    """uint8 images [n, 28, 28] or floats in [0, 1] -> float32 [n, 28, 28, 1]."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images / 255.0
    return images.astype(np.float32)[..., None]


class Classifier:
    """A trained classifier: `features` and `probabilities` of images."""

    def __init__(self, model, info):
        self.model, self.info = model, info
        self._both = keras.Model(model.inputs,
                                 [model.get_layer(FEATURES).output, model.outputs[0]])

    def features_and_probabilities(self, images, batch=1000):
        """(features [n, 128] float64, softmax probabilities [n, 10] float64)."""
        parts = [self._infer(to_input(images[i:i + batch])) for i in range(0, len(images), batch)]
        features = np.concatenate([f.numpy() for f, _ in parts]).astype(np.float64)
        probabilities = np.concatenate([p.numpy() for _, p in parts]).astype(np.float64)
        return features, probabilities

    @tf.function(reduce_retracing=True)
    def _infer(self, x):
        features, logits = self._both(x, training=False)
        return features, tf.nn.softmax(logits)


def cache_dir(run_path, given=None):
    """Where the classifier is cached for a run: `given` (--classifier-dir),
    else beside the run directory (outputs/classifier for runs in outputs/)."""
    return Path(given) if given else Path(run_path).parent / "classifier"


def load_or_train(data, cache_root):
    """The classifier for `data` (its full training split; a stacked set's
    is that of the digits its channels are drawn from), from
    `cache_root/<dataset>-<key>/` if there, else trained and saved there. The
    key hashes what makes the classifier (its network, its training and its
    settings, as code) and the training data, so a change to one of them
    trains a new one, and an edit elsewhere in this file does not. A cache that cannot be written is a UsageError
    naming --classifier-dir, before any training; one that holds the
    classifier is only read."""
    data = data.digits or data
    recipe = "".join(inspect.getsource(f) for f in (make_classifier, _train, to_input))
    recipe += repr((EPOCHS, BATCH, LEARNING_RATE, SEED))
    key = hashlib.sha256(recipe.encode() + data.train_images.tobytes()
                         + data.train_labels.tobytes()).hexdigest()[:16]
    directory = Path(cache_root) / f"{data.name}-{key}"
    with _float32():
        if not _cached(directory):
            check_directory(cache_root, "--classifier-dir")
            with _only_process(directory):
                if not _cached(directory):  # nor by a process that held the lock before
                    return _train(data, key, directory)
        model = make_classifier()
        model.load_weights(directory / WEIGHTS)
        return Classifier(model, json.loads((directory / INFO).read_text()))


def _cached(directory):
    return (directory / WEIGHTS).exists() and (directory / INFO).exists()


def _train(data, key, directory):
    """Train the classifier on `data`'s training split, save it in `directory`."""
    weights, info_file = directory / WEIGHTS, directory / INFO
    print(f"Training the evaluation classifier for {data.name} on its {len(data.train_images)} "
          f"training images (once; cached in {directory})", flush=True)
    keras.utils.set_random_seed(SEED)
    model = make_classifier()
    steps = EPOCHS * -(-len(data.train_images) // BATCH)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
                      LEARNING_RATE, steps)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    began = time.perf_counter()
    model.fit(to_input(data.train_images), data.train_labels.astype(np.int32), epochs=EPOCHS,
              batch_size=BATCH, shuffle=True, verbose=1 if sys.stdout.isatty() else 0)
    seconds = time.perf_counter() - began
    _, accuracy = model.evaluate(to_input(data.test_images), data.test_labels.astype(np.int32),
                                 batch_size=1000, verbose=0)
    info = {"dataset": data.name, "key": key, "test_accuracy": float(accuracy),
            "train_images": len(data.train_images), "epochs": EPOCHS, "seconds": seconds}
    print(f"Evaluation classifier: test accuracy {accuracy:.4f} after {seconds:.0f} s", flush=True)
    directory.mkdir(parents=True, exist_ok=True)
    # Keras names the format by the file's suffix: save under a temporary
    # name that keeps it, then rename (the info file last: it marks done).
    partial = directory / "partial.weights.h5"
    model.save_weights(partial)
    partial.replace(weights)
    with atomic_write(info_file, "w") as f:
        json.dump(info, f, indent=2)
    return Classifier(model, info)
