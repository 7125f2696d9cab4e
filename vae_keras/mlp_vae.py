"""The fully connected VAEs of reports 001, 003 and 004 (docs/models.md,
"Every VAE of the reports") and of the likelihood literature (rezende2015):
one pair of builders, each report's widths a preset; and the conditional VAE of report 001, the same networks with a
one-hot label joined to the encoder's input and to z. Their
hyperparameters are in presets.py."""
import functools

import keras
from keras import layers

from vae_keras.vae import CLASSES, VAE


def mlp_encoder(latent_dim, channels=1, *, hidden, conditional=False):
    """28x28xchannels (+ one-hot label) -> 784 x channels (+ 10) ->
    Dense(width) + ReLU for each hidden width -> [mean, log-variance] of
    q(z|x)."""
    inputs = image = layers.Input((28, 28, channels))
    x = layers.Flatten()(image)
    if conditional:
        label = layers.Input((CLASSES,))
        inputs, x = [image, label], layers.Concatenate()([x, label])
    for width in hidden:
        x = layers.Dense(width, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(2 * latent_dim)(x), name="encoder")


def mlp_decoder(latent_dim, channels=1, *, hidden, conditional=False):
    """z (+ one-hot label) -> Dense(width) + ReLU for each hidden width ->
    784 x channels Bernoulli logits, shaped 28x28xchannels (the reports'
    sigmoid is in the loss)."""
    inputs = x = layers.Input((latent_dim,))
    if conditional:
        label = layers.Input((CLASSES,))
        inputs, x = [x, label], layers.Concatenate()([x, label])
    for width in hidden:
        x = layers.Dense(width, activation="relu")(x)
    return keras.Model(inputs, layers.Reshape((28, 28, channels))(
        layers.Dense(28 * 28 * channels)(x)), name="decoder")


def networks(hidden, conditional=False):
    """(make encoder, make decoder) with `hidden` widths, the decoder's mirrored."""
    return (functools.partial(mlp_encoder, hidden=hidden, conditional=conditional),
            functools.partial(mlp_decoder, hidden=hidden[::-1], conditional=conditional))


# Report 001 (methodology): three Linear + ReLU layers, then the mean and
# log-variance heads; widths not given (chosen: 512, 256, 128).
REPORT001 = (512, 256, 128)


class MLPVAE(VAE):
    name = "mlp_vae"
    networks_by_preset = {
        # report 004, section 3.1: 784 -> 512 -> 256 -> 2; 2 -> 256 -> 512 -> 784 sigmoid
        "report004": networks((512, 256)),
        "report001": networks(REPORT001),
        # report 003, tables 3-4: the same widths as report 004
        "report003": networks((512, 256)),
        # Rezende & Mohamed 2015 as pythae reproduces it: 784 -> 400 -> 40; 40 -> 400 -> 784
        "rezende2015": networks((400,)),
    }


class ConditionalVAE(VAE):
    name = "cvae"
    conditional = True
    networks_by_preset = {"report001": networks(REPORT001, conditional=True)}
