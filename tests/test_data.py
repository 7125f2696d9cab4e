"""Reading MNIST-format data: IDX (.gz or not), .npz, tensorflow-datasets,
and a clear error for every kind of bad file."""
import shutil

import numpy as np
import pytest
from conftest import IDX_NAMES, idx_bytes, synthetic_digits, write_file, write_mnist

from common import data
from common.errors import UsageError


def test_idx_gz_and_raw_read_the_same_arrays(tmp_path):
    gz = data.load("mnist", write_mnist(tmp_path / "gz", gz=True))
    raw = data.load("mnist", write_mnist(tmp_path / "raw", gz=False))
    images, labels = synthetic_digits(256, 0)
    for loaded in (gz, raw):
        assert loaded.train_images.dtype == np.uint8 and loaded.train_images.shape == (256, 28, 28)
        np.testing.assert_array_equal(loaded.train_images, images)
        np.testing.assert_array_equal(loaded.train_labels, labels)
        assert loaded.test_images.shape == (64, 28, 28) and loaded.test_labels.shape == (64,)
    np.testing.assert_array_equal(gz.test_images, raw.test_images)


def test_train_size_keeps_the_first_images(synthetic_mnist):
    subset = data.load("mnist", synthetic_mnist).first(10)
    np.testing.assert_array_equal(subset.train_images, synthetic_digits(256, 0)[0][:10])
    assert len(subset.test_images) == 64  # the test split is never cut
    with pytest.raises(UsageError, match="--train-size 257 is more than the 256"):
        data.load("mnist", synthetic_mnist).first(257)


def test_keras_npz(tmp_path):
    images, labels = synthetic_digits(20)
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels,
             x_test=images[:5], y_test=labels[:5])
    loaded = data.load("mnist", tmp_path)
    np.testing.assert_array_equal(loaded.train_images, images)
    np.testing.assert_array_equal(loaded.test_labels, labels[:5])
    assert loaded.source.endswith("mnist.npz")

    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels, x_test=images)
    with pytest.raises(UsageError, match="no array 'y_test'"):
        data.load("mnist", tmp_path)
    np.savez(tmp_path / "mnist.npz", x_train=images[:, :20], y_train=labels,
             x_test=images, y_test=labels)
    with pytest.raises(UsageError, match=r"x_train is uint8 \(20, 20, 28\), expected uint8"):
        data.load("mnist", tmp_path)


def _corrupt(directory, name, raw):
    """Replace one IDX file of a good data set by `raw` (gzip-compressed)."""
    write_file(directory / f"{name}.gz", raw)


