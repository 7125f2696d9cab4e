"""A run's pictures of a few epochs side by side, in one PNG: report 000's
way of showing training (its figures 1 to 4), from the files a run wrote.

    python -m common.strip outputs/dcgan --epochs 1,10,100,2000 --out dcgan_epochs.png

Each epoch's picture (images/image_at_epoch_N.png) under a label "epoch N",
left to right; an epoch without a picture is one line naming those the run
has. Nothing is trained or loaded: only the PNG files are read."""
import sys

import numpy as np
from PIL import Image

from common import images, runs
from common.arguments import Parser, epoch_list
from common.atomic import check_file
from common.errors import UsageError
from common.rundir import RunDir

GAP = 8  # pixels between two epochs' pictures


def make_parser():
    parser = Parser(prog="python -m common.strip", description=__doc__)
    parser.add_argument("run_dir", help="a run directory written by a train.py")
    parser.add_argument("--epochs", type=epoch_list, required=True, metavar="LIST",
                        help="the epochs to show, separated by commas (1,10,100)")
    parser.add_argument("--out", required=True, help="the .png file to write")
    return parser


def strip(run_dir, epochs):
    """The pictures of `epochs` of the run at `run_dir`, labelled and side
    by side, as one uint8 array; a UsageError for an epoch it has none of."""
    run = RunDir(run_dir)
    if not run.config_file.is_file():
        raise UsageError(f"{run.path} holds no run (no config.json)")
    found = run.pictures().get("image", {})
    missing = [epoch for epoch in epochs if epoch not in found]
    if missing:
        raise UsageError(f"{run.path} has no picture of epoch {missing[0]}; it has epochs "
                         + (_ranges(sorted(found)) or "none"))
    pictures = []
    for epoch in epochs:
        with Image.open(found[epoch]) as picture:
            pictures.append(images.titled(np.asarray(picture), f"epoch {epoch}"))
    height = max(p.shape[0] for p in pictures)
    gap = np.zeros((height, GAP, *pictures[0].shape[2:]), np.uint8)
    padded = [np.pad(p, [(0, height - p.shape[0])] + [(0, 0)] * (p.ndim - 1)) for p in pictures]
    return np.concatenate([part for p in padded for part in (p, gap)][:-1], axis=1)


def _ranges(epochs):
    """1-5, 10, 20-22: sorted epochs in words."""
    spans = []
    for epoch in epochs:
        if spans and epoch == spans[-1][1] + 1:
            spans[-1][1] = epoch
        else:
            spans.append([epoch, epoch])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def main(argv=None):
    return runs.command(make_parser(), argv, write_strip)


def write_strip(args):
    check_file(args.out, ".png")
    images.save_png(strip(args.run_dir, args.epochs), args.out)
    print(f"{args.out}: epochs {', '.join(map(str, args.epochs))} of {args.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
