"""MNIST-format data sets as numpy arrays: from tensorflow-datasets by default,
or offline from the original IDX files or a Keras `.npz` in a directory; and
Stacked MNIST, three MNIST digits as the colour channels of one image, the
literature's count of mode collapse (`stack`); and binarized MNIST, one
fixed Bernoulli draw of MNIST's pixels split as Larochelle's set
(`binarized`), on which the likelihoods of the literature are reported.

Only numpy is imported here, so that bad data is reported before TensorFlow
starts (tensorflow-datasets is imported only when it is the source)."""
import dataclasses
import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from common.errors import UsageError

# tensorflow-datasets names, both shipped as the same IDX files; and the
# data sets made from one of them, by the function that makes each
TFDS_DATASETS = ("mnist", "fashion_mnist")
STACKED = {"stacked_mnist": "mnist"}
BINARIZED = {"binarized_mnist": "mnist"}
MADE_FROM = {**STACKED, **BINARIZED}  # {data set: the data set it is made from}
DATASETS = (*TFDS_DATASETS, *MADE_FROM)
SIDE = 28  # every image is SIDE x SIDE pixels, grey levels (or three channels when stacked)
# (training, test) images of each data set as published: a tensorflow-datasets
# copy of another size is not the data set (a cut-short download, a test's mock).
SIZES = {"mnist": (60_000, 10_000), "fashion_mnist": (60_000, 10_000)}

# The four files of the original distribution (LeCun et al., "The MNIST
# database", yann.lecun.com/exdb/mnist; Fashion-MNIST uses the same names).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# IDX magic number: two zero bytes, the element type (0x08 = unsigned byte),
# then the number of dimensions (3 for images, 1 for labels).
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801

# Stacked MNIST in VEEGAN's setting (Srivastava et al. 2017, section 5.2;
# PacGAN's code): each split's size and the seed of its draws
# (docs/data.md#stacked-mnist-1000-modes).
STACKED_SIZES = {"train": 128_000, "test": 26_000}
STACKED_SEEDS = {"train": 2017, "test": 2018}
MODES = 1000  # a stacked image's label, its mode: 100 d0 + 10 d1 + d2 for the digits of its channels

# Binarized MNIST as the likelihood literature uses it (Larochelle & Murray
# 2011): another draw of the same process, from this seed, split as theirs
# (docs/data.md#binarized-mnist-the-likelihood-literatures).
BINARIZED_SEED = 2008
BINARIZED_SPLIT = 50_000  # training images; the rest of MNIST's training split: validation

# How a VAE's test images are made binary (vae_keras/train.py --binarize), in
# words: each run's likelihood numbers are on the data these name, and only
# numbers on the same data are compared (common/evaluation/compare.py). The
# Bernoulli draw of "dynamic" is one fixed draw, the same for every run
# whatever its seed; grey levels are not binary data, and the Bernoulli
# decoder's loss on them bounds no likelihood.
TEST_DRAW_SEED = 2014
BINARIZATIONS = {"static": "binarized at 0.5",
                 "dynamic": f"one fixed Bernoulli draw of the grey levels (seed {TEST_DRAW_SEED})",
                 "none": "grey levels in [0, 1], not binary: no likelihood"}


def test_data(args):
    """The test images a run's numbers are computed on, in words, from its
    config.json arguments: the data set and, for a VAE, its binarization
    (none on a binary data set, whose pixels every --binarize keeps)."""
    if args["dataset"] in BINARIZED:
        return (f"{args['dataset']}, one fixed Bernoulli draw of the grey levels "
                f"(seed {BINARIZED_SEED})")
    binarize = args.get("binarize")
    return args["dataset"] + (f", {BINARIZATIONS[binarize]}" if binarize else "")


def has_likelihood(binarize, dataset):
    """Whether a VAE's test images, binarized by `binarize`, are binary, so
    that its ELBO and importance-weighted bound bound a likelihood."""
    return binarize in ("static", "dynamic") or dataset in BINARIZED


def conditional_labels(n, digit=None):
    """The digits a conditional model generates for n samples: all `digit`,
    or 0, 1, ..., 9, 0, 1, ... (every digit equally often)."""
    return np.full(n, digit, np.int32) if digit is not None else np.arange(n, dtype=np.int32) % 10


@dataclasses.dataclass(frozen=True)
class Data:
    """A data set in memory: uint8 images [n, 28, 28] (or [n, 28, 28, 3],
    stacked) and their labels [n] (uint8 digits; uint16 modes, stacked)."""

    name: str
    source: str  # where it was read from, for config.json
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    digits: "Data" = None  # for a stacked set, the MNIST its channels are drawn from
    validation_images: np.ndarray = None  # a held-out split, where the data set has one
    validation_labels: np.ndarray = None

    @property
    def channels(self):
        """1 for grey images, 3 for stacked ones."""
        return self.train_images.shape[3] if self.train_images.ndim == 4 else 1

    def first(self, train_size):
        """The same data with only the first `train_size` training images."""
        if train_size > len(self.train_images):
            raise UsageError(f"--train-size {train_size} is more than the "
                             f"{len(self.train_images)} training images in {self.source}")
        return dataclasses.replace(self, train_images=self.train_images[:train_size],
                                   train_labels=self.train_labels[:train_size])


