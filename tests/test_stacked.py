"""Mode collapse, counted: Stacked MNIST (three digits as the channels of one
image, 1000 modes), its mode metrics, and PacGAN's packing of the
discriminator's input (--pack)."""
import hashlib
import json
import math

import numpy as np
import pytest
import tensorflow as tf
from conftest import history, run_script
from PIL import Image

from common import data
from common.evaluation import metrics
from common.evaluation.classifier import Classifier
from common.evaluation.evaluator import Evaluator, modes_of
from gan_keras.dcgan import DCGAN
from gan_keras.gan import pack
from gan_keras.infogan import InfoGAN
from gan_keras.mlp_gan import MLPGAN
from gan_keras.vaegan import VAEGAN

PARTS = ("train_images", "train_labels", "test_images", "test_labels")


def test_stacked_mnist_is_three_digits_drawn_the_same_way_every_time(synthetic_mnist):
    """128,000 training and 26,000 test images, each channel one image of
    MNIST's split (test images from the test split only), the label the mode
    100 d0 + 10 d1 + d2 of the channels' digits; the same for the same MNIST."""
    mnist, stacked = data.load("mnist", synthetic_mnist), data.load("stacked_mnist", synthetic_mnist)
    assert stacked.train_images.shape == (128_000, 28, 28, 3) and stacked.channels == 3
    assert stacked.test_images.shape == (26_000, 28, 28, 3) and stacked.digits.name == "mnist"
    assert stacked.source == f"stacked from {synthetic_mnist}"
    for images, labels, (source, digits) in (
            (stacked.train_images, stacked.train_labels, (mnist.train_images, mnist.train_labels)),
            (stacked.test_images, stacked.test_labels, (mnist.test_images, mnist.test_labels))):
        for i in (0, 1, len(images) - 1):
            found = [next(j for j in range(len(source)) if np.array_equal(source[j],
                                                                          images[i, ..., c]))
                     for c in range(3)]
            assert labels[i] == sum(int(digits[j]) * 10 ** (2 - c) for c, j in enumerate(found))
    digest = {part: hashlib.sha256(getattr(stacked, part)).hexdigest() for part in PARTS}
    del stacked  # two copies of 360 MB at once would double the suite's peak memory
    again = data.load("stacked_mnist", synthetic_mnist)
    assert {part: hashlib.sha256(getattr(again, part)).hexdigest() for part in PARTS} == digest
    counts = np.bincount(again.train_labels // 100, minlength=10)  # first digits: as MNIST's
    np.testing.assert_allclose(counts / counts.sum(), np.bincount(mnist.train_labels,
                                                                  minlength=10) / 256, atol=0.01)


def test_the_stacked_draws_are_pinned():
    """The first stacks of each split, as every machine must draw them from
    the documented seeds: a numpy whose PCG64 integers drew otherwise would
    make another Stacked MNIST, and the published figures another data set."""
    assert data.draw(60_000, 128_000, data.STACKED_SEEDS["train"])[:2].tolist() == [
        [25624, 56515, 5101], [32085, 21813, 48914]]
    assert data.draw(10_000, 26_000, data.STACKED_SEEDS["test"])[:2].tolist() == [
        [3060, 4874, 1393], [1792, 922, 9106]]


def test_the_mode_metrics_on_histograms_of_known_kl():
    every = np.arange(1000)
    assert metrics.modes_hit(every) == 1000 and metrics.mode_kl(every) == pytest.approx(0.0)
    one = np.full(26_000, 417)
    assert metrics.modes_hit(one) == 1 and metrics.mode_kl(one) == pytest.approx(math.log(1000))
    half = np.repeat(np.arange(0, 1000, 2), 3)  # 500 modes, equally often
    assert metrics.modes_hit(half) == 500 and metrics.mode_kl(half) == pytest.approx(math.log(2))
    skewed = np.array([0] * 3 + [1])  # p = 3/4, 1/4 over 2 of 1000 modes
    assert metrics.mode_kl(skewed) == pytest.approx(
        0.75 * math.log(0.75 * 1000) + 0.25 * math.log(0.25 * 1000))


def test_an_evaluator_reads_each_channel_as_a_digit(synthetic_mnist, tmp_path):
    """On stacked images, the classifier's probabilities of each channel make
    the mode (first channel the hundreds) and a distribution over the 1000
    modes: confident, all-different modes give 1000 modes hit and a
    classifier score of 1000."""
    from common.evaluation import classifier

    stacked = data.load("stacked_mnist", synthetic_mnist)
    evaluator = Evaluator(classifier.load_or_train(stacked, tmp_path), stacked, samples=64)
    assert evaluator.n == 64 and evaluator.columns[-2:] == ("modes", "mode_kl")
    assert evaluator.real[0].shape == (64, 3 * 128) and evaluator.real[1].shape == (64, 3, 10)
    modes = np.arange(1000)
    confident = np.zeros((1000, 3, 10))
    for channel, digit in enumerate((modes // 100, modes // 10 % 10, modes % 10)):
        confident[np.arange(1000), channel, digit] = 1.0
    features = np.random.default_rng(0).normal(size=(1000, 384))
    scores = evaluator.statistics(features, confident)
    assert (scores["modes"], scores["mode_kl"]) == (1000, pytest.approx(0.0))
    assert scores["classifier_score"] == pytest.approx(1000, rel=1e-6)
    assert scores["coverage"] == 10 and scores["label_kl"] == pytest.approx(0.0)
    np.testing.assert_array_equal(modes_of(confident), modes)  # as the data labels them
    evaluator.real = (features, confident)  # test images, read as 1000 different modes
    assert evaluator.real_modes() == {"modes": 1000, "mode_kl": pytest.approx(0.0)}
    evaluator.real = (features, np.repeat(confident[417:418], 1000, axis=0))
    assert evaluator.real_modes() == {"modes": 1, "mode_kl": pytest.approx(math.log(1000))}
    collapsed = evaluator.statistics(features, np.repeat(confident[417:418], 1000, axis=0))
    assert (collapsed["modes"], collapsed["mode_kl"]) == (1, pytest.approx(math.log(1000)))
    assert collapsed["classifier_score"] == pytest.approx(1.0)


def test_packing_puts_each_image_of_a_pack_in_its_own_channels():
    """PacGAN's layout: image j of a pack in channels j C to (j + 1) C - 1;
    the last n % m images left out; m = 1 the images themselves."""
    images = tf.reshape(tf.range(5 * 28 * 28 * 3, dtype=tf.float32), [5, 28, 28, 3])
    packed = pack(images, 2)
    assert packed.shape == (2, 28, 28, 6)
    for p in range(2):
        for j in range(2):
            np.testing.assert_array_equal(packed[p, ..., 3 * j:3 * j + 3], images[2 * p + j])
    assert pack(images, 1) is images


def _step_ops(model):
    """The operations of `model`'s traced train step, by type, in order."""
    batch = (tf.TensorSpec([8, 28, 28, 1], tf.float32), tf.TensorSpec([8], tf.int32))
    graph = model.step.get_concrete_function(batch).graph
    return [op.type for op in graph.get_operations()]


@pytest.mark.parametrize("model", [
    "dcgan", "mlp_gan", pytest.param("infogan", marks=pytest.mark.slow),
    pytest.param("vaegan", marks=pytest.mark.slow)])
def test_pack_1_is_the_model_without_packing(model, synthetic_mnist, monkeypatch):
    """--pack 1 is the model as it was before packing: its train step is, op
    for op, the step traced with packing taken out of the code (each
    module's `pack` made the identity), so it computes the same, bit for
    bit. (The DCGAN's step is also the tutorial's: test_dcgan.py.)"""
    from gan_keras import gan, infogan, vaegan

    def make():
        if model == "vaegan":
            return VAEGAN(data.load("mnist", synthetic_mnist), noise_dim=16, pack=1)
        return {"dcgan": DCGAN, "mlp_gan": MLPGAN, "infogan": InfoGAN}[model](pack=1)

    packed_once = _step_ops(make())
    for module in (gan, infogan, vaegan):
        monkeypatch.setattr(module, "pack", lambda images, m: images)
    assert packed_once == _step_ops(make())
    assert len(packed_once) > 100  # a whole step was traced


def test_pack_2_halves_what_the_discriminator_sees():
    """With --pack 2 the discriminator takes two images' channels and judges
    half as many, and its step adds the packing's operations."""
    batch = (tf.random.stateless_uniform([8, 28, 28, 1], [1, 2], -1, 1), tf.zeros([8], tf.int32))
    packed = DCGAN(seed=4, pack=2)
    assert packed.discriminator.input_shape == (None, 28, 28, 2)
    out = packed.step(batch)
    assert all(np.isfinite(float(v)) for v in out.values())
    assert _step_ops(packed).count("Transpose") > _step_ops(DCGAN(seed=4)).count("Transpose")


# a run on Stacked MNIST, as small as one can be
STACKED = ["--dataset", "stacked_mnist", "--train-size", 256, "--batch-size", 64, "--epochs", 1,
           "--metrics-samples", 64]


@pytest.mark.parametrize("model, options", [
    ("dcgan", ["--pack", "2"]),
    pytest.param("infogan", ["--pack", "2"], marks=pytest.mark.slow),
    pytest.param("mlp_gan", ["--loss", "wgan-gp", "--pack", "2", "--batch-size", 32],
                 marks=pytest.mark.slow),  # a WGAN-GP step takes 5 batches
    pytest.param("vaegan", ["--noise-dim", "16", "--pack", "2"], marks=pytest.mark.slow),
])
def test_every_gan_trains_on_stacked_mnist_packed(model, options, synthetic_mnist, tmp_path,
                                                  monkeypatch):
    """Each GAN on 256 stacked images, its discriminator judging pairs: the
    pictures in colour, metrics.csv with the modes hit and their KL. The
    DCGAN's run (the default suite's) in this process, TensorFlow's start
    saved, its modes rescored from its checkpoint; the others each in a
    process of its own: in this one, the stacked set's arrays and their
    graphs raised the slow tests' peak memory by up to 0.56 GiB each (to
    2.61 GiB, near the suite's limit)."""
    from gan_keras import train

    out = tmp_path / "run"
    args = [str(a) for a in ("--model", model, *STACKED, *options, "--data-dir",
                             synthetic_mnist, "--out", out)]  # the model's options win
    if model == "dcgan":
        monkeypatch.setattr(Classifier, "features_and_probabilities", _digit_by_pixel_sum)
        # in fp32, as evaluate reads a run: bf16 samples differ in their last bits, and
        # the pixel sums these modes hang on with them (docs/evaluation.md#one-run-evaluate)
        assert train.main([*args, "--precision", "fp32"]) == 0
        _modes_are_a_rescoring_of_the_checkpoint(out)
    else:
        done = run_script("gan_keras/train.py", *args)
        assert done.returncode == 0, done.stderr[-2000:]
    _a_stacked_run(out)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["conv_vae", "mlp_vae"])
def test_the_vaes_train_on_stacked_mnist(model, synthetic_mnist, tmp_path):
    out = tmp_path / "run"
    done = run_script("vae_keras/train.py", "--model", model, *STACKED, "--data-dir",
                      synthetic_mnist, "--out", out)
    assert done.returncode == 0, done.stderr[-2000:]
    _a_stacked_run(out)
    assert float(history(out)[0]["test_elbo"]) < -3 * 100  # three channels' worth of nats


def _digit_by_pixel_sum(self, images, batch=None):
    """In place of the trained classifier, whose every answer on synthetic
    digits is one digit (one mode, whatever the samples): the digit of an
    8-bit image is the sum of its pixels modulo 3, so the 64 samples fall
    in up to 27 modes, unevenly, their histogram moved by any pixel."""
    assert images.dtype == np.uint8  # the test images, and samples made 8-bit (to_uint8)
    digits = images.reshape(len(images), -1).sum(axis=1, dtype=np.int64) % 3
    return np.repeat(np.eye(10)[digits], 13, axis=1)[:, :128], np.eye(10)[digits]


def _modes_are_a_rescoring_of_the_checkpoint(out):
    """metrics.csv's modes and mode KL of epoch 1 are those an Evaluator
    finds again from the run's checkpoint (evaluate's path: the samples of
    the checkpointed weights and of SAMPLE_SEED), and they spread."""
    from common import runs

    row = dict(zip(*[line.split(",") for line in (out / "metrics.csv").read_text().splitlines()]))
    loaded = runs.open_run(out)
    scores = Evaluator(Classifier.__new__(Classifier), loaded.data, 64).score(loaded.model)
    assert 3 <= scores["modes"] <= 64 and scores["mode_kl"] > 0
    assert row["epoch"] == "1" and loaded.epoch == 1
    assert float(row["modes"]) == scores["modes"]
    assert float(row["mode_kl"]) == pytest.approx(scores["mode_kl"], rel=1e-6)


def test_the_conditional_vae_refuses_stacked_mnist(synthetic_mnist, tmp_path):
    refused = run_script("vae_keras/train.py", "--model", "cvae", *STACKED, "--data-dir",
                         synthetic_mnist, "--out", tmp_path / "cvae")
    assert refused.returncode == 2 and refused.stderr.splitlines() == [
        "train.py: error: --model cvae draws the one digit it is given, and a stacked_mnist "
        "image holds three; choose another --model or --dataset"]
    assert not (tmp_path / "cvae").exists()


def _a_stacked_run(out):
    with Image.open(out / "images" / "image_at_epoch_0001.png") as picture:
        assert picture.mode == "RGB"
        pixels = np.asarray(picture)
        assert not (np.array_equal(pixels[..., 0], pixels[..., 1])
                    and np.array_equal(pixels[..., 1], pixels[..., 2]))  # not three greys
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].endswith(",modes,mode_kl")
    modes, kl = map(float, rows[1].split(",")[-2:])
    assert 1 <= modes <= 64 and 0 <= kl <= math.log(1000)
    assert json.loads((out / "config.json").read_text())["args"]["dataset"] == "stacked_mnist"


def test_a_pack_the_batches_cannot_fill_is_one_line(synthetic_mnist, tmp_path):
    result = run_script("gan_keras/train.py", "--pack", 3, "--data-dir", synthetic_mnist,
                        "--batch-size", 127, "--out", tmp_path / "run")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "train.py: error: --pack 3: a batch of 2 images makes no pack of 3; choose another "
        "--batch-size (or --train-size)"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["dcgan", "conv_vae"])
