"""Export a trained run's generated images for any outside tool.

    python -m common.evaluation.sample RUN_DIR --n 10000 --out FILE.npz [--epoch N] [--digit D]

writes `images` (uint8, n x 28 x 28, 0 = black; n x 28 x 28 x 3 on Stacked
MNIST) from the run's latest checkpoint (or that of a kept epoch), drawn
from the noise of --seed, into a numpy .npz; for a conditional model also
`labels`, the digits it was asked for."""
import sys
from pathlib import Path

import numpy as np

from common import runs
from common.arguments import Parser, positive_int
from common.atomic import atomic_write, check_file
from common.images import to_uint8
from common.data import conditional_labels


def make_parser():
    parser = Parser(prog="python -m common.evaluation.sample", description=__doc__)
    runs.add_arguments(parser)
    parser.add_argument("--n", type=positive_int, default=10_000, help="how many images")
    parser.add_argument("--out", required=True, help="the .npz file to write (its folders are made)")
    return parser


def main(argv=None):
    return runs.command(make_parser(), argv, write_samples)


def write_samples(args):
    check_file(args.out, ".npz")
    loaded = runs.open_from(args)
    arrays = {}
    if loaded.model.conditional:
        arrays["labels"] = conditional_labels(args.n, args.digit).astype(np.uint8)
    images = to_uint8(loaded.sample(args.n, args.seed, digit=args.digit))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out) as f:
        np.savez_compressed(f, images=images, **arrays)
    print(f"Wrote {len(images)} images of {loaded.config['model']} at epoch {loaded.epoch} "
          f"to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
