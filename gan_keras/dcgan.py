"""The DCGANs of the reports (after Radford et al. 2016): report 000's, the
TensorFlow DCGAN tutorial's (its section 4.1), and the second form of
reports 001 and 004 (4x4 transposed convolutions). Their hyperparameters
are in presets.py."""
import keras
from keras import layers

from common.layers import Dropout, batch_normalization
from gan_keras.gan import GAN, torch_batch_norm


def tutorial_generator(noise_dim=100, channels=1):
    """Report 000, section 4.1: noise -> 28x28x1 in [-1, 1]; 2,330,944
    parameters, of which the BatchNorm moving statistics are not trained
    (28x28xchannels for Stacked MNIST, the rest unchanged)."""
    return keras.Sequential([
        layers.Input((noise_dim,)),
        layers.Dense(7 * 7 * 256, use_bias=False),
        batch_normalization(),
        layers.LeakyReLU(),
        layers.Reshape((7, 7, 256)),
        layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False),
        batch_normalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False),
        batch_normalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(channels, 5, strides=2, padding="same", use_bias=False,
                               activation="tanh"),
    ], name="generator")


def tutorial_discriminator(channels=1):
    """Report 000, section 4.1: 28x28x1 -> one logit; 212,865 parameters
    (28x28xchannels: Stacked MNIST's, or PacGAN's packed images)."""
    return keras.Sequential([
        layers.Input((28, 28, channels)),
        layers.Conv2D(64, 5, strides=2, padding="same"),
        layers.LeakyReLU(),
        Dropout(0.3),
        layers.Conv2D(128, 5, strides=2, padding="same"),
        layers.LeakyReLU(),
        Dropout(0.3),
        layers.Flatten(),
        layers.Dense(1),
    ], name="discriminator")


def report001_generator(noise_dim=96, channels=1):
    """Report 001, figure 3.3: FC 1024, ReLU, BatchNorm; FC 7x7x128, ReLU,
    BatchNorm; ConvT(64, 4x4, stride 2), ReLU, BatchNorm; ConvT(1, 4x4,
    stride 2), tanh (PyTorch's padding=1 is Keras's "same" here)."""
    return keras.Sequential([
        layers.Input((noise_dim,)),
        layers.Dense(1024, activation="relu"),
        torch_batch_norm(),
        layers.Dense(7 * 7 * 128, activation="relu"),
        torch_batch_norm(),
        layers.Reshape((7, 7, 128)),
        layers.Conv2DTranspose(64, 4, strides=2, padding="same", activation="relu"),
        torch_batch_norm(),
        layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh"),
    ], name="generator")


def report001_discriminator(channels=1):
    """Report 001, figure 3.4: Conv(32, 5x5), LeakyReLU(0.01), MaxPool 2;
    Conv(64, 5x5), LeakyReLU(0.01), MaxPool 2; FC 4x4x64, LeakyReLU(0.01);
    FC 1."""
    return keras.Sequential([
        layers.Input((28, 28, channels)),
        layers.Conv2D(32, 5),
        layers.LeakyReLU(0.01),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 5),
        layers.LeakyReLU(0.01),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(4 * 4 * 64),
        layers.LeakyReLU(0.01),
        layers.Dense(1),
    ], name="discriminator")


def report004_generator(noise_dim=100, channels=1):
    """Report 004, section 4.1: FC + BatchNorm + LeakyReLU; deconv +
    BatchNorm + LeakyReLU; deconv, tanh. Sizes (not given) as the second
    form of report 001: 7x7x128, then 4x4 stride-2 deconvolutions."""
    return keras.Sequential([
        layers.Input((noise_dim,)),
        layers.Dense(7 * 7 * 128),
        torch_batch_norm(),
        layers.LeakyReLU(0.2),
        layers.Reshape((7, 7, 128)),
        layers.Conv2DTranspose(64, 4, strides=2, padding="same"),
        torch_batch_norm(),
        layers.LeakyReLU(0.2),
        layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh"),
    ], name="generator")


def report004_discriminator(channels=1):
    """Report 004, section 4.1: conv, LeakyReLU; conv, LeakyReLU; FC. Strided
    convolutions rather than pooling, as the report describes DCGAN; 64 and
    128 4x4 filters (not given)."""
    return keras.Sequential([
        layers.Input((28, 28, channels)),
        layers.Conv2D(64, 4, strides=2, padding="same"),
        layers.LeakyReLU(0.2),
        layers.Conv2D(128, 4, strides=2, padding="same"),
        layers.LeakyReLU(0.2),
        layers.Flatten(),
        layers.Dense(1),
    ], name="discriminator")


class DCGAN(GAN):
    name = "dcgan"
    networks_by_preset = {
        "report000": (tutorial_generator, tutorial_discriminator),
        "report001": (report001_generator, report001_discriminator),
        "report004": (report004_generator, report004_discriminator),
    }
