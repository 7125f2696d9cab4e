"""Export a trained run's generated images for any outside tool.

    python -m common.evaluation.sample RUN_DIR --n 10000 --out FILE.npz [--digit D]

writes `images` (uint8, n x 28 x 28, 0 = black) from the run's latest
checkpoint, drawn from the noise of --seed, into a numpy .npz; for a
conditional model also `labels`, the digits it was asked for."""
import sys
from pathlib import Path

import numpy as np

from common import runs
from common.arguments import Parser, positive_int, seed
from common.atomic import atomic_write, check_directory
from common.errors import UsageError
from common.images import to_uint8
from common.model import conditional_labels

CONDITIONAL = ("cvae",)  # the models that take a digit (checked before TensorFlow starts)


def make_parser():
    parser = Parser(prog="python -m common.evaluation.sample", description=__doc__)
    parser.add_argument("run_dir", help="a run directory written by a train.py")
    parser.add_argument("--n", type=positive_int, default=10_000, help="how many images")
    parser.add_argument("--out", required=True, help="the .npz file to write (its folders are made)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the generating noise")
    parser.add_argument("--digit", type=int, choices=range(10), default=None, metavar="DIGIT",
                        help="a conditional model (cvae) draws only this digit (default: "
                             "every digit equally often)")
    parser.add_argument("--data-dir", default=None,
                        help="read the data from here instead of where the run read it")
    return parser


def _check_out(out):
    """Fail before the work if `out` cannot be written."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory")
    check_directory(out.parent, "the folder of --out")


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        if not args.out.endswith(".npz"):
            raise UsageError(f"--out {args.out}: the file's name must end in .npz")
        _check_out(Path(args.out))
        config = runs.check(args.run_dir)
        if args.digit is not None and config["model"] not in CONDITIONAL:
            raise UsageError(f"--digit: a {config['model']} is not conditional on the digit")
        loaded = runs.open_run(args.run_dir, args.data_dir)
    except UsageError as error:
        parser.error(error)
    arrays = {}
    if loaded.model.conditional:
        arrays["labels"] = conditional_labels(args.n, args.digit).astype(np.uint8)
        generated = loaded.model.sample(args.n, args.seed, digit=args.digit)
    else:
        generated = loaded.model.sample(args.n, args.seed)
    images = to_uint8(generated)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out) as f:
        np.savez_compressed(f, images=images, **arrays)
    print(f"Wrote {len(images)} images of {loaded.config['model']} at epoch {loaded.epoch} "
          f"to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
