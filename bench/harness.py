"""What the reference loops (ref_dcgan.py, ref_cvae.py) need beyond the
tutorials' own code, kept out of them so that they read as the tutorials
do: their command line, TensorFlow's stderr filtered as our loop's is, the
project's data, and the export of each epoch's samples, picture and time for
the parity experiment."""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project's packages
from common import data, images, quiet  # noqa: E402
from common.atomic import atomic_write  # noqa: E402
from common.errors import UsageError  # noqa: E402
from common.evaluation.evaluator import sample_count  # noqa: E402
from common.rundir import RunDir  # noqa: E402


def make_parser(doc, epochs):
    """The reference loops' options; `epochs` is the tutorial's default."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="MNIST IDX files (default: tensorflow-datasets)")
    parser.add_argument("--dataset", choices=data.DATASETS, default="mnist",
                        help="the data set (stacked_mnist: three digits as an image's colour "
                             "channels; the tutorial's networks take its channels)")
    parser.add_argument("--images", type=int, default=None,
                        help="train on the first N training images (default: all)")
    parser.add_argument("--epochs", type=int, default=epochs, help="the tutorial's default")
    parser.add_argument("--seed", type=int, default=None,
                        help="Keras's global seed (default: none, as the tutorial)")
    parser.add_argument("--samples", type=Path, default=None,
                        help="export each epoch's samples, picture and time into this folder")
    parser.add_argument("--sample-count", type=int, default=None,
                        help="samples exported per epoch (default: as many as "
                             "common.evaluation scores, 26,000 on Stacked MNIST, else 10,000)")
    return parser


def parse_args(doc, epochs):
    """The reference loop's arguments; from here on its stderr drops the
    lines of TensorFlow that ours drops (common/quiet.py): the loop imports
    TensorFlow after this."""
    args = make_parser(doc, epochs).parse_args()
    quiet.filter_stderr()
    return args


def load(args):
    """The data set (common.data: IDX files or tensorflow-datasets): its
    training images cut to --images, its test images, and their channels
    (1, or 3 on Stacked MNIST). Fills in --sample-count's default, which
    depends on the data set."""
    try:
        loaded = data.load(args.dataset, args.data_dir)
    except UsageError as error:
        sys.exit(f"{Path(sys.argv[0]).name}: error: {error}")
    args.sample_count = sample_count(loaded, args.sample_count)
    return loaded.train_images[:args.images], loaded.test_images, loaded.channels


class Export:
    """Each epoch into --samples, laid out as a run directory:
    samples_at_epoch_N.npz (the samples, [n, 28, 28, channels] in [0, 1], as
    uint8 images, grey ones without their channel axis, as
    common.evaluation.sample exports a run's), images/image_at_epoch_N.png
    (the 4x4 picture) and the epoch's row of history.csv (epoch, seconds,
    and what else the loop measures)."""

    def __init__(self, directory):
        self.run, self.history = RunDir(directory), []

    def __call__(self, epoch, samples, picture, **row):
        if samples.shape[-1] == 1:
            samples, picture = samples[..., 0], picture[..., 0]
        self.run.images.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.run.samples_path(epoch)) as f:
            np.savez_compressed(f, images=images.to_uint8(samples))
        images.save_png(images.grid(picture, cols=4, scale=3), self.run.image_path(epoch))
        self.history.append({"epoch": epoch, **row})
        self.run.write_table("history", self.history, tuple(self.history[0]))
