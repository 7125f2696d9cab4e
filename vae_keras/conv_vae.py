"""The convolutional VAE of report 000 (section 4.2): the TensorFlow CVAE
tutorial's encoder and decoder, a 2-D latent space by default, trained
on binarized MNIST with Adam(1e-4) and batch 32."""
import keras
from keras import layers

from vae_keras.vae import VAE


def make_encoder(latent_dim=2, channels=1):
    """28x28x1 image (28x28x3, stacked) -> [mean, log-variance] of q(z|x),
    2 * latent_dim values."""
    return keras.Sequential([
        layers.Input((28, 28, channels)),
        layers.Conv2D(32, 3, strides=2, activation="relu"),
        layers.Conv2D(64, 3, strides=2, activation="relu"),
        layers.Flatten(),
        layers.Dense(2 * latent_dim),
    ], name="encoder")


def make_decoder(latent_dim=2, channels=1):
    """z -> 28x28x1 (28x28x3) Bernoulli logits."""
    return keras.Sequential([
        layers.Input((latent_dim,)),
        layers.Dense(7 * 7 * 32, activation="relu"),
        layers.Reshape((7, 7, 32)),
        layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2DTranspose(channels, 3, strides=1, padding="same"),
    ], name="decoder")


class ConvVAE(VAE):
    name = "conv_vae"
    networks_by_preset = {"report000": (make_encoder, make_decoder)}