def test_parity_on_stacked_mnist_counts_the_modes_of_the_tutorial_s_loop_and_ours(
        model, synthetic_mnist, tmp_path):
    """The tutorial's loop takes the stacked images' three channels as ours
    does; both are scored with the modes, and the report judges by them.
    (In a process of its own: the scoring holds the whole stacked set.)"""
    from common.rundir import RunDir

    out = tmp_path / "parity"
    done = run_script("bench/parity.py", "--model", model, "--dataset",
                      "stacked_mnist", "--epochs", 1, "--seeds", 1, "--precisions", "fp32",
                      "--images", 256, "--samples", 64, "--data-dir", synthetic_mnist,
                      "--out", out)
    assert done.returncode == 0, done.stderr[-2000:]
    for variant in ("reference", "ours_fp32"):
        run = RunDir(out / variant / "seed_1")
        [scored] = run.read_table("metrics")
        assert 1 <= scored["modes"] <= 64 and 0 <= scored["mode_kl"] <= math.log(1000)
        with Image.open(run.image_path(1)) as picture:
            assert picture.mode == "RGB"
    with np.load(out / "reference" / "seed_1" / "samples_at_epoch_0001.npz") as exported:
        assert exported["images"].shape == (64, 28, 28, 3)
    report = (out / "parity.md").read_text()
    assert "--dataset stacked_mnist" in report and "256 training images of stacked_mnist" in report
    assert "--samples 64" in report and "scored on 64 samples" in report
    header = next(line for line in report.splitlines() if line.startswith("| variant | epochs |"))
    assert f"| {metrics.LABELS['modes']} | {metrics.LABELS['mode_kl']} |" in header
    assert f"by {metrics.LABELS['mode_kl']}" in report  # a verdict on it (one seed: no test)