BAD_FILES = {
    "wrong magic": (IDX_NAMES[0], lambda: idx_bytes(synthetic_digits(256)[0], magic=0x801),
                    "magic number 0x00000801, expected 0x00000803"),
    "labels as images": (IDX_NAMES[1], lambda: idx_bytes(synthetic_digits(256)[0]),
                         "magic number 0x00000803, expected 0x00000801"),
    "truncated": (IDX_NAMES[0], lambda: idx_bytes(synthetic_digits(256)[0])[:-100],
                  "header announces 256 images .* is it truncated"),
    "trailing bytes": (IDX_NAMES[2], lambda: idx_bytes(synthetic_digits(64)[0]) + b"xx",
                       "header announces 64 images"),
    "short header": (IDX_NAMES[3], lambda: b"\x00\x00\x08",
                     "3 bytes, too short for an IDX labels header"),
    "wrong image size": (IDX_NAMES[0], lambda: idx_bytes(np.zeros((256, 32, 32))),
                         "images of 32x32 pixels, expected 28x28"),
    "fewer labels": (IDX_NAMES[1], lambda: idx_bytes(np.zeros(200)),
                     "holds 256 images but train-labels-idx1-ubyte holds 200 labels"),
    "label 12": (IDX_NAMES[3], lambda: idx_bytes(np.full(64, 12)), r"labels outside 0\.\.9"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_idx_file_is_a_clear_error_naming_the_file(tmp_path, case):
    name, raw, message = BAD_FILES[case]
    write_mnist(tmp_path)
    _corrupt(tmp_path, name, raw())
    with pytest.raises(UsageError, match=message) as error:
        data.load("mnist", tmp_path)
    assert name in str(error.value)


def test_corrupt_gzip(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / f"{IDX_NAMES[0]}.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UsageError, match=f"{IDX_NAMES[0]}.gz: cannot read it"):
        data.load("mnist", tmp_path)


def test_missing_file_or_directory(tmp_path, synthetic_mnist):
    with pytest.raises(UsageError, match="does not exist"):
        data.load("mnist", tmp_path / "nowhere")
    shutil.copytree(synthetic_mnist, tmp_path / "three")
    (tmp_path / "three" / f"{IDX_NAMES[3]}.gz").unlink()
    with pytest.raises(UsageError, match=rf"missing .*{IDX_NAMES[3]}\[\.gz\]"):
        data.load("mnist", tmp_path / "three")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=f"missing .*{IDX_NAMES[0]}.* or mnist.npz"):
        data.load("mnist", tmp_path / "empty")


def test_unknown_dataset():
    with pytest.raises(UsageError, match="unknown dataset 'cifar10'"):
        data.load("cifar10", "anywhere")


@pytest.fixture
def tfds_prepares_small_mnist(tmp_path, monkeypatch):
    """tensorflow-datasets' own MNIST builder, its download replaced by 12
    training and 4 test images in local IDX files (as tfds's own builder tests
    do) and its data directory a temporary one; everything after the
    download is real. Returns the images and labels it was given."""
    tfds = pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.core import constants
    from tensorflow_datasets.image_classification import mnist as tfds_mnist

    files = write_mnist(tmp_path / "idx", n_train=12, n_test=4, gz=False)
    monkeypatch.setattr(tfds_mnist, "_TRAIN_EXAMPLES", 12)
    monkeypatch.setattr(tfds_mnist, "_TEST_EXAMPLES", 4)
    # tfds reads TFDS_DATA_DIR once, at import: patch what it read (as its
    # own testing.mock_default_data_dir does)
    monkeypatch.setattr(constants, "DATA_DIR", str(tmp_path / "tfds"))
    local = {"train_data": IDX_NAMES[0], "train_labels": IDX_NAMES[1],
             "test_data": IDX_NAMES[2], "test_labels": IDX_NAMES[3]}
    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract",
                        lambda self, urls: {key: str(files / local[key]) for key in urls})
    return synthetic_digits(12, 0)


def test_a_small_tensorflow_datasets_copy_is_refused_naming_its_directory(
        tfds_prepares_small_mnist, tmp_path):
    """A copy of MNIST in the cache that is not the published 60,000 +
    10,000 images (a test's or a cut-short download's) is one clear error,
    never a run on it."""
    with pytest.raises(UsageError) as error:
        data.load("mnist")
    message = str(error.value)
    assert "holds 12 training and 4 test images, not 60,000 and 10,000" in message
    assert str(tmp_path / "tfds" / "mnist") in message
    assert "delete that directory to download it again, or pass --data-dir" in message


def test_tensorflow_datasets_path_reads_what_the_builder_prepared(tfds_prepares_small_mnist,
                                                                   monkeypatch):
    """The default source, end to end through tensorflow-datasets' own MNIST
    builder, with the expected size made the small set's."""
    monkeypatch.setitem(data.SIZES, "mnist", (12, 4))
    loaded = data.load("mnist")
    assert loaded.source == "tensorflow-datasets:mnist"
    images, labels = tfds_prepares_small_mnist
    order = np.argsort([img.tobytes() for img in images])  # tfds shuffles the examples
    got = np.argsort([img.tobytes() for img in loaded.train_images])
    np.testing.assert_array_equal(loaded.train_images[got], images[order])
    np.testing.assert_array_equal(loaded.train_labels[got], labels[order])
    assert loaded.test_images.shape == (4, 28, 28) and loaded.test_images.dtype == np.uint8


def test_tensorflow_datasets_mock_for_fashion_mnist(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=30):
        with pytest.raises(UsageError, match="holds 30 training and 30 test images, not 60,000"):
            data.load("fashion_mnist")
        monkeypatch.setitem(data.SIZES, "fashion_mnist", (30, 30))
        loaded = data.load("fashion_mnist").first(20)
    assert loaded.source == "tensorflow-datasets:fashion_mnist"
    assert loaded.train_images.shape == (20, 28, 28) and loaded.train_labels.max() <= 9
    assert loaded.test_images.shape == (30, 28, 28)


def test_tensorflow_datasets_can_read_its_download_checksums():
    """Before downloading, tfds 4.9.10 reads the registered checksums of the
    MNIST archives, which needs importlib_resources, a package it does not
    declare (requirements.txt adds it): without it every download fails."""
    tfds = pytest.importorskip("tensorflow_datasets")
    for name in data.TFDS_DATASETS:
        urls = type(tfds.builder(name)).url_infos
        assert any(url.endswith("train-images-idx3-ubyte.gz") for url in urls)


def test_binarized_mnist_is_one_fixed_bernoulli_draw_of_mnist(synthetic_mnist):
    """Every pixel 0 or 255, 255 with probability grey level / 255 (black
    stays black, white stays white, the mean as the grey levels' within
    four standard errors); the training split drawn first, then the test
    split, from one generator seeded BINARIZED_SEED; the same every time."""
    mnist = data.load("mnist", synthetic_mnist)
    binary = data.load("binarized_mnist", synthetic_mnist)
    assert binary.source == f"binarized from {synthetic_mnist}"
    for grey, drawn in ((mnist.train_images, binary.train_images),
                        (mnist.test_images, binary.test_images)):
        assert set(np.unique(drawn)) <= {0, 255}
        assert (drawn[grey == 0] == 0).all() and (drawn[grey == 255] == 255).all()
        p = grey / 255.0
        assert abs((drawn / 255.0).mean() - p.mean()) < 4 * np.sqrt((p * (1 - p)).sum()) / p.size
    rng = np.random.default_rng(data.BINARIZED_SEED)
    np.testing.assert_array_equal(binary.train_images, data.bernoulli(mnist.train_images, rng))
    np.testing.assert_array_equal(binary.test_images, data.bernoulli(mnist.test_images, rng))
    assert binary.test_labels.tolist() == mnist.test_labels.tolist()
    np.testing.assert_array_equal(data.load("binarized_mnist", synthetic_mnist).train_images,
                                  binary.train_images)


def test_binarized_mnist_splits_mnist_s_training_images_as_larochelle_s_set():
    """The first 50,000 of MNIST's training images train, the next 10,000
    validate; the test images are MNIST's (here on 60,010 + 3 made-up
    images, each its own index)."""
    index = np.arange(60_010)
    images = np.broadcast_to((index % 256).astype(np.uint8)[:, None, None], (60_010, 28, 28))
    digits = data.Data("mnist", "made up", images, (index % 10).astype(np.uint8),
                       images[:3], np.zeros(3, np.uint8))
    binary = data.binarized("binarized_mnist", digits)
    assert (len(binary.train_images), len(binary.validation_images), len(binary.test_images)) == (
        50_000, 10_010, 3)
    assert binary.train_labels.tolist() == digits.train_labels[:50_000].tolist()
    assert binary.validation_labels.tolist() == digits.train_labels[50_000:].tolist()


def test_the_binarizing_draws_are_pinned():
    """The first uniforms every machine must draw from the documented seed:
    a numpy whose PCG64 drew otherwise would make another binarized MNIST."""
    assert np.random.default_rng(data.BINARIZED_SEED).random(3, dtype=np.float32).tolist() == [
        0.6734018921852112, 0.8951574563980103, 0.7566547989845276]
