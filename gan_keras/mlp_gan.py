"""The fully connected GANs of reports 001, 003 and 004 (docs/models.md,
"Every GAN of the reports"): one pair of builders, each report's widths and
activations a preset. Their hyperparameters are in presets.py."""
import functools

import keras
from keras import layers

from common.layers import Dropout
from gan_keras.gan import GAN


def mlp_generator(noise_dim, channels=1, *, hidden, activation):
    """noise -> Dense(width) + activation for each hidden width -> 784 tanh
    (784 x channels), shaped as a 28x28xchannels image."""
    return keras.Sequential([
        layers.Input((noise_dim,)),
        *[layer for width in hidden for layer in (layers.Dense(width), activation())],
        layers.Dense(28 * 28 * channels, activation="tanh"),
        layers.Reshape((28, 28, channels)),
    ], name="generator")


def mlp_discriminator(channels=1, *, hidden, slope, dropout=0.0):
    """28x28xchannels -> 784 x channels -> Dense(width) + LeakyReLU(slope)
    (+ Dropout) for each hidden width -> one logit."""
    def block(width):
        return [layers.Dense(width), layers.LeakyReLU(slope)] + (
            [Dropout(dropout)] if dropout else [])
    return keras.Sequential([
        layers.Input((28, 28, channels)),
        layers.Flatten(),
        *[layer for width in hidden for layer in block(width)],
        layers.Dense(1),
    ], name="discriminator")


class MLPGAN(GAN):
    name = "mlp_gan"
    networks_by_preset = {
        # report 004, section 3.1: 64 -> 256 ReLU -> 256 ReLU -> 784 tanh;
        # 784 -> 256 LeakyReLU(0.2) -> 256 LeakyReLU(0.2) -> 1
        "report004": (functools.partial(mlp_generator, hidden=(256, 256), activation=layers.ReLU),
                      functools.partial(mlp_discriminator, hidden=(256, 256), slope=0.2)),
        # report 001, figures 3.1-3.2: noise -> 1024 ReLU -> 1024 ReLU -> 784 tanh;
        # 784 -> 256 LeakyReLU(0.01) -> 256 LeakyReLU(0.01) -> 1
        "report001": (functools.partial(mlp_generator, hidden=(1024, 1024),
                                        activation=layers.ReLU),
                      functools.partial(mlp_discriminator, hidden=(256, 256), slope=0.01)),
        # report 003, tables 1-2: 128 -> 256 -> 512 -> 1024 -> 784, LeakyReLU,
        # tanh; 784 -> 1024 -> 512 -> 256 -> 1, LeakyReLU and Dropout(0.3)
        # after each layer (slope 0.2, not given)
        "report003": (functools.partial(mlp_generator, hidden=(256, 512, 1024),
                                        activation=functools.partial(layers.LeakyReLU, 0.2)),
                      functools.partial(mlp_discriminator, hidden=(1024, 512, 256), slope=0.2,
                                        dropout=0.3)),
    }
