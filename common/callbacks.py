"""Keras callbacks for what a run writes as it trains, each usable with
`model.fit` as with the long-run loop (common/training.py), which calls
them through a keras.callbacks.CallbackList."""
from pathlib import Path

import keras

from common import images
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
