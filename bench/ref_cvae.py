"""The TensorFlow CVAE tutorial's training loop, as the tutorial writes it
(tensorflow.org/tutorials/generative/cvae): statically binarized MNIST, a
tf.data pipeline, one @tf.function train step per batch, no options. Report
000 trained this model; the project's own loop (vae_keras/train.py) is
measured against it, for speed (python bench/speed.py --model conv_vae) and
for quality at equal epochs (python bench/parity.py).

    python bench/ref_cvae.py [--data-dir DIR] [--dataset NAME] [--images N] [--epochs E]
                             [--seed S] [--samples DIR]

prints `epoch N SECONDS s` after each epoch (the train steps alone), then
the tutorial's test-set ELBO. With --samples DIR, after each epoch
(outside the timing) it exports the decoder's means for --sample-count
prior draws, the tutorial's 4x4 grid of decoded prior samples, and the
epoch's time and test ELBO (bench/harness.py says where)."""
import time

import numpy as np
from harness import Export, load, parse_args

args = parse_args(__doc__, epochs=10)

import tensorflow as tf  # noqa: E402  (after the arguments: TensorFlow starts slowly)

if args.seed is not None:
    tf.keras.utils.set_random_seed(args.seed)

train_images, test_images, channels = load(args)  # channels: 1, or 3 on Stacked MNIST


def preprocess_images(images):
    # The tutorial's `images / 255.` then `np.where(images > .5, 1.0, 0.0)`,
    # compared on the uint8 pixels: the same zeros and ones, without two
    # float64 copies of the set (1 GB for Stacked MNIST's 26,000 test images).
    images = images.reshape((images.shape[0], 28, 28, channels))
    return (images > 127.5).astype("float32")


train_images = preprocess_images(train_images)
test_images = preprocess_images(test_images)

train_size = len(train_images)
batch_size = 32
test_size = len(test_images)

train_dataset = (tf.data.Dataset.from_tensor_slices(train_images)
                 .shuffle(train_size).batch(batch_size))
test_dataset = (tf.data.Dataset.from_tensor_slices(test_images)
                .shuffle(test_size).batch(batch_size))


class CVAE(tf.keras.Model):
    """Convolutional variational autoencoder."""

    def __init__(self, latent_dim):
        super(CVAE, self).__init__()
        self.latent_dim = latent_dim
        self.encoder = tf.keras.Sequential([
            tf.keras.layers.Input((28, 28, channels)),
            tf.keras.layers.Conv2D(filters=32, kernel_size=3, strides=(2, 2), activation="relu"),
            tf.keras.layers.Conv2D(filters=64, kernel_size=3, strides=(2, 2), activation="relu"),
            tf.keras.layers.Flatten(),
            # No activation
            tf.keras.layers.Dense(latent_dim + latent_dim),
        ])

        self.decoder = tf.keras.Sequential([
            tf.keras.layers.Input((latent_dim,)),
            tf.keras.layers.Dense(units=7 * 7 * 32, activation=tf.nn.relu),
            tf.keras.layers.Reshape(target_shape=(7, 7, 32)),
            tf.keras.layers.Conv2DTranspose(filters=64, kernel_size=3, strides=2, padding="same",
                                            activation="relu"),
            tf.keras.layers.Conv2DTranspose(filters=32, kernel_size=3, strides=2, padding="same",
                                            activation="relu"),
            # No activation
            tf.keras.layers.Conv2DTranspose(filters=channels, kernel_size=3, strides=1,
                                            padding="same"),
        ])

    @tf.function
    def sample(self, eps=None):
        if eps is None:
            eps = tf.random.normal(shape=(100, self.latent_dim))
        return self.decode(eps, apply_sigmoid=True)

    def encode(self, x):
        mean, logvar = tf.split(self.encoder(x), num_or_size_splits=2, axis=1)
        return mean, logvar

    def reparameterize(self, mean, logvar):
        eps = tf.random.normal(shape=tf.shape(mean))
        return eps * tf.exp(logvar * .5) + mean

    def decode(self, z, apply_sigmoid=False):
        logits = self.decoder(z)
        if apply_sigmoid:
            probs = tf.sigmoid(logits)
            return probs
        return logits


optimizer = tf.keras.optimizers.Adam(1e-4)


def log_normal_pdf(sample, mean, logvar, raxis=1):
    log2pi = tf.math.log(2. * np.pi)
    return tf.reduce_sum(
        -.5 * ((sample - mean) ** 2. * tf.exp(-logvar) + logvar + log2pi),
        axis=raxis)


def compute_loss(model, x):
    mean, logvar = model.encode(x)
    z = model.reparameterize(mean, logvar)
    x_logit = model.decode(z)
    cross_ent = tf.nn.sigmoid_cross_entropy_with_logits(logits=x_logit, labels=x)
    logpx_z = -tf.reduce_sum(cross_ent, axis=[1, 2, 3])
    logpz = log_normal_pdf(z, 0., 0.)
    logqz_x = log_normal_pdf(z, mean, logvar)
    return -tf.reduce_mean(logpx_z + logpz - logqz_x)


@tf.function
def train_step(model, x, optimizer):
    """Executes one training step and returns the loss.

    This function computes the loss and gradients, and uses the latter to
    update the model's parameters.
    """
    with tf.GradientTape() as tape:
        loss = compute_loss(model, x)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))


# The tutorial calls compute_loss eagerly here; in a tf.function the same
# estimate (its noise drawn by the function's own random ops) takes a third
# of the time, and memory stays flat: eagerly, Stacked MNIST's 26,000 test
# images grew the process by 3.3 GB (TensorFlow 2.21).
test_loss = tf.function(compute_loss)

epochs = args.epochs
# set the dimensionality of the latent space to a plane for visualization later
latent_dim = 2
num_examples_to_generate = 16

# keeping the random vector constant for generation (prediction) so
# it will be easier to see the improvement.
random_vector_for_generation = tf.random.normal(
    shape=[num_examples_to_generate, latent_dim])
model = CVAE(latent_dim)


def export_samples(epoch, seconds, test_elbo, batch=1000):
    """What common.evaluation scores: the decoder's means for prior draws
    of the noise of seed 0 (as it draws a run's samples); the picture; the
    epoch's time and test ELBO."""
    z = tf.random.Generator.from_seed(0).normal([args.sample_count, latent_dim])
    means = np.concatenate([model.sample(z[i:i + batch]).numpy()
                            for i in range(0, args.sample_count, batch)])
    picture = model.sample(random_vector_for_generation).numpy()
    export(epoch, means, picture, seconds=seconds, test_elbo=test_elbo)


export = Export(args.samples) if args.samples else None


for epoch in range(1, epochs + 1):
    start_time = time.time()
    for train_x in train_dataset:
        train_step(model, train_x, optimizer)
    end_time = time.time()
    print(f"epoch {epoch} {end_time - start_time:.3f} s", flush=True)

    loss = tf.keras.metrics.Mean()
    for test_x in test_dataset:
        loss(test_loss(model, test_x))
    elbo = -loss.result()
    print(f"Epoch: {epoch}, Test set ELBO: {float(elbo):.4f}", flush=True)
    if args.samples:
        export_samples(epoch, end_time - start_time, float(elbo))