def load(name="mnist", data_dir=None):
    """Read `name` from `data_dir` (IDX files or `<name>.npz`; for a
    stacked or binarized set, those of the data set it is made from), or
    from tensorflow-datasets when `data_dir` is None."""
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name in STACKED:
        return stacked(name, load(STACKED[name], data_dir))
    if name in BINARIZED:
        return binarized(name, load(BINARIZED[name], data_dir))
    if data_dir is None:
        splits, source = _from_tfds(name), f"tensorflow-datasets:{name}"
    else:
        splits, source = _from_dir(Path(data_dir), name)
    (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
    return Data(name, source, train_x, train_y, test_x, test_y)


def draw(count, n, seed):
    """For n stacked images, the indices [n, 3] of the images their three
    channels take among `count`: drawn uniformly and independently (with
    replacement) by numpy's PCG64 from `seed` (pinned by a test: a numpy
    that drew otherwise would make another data set)."""
    return np.random.default_rng(seed).integers(0, count, size=(n, 3))


def stack(images, labels, n, seed):
    """n images of three channels, each an image of `images` (`draw`), and
    their modes, 100 d0 + 10 d1 + d2 for the channels' labels d0, d1, d2."""
    drawn = draw(len(images), n, seed)
    modes = mode_of(labels[drawn])
    stacked = np.empty((n, *images.shape[1:], 3), np.uint8)
    for channel in range(3):  # one channel at a time: no copy of the whole set on the side
        stacked[..., channel] = images[drawn[:, channel]]
    return stacked, modes


def mode_of(digits):
    """The modes, uint16 [n], of stacked images whose channels hold the
    digits [n, 3]: 100 d0 + 10 d1 + d2 (MODES of them)."""
    return (np.asarray(digits, np.uint16) * np.array([100, 10, 1], np.uint16)).sum(
        axis=1, dtype=np.uint16)


def stacked(name, digits):
    """The stacked set `name` made from `digits` (STACKED_SIZES,
    STACKED_SEEDS): the same images for the same digits, every time; built
    here, in a second or two, rather than read back from a cache of
    360 MB (docs/data.md)."""
    train = stack(digits.train_images, digits.train_labels, STACKED_SIZES["train"],
                  STACKED_SEEDS["train"])
    test = stack(digits.test_images, digits.test_labels, STACKED_SIZES["test"],
                 STACKED_SEEDS["test"])
    return Data(name, f"stacked from {digits.source}", *train, *test, digits=digits)


def bernoulli(images, seed):
    """uint8 images -> each pixel 255 with probability grey level / 255,
    else 0: numpy's PCG64 from `seed` draws one float32 uniform per pixel in
    C order (pinned by a test)."""
    uniform = np.random.default_rng(seed).random(images.shape, dtype=np.float32)
    return np.where(uniform * 255 < images, np.uint8(255), np.uint8(0))


def binarized(name, digits):
    """The binarized set `name` made from MNIST `digits` (BINARIZED_SEED,
    BINARIZED_SPLIT): its training split drawn first, then its test split,
    from one generator; the same images for the same MNIST, every time. The
    labels are the digits', which the likelihoods do not use."""
    rng = np.random.default_rng(BINARIZED_SEED)
    train, test = (bernoulli(images, rng) for images in (digits.train_images, digits.test_images))
    return Data(name, f"binarized from {digits.source}", train[:BINARIZED_SPLIT],
                digits.train_labels[:BINARIZED_SPLIT], test, digits.test_labels,
                validation_images=train[BINARIZED_SPLIT:],
                validation_labels=digits.train_labels[BINARIZED_SPLIT:])


def _from_dir(data_dir, name):
    if not data_dir.is_dir():
        raise UsageError(f"data directory {data_dir} does not exist")
    npz = data_dir / f"{name}.npz"
    if npz.is_file() and not any(_find(data_dir, base) for base, _ in IDX_FILES.values()):
        return read_npz(npz), str(npz)
    splits = {}
    for split, (images_file, labels_file) in IDX_FILES.items():
        images = read_idx(_require(data_dir, images_file, npz), IMAGES_MAGIC)
        labels = read_idx(_require(data_dir, labels_file, npz), LABELS_MAGIC)
        if len(images) != len(labels):
            raise UsageError(f"{data_dir}: {images_file} holds {len(images)} images but "
                             f"{labels_file} holds {len(labels)} labels")
        splits[split] = images, labels
    return splits, str(data_dir)


def _find(data_dir, base):
    """The IDX file `base` in `data_dir`, uncompressed or .gz, or None."""
    return next((p for p in (data_dir / base, data_dir / f"{base}.gz") if p.is_file()), None)


def _require(data_dir, base, npz):
    path = _find(data_dir, base)
    if path is None:
        raise UsageError(f"missing {data_dir / base}[.gz]: a data directory holds the four "
                         f"IDX files ({', '.join(f for pair in IDX_FILES.values() for f in pair)}, "
                         f".gz or not) or {npz.name}")
    return path


def read_idx(path, magic):
    """Parse one IDX file (gzip-compressed when its name ends in .gz): the
    images file as uint8 [n, 28, 28], the labels file as uint8 [n] in 0..9."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise UsageError(f"{path}: cannot read it ({error})") from None
    kind = "images" if magic == IMAGES_MAGIC else "labels"
    header = 16 if magic == IMAGES_MAGIC else 8
    if len(raw) < header:
        raise UsageError(f"{path}: {len(raw)} bytes, too short for an IDX {kind} header "
                         f"({header} bytes)")
    found, count = struct.unpack(">II", raw[:8])
    if found != magic:
        raise UsageError(f"{path}: magic number 0x{found:08x}, expected 0x{magic:08x} "
                         f"(IDX {kind} file)")
    shape = (count,)
    if magic == IMAGES_MAGIC:
        rows, cols = struct.unpack(">II", raw[8:16])
        if (rows, cols) != (SIDE, SIDE):
            raise UsageError(f"{path}: images of {rows}x{cols} pixels, expected {SIDE}x{SIDE}")
        shape = (count, SIDE, SIDE)
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise UsageError(f"{path}: header announces {count} {kind} ({expected} bytes of data) "
                         f"but the file holds {len(raw) - header}; is it truncated?")
    array = np.frombuffer(raw, np.uint8, offset=header).reshape(shape)
    if magic == LABELS_MAGIC:
        _check_labels(path, array)
    return array


def read_npz(path):
    """Read a Keras-style `.npz` (x_train, y_train, x_test, y_test)."""
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise UsageError(f"{path}: no array {missing[0]!r} (expected {', '.join(keys)})")
            arrays = {key: archive[key] for key in keys}
    except (OSError, ValueError, EOFError) as error:
        raise UsageError(f"{path}: cannot read it as a numpy .npz ({error})") from None
    splits = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (SIDE, SIDE):
            raise UsageError(f"{path}: x_{split} is {x.dtype} {x.shape}, expected uint8 "
                             f"(n, {SIDE}, {SIDE})")
        if y.shape != (len(x),):
            raise UsageError(f"{path}: y_{split} has shape {y.shape}, expected ({len(x)},)")
        _check_labels(path, y)
        splits[split] = x, y.astype(np.uint8)
    return splits


def _check_labels(path, labels):
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise UsageError(f"{path}: labels outside 0..9 (found {labels.min()}..{labels.max()})")


def _from_tfds(name):
    """Download (once, into tensorflow-datasets' data directory, by default
    ~/tensorflow_datasets) and read `name`; checked like the IDX files, and
    against the data set's published size."""
    from common import quiet

    quiet.start_tensorflow()
    import tensorflow_datasets as tfds

    try:
        splits, info = tfds.load(name, split=["train", "test"], as_supervised=True,
                                 with_info=True)
        arrays = [[chunk for chunk in tfds.as_numpy(split.batch(10_000))] for split in splits]
    except Exception as error:  # no network, a full disk, a broken download: all the user's to fix
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise UsageError(f"cannot load {name} from tensorflow-datasets ({type(error).__name__}: "
                         f"{first_line}); to train offline, pass --data-dir DIR holding the "
                         f"IDX files or {name}.npz") from None
    splits = {split: (np.concatenate([x for x, _ in chunks]),
                      np.concatenate([y for _, y in chunks]))
              for split, chunks in zip(("train", "test"), arrays)}
    _check_cached(name, splits, info.data_dir)
    return {split: (x[..., 0], y.astype(np.uint8)) for split, (x, y) in splits.items()}


def _check_cached(name, splits, directory):
    """Refuse a tensorflow-datasets copy that is not the published data set,
    naming the directory it came from and the ways out."""
    (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
    expected = SIZES[name]
    problem = None
    if (len(train_x), len(test_x)) != expected:
        problem = (f"holds {len(train_x):,} training and {len(test_x):,} test images, not "
                   f"{expected[0]:,} and {expected[1]:,}")
    elif train_x.dtype != np.uint8 or train_x.shape[1:] != (SIDE, SIDE, 1):
        problem = f"holds {train_x.dtype} images of shape {train_x.shape[1:]}, not uint8 28x28"
    elif min(train_y.min(), test_y.min()) < 0 or max(train_y.max(), test_y.max()) > 9:
        problem = "holds labels outside 0..9"
    if problem:
        raise UsageError(f"the tensorflow-datasets copy of {name} in {directory} {problem}: "
                         f"delete that directory to download it again, or pass --data-dir DIR "
                         f"holding the IDX files or {name}.npz")
