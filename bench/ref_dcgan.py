"""The TensorFlow DCGAN tutorial's training loop, as the tutorial writes it
(tensorflow.org/tutorials/generative/dcgan): a tf.data pipeline, one
@tf.function train step per batch, no options. Report 000 trained this
model; the project's own loop (gan_keras/train.py) is measured against it,
for speed (python bench/speed.py) and for quality at equal epochs
(python bench/parity.py).

    python bench/ref_dcgan.py [--data-dir DIR] [--dataset NAME] [--images N] [--epochs E]
                              [--seed S] [--samples DIR]

prints `epoch N SECONDS s` after each epoch (the train steps alone). With
--samples DIR, after each epoch (outside the timing) it exports
--sample-count generated digits, the tutorial's 4x4 grid of its fixed
noise, and the epoch's time (bench/harness.py says where)."""
import time

import numpy as np
from harness import Export, load, parse_args

args = parse_args(__doc__, epochs=50)

import tensorflow as tf  # noqa: E402  (after the arguments: TensorFlow starts slowly)
from tensorflow.keras import layers  # noqa: E402

if args.seed is not None:
    tf.keras.utils.set_random_seed(args.seed)

train_images, _, channels = load(args)  # channels: 1, or 3 on Stacked MNIST
train_images = train_images.reshape(train_images.shape[0], 28, 28, channels).astype("float32")
train_images = (train_images - 127.5) / 127.5  # Normalize the images to [-1, 1]

BUFFER_SIZE = len(train_images)
BATCH_SIZE = 256
train_dataset = tf.data.Dataset.from_tensor_slices(train_images).shuffle(BUFFER_SIZE).batch(
    BATCH_SIZE)


def make_generator_model():
    model = tf.keras.Sequential()
    model.add(layers.Input((100,)))
    model.add(layers.Dense(7 * 7 * 256, use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())

    model.add(layers.Reshape((7, 7, 256)))
    model.add(layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())

    model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())

    model.add(layers.Conv2DTranspose(channels, (5, 5), strides=(2, 2), padding="same",
                                     use_bias=False, activation="tanh"))
    return model


def make_discriminator_model():
    model = tf.keras.Sequential()
    model.add(layers.Input((28, 28, channels)))
    model.add(layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))

    model.add(layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))

    model.add(layers.Flatten())
    model.add(layers.Dense(1))
    return model


generator = make_generator_model()
discriminator = make_discriminator_model()

cross_entropy = tf.keras.losses.BinaryCrossentropy(from_logits=True)


def discriminator_loss(real_output, fake_output):
    real_loss = cross_entropy(tf.ones_like(real_output), real_output)
    fake_loss = cross_entropy(tf.zeros_like(fake_output), fake_output)
    return real_loss + fake_loss


def generator_loss(fake_output):
    return cross_entropy(tf.ones_like(fake_output), fake_output)


generator_optimizer = tf.keras.optimizers.Adam(1e-4)
discriminator_optimizer = tf.keras.optimizers.Adam(1e-4)

noise_dim = 100
num_examples_to_generate = 16
# We will reuse this seed overtime (so it's easier to visualize progress)
seed = tf.random.normal([num_examples_to_generate, noise_dim])


# Notice the use of `tf.function`: this causes the function to be "compiled".
@tf.function
def train_step(images):
    noise = tf.random.normal([BATCH_SIZE, noise_dim])

    with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
        generated_images = generator(noise, training=True)

        real_output = discriminator(images, training=True)
        fake_output = discriminator(generated_images, training=True)

        gen_loss = generator_loss(fake_output)
        disc_loss = discriminator_loss(real_output, fake_output)

    gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
    gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)

    generator_optimizer.apply_gradients(zip(gradients_of_generator,
                                            generator.trainable_variables))
    discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator,
                                                discriminator.trainable_variables))


def export_samples(epoch, seconds, batch=1000):
    """What common.evaluation scores: the generator's images for the noise
    of seed 0 (as it draws a run's samples); the picture; the epoch's time."""
    noise = tf.random.Generator.from_seed(0).normal([args.sample_count, noise_dim])
    fakes = np.concatenate([generator(noise[i:i + batch], training=False).numpy()
                            for i in range(0, args.sample_count, batch)])
    picture = generator(seed, training=False).numpy()
    export(epoch, fakes * 0.5 + 0.5, picture * 0.5 + 0.5, seconds=seconds)


export = Export(args.samples) if args.samples else None


def train(dataset, epochs):
    for epoch in range(epochs):
        start = time.time()

        for image_batch in dataset:
            train_step(image_batch)

        seconds = time.time() - start
        print(f"epoch {epoch + 1} {seconds:.3f} s", flush=True)
        if args.samples:
            export_samples(epoch + 1, seconds)


train(train_dataset, args.epochs)
