"""New pictures from a trained run, at its latest checkpoint or a kept epoch.

    python -m common.generate RUN_DIR [--epoch N] [--n 64] [--seed S] [--digit D] [--interpolate] --out FILE.png

draws a grid of --n images from the noise of --seed (the images `sample`
gives for the same seed); for the conditional VAE, of one --digit. With
--interpolate, rows that walk, in 10 steps, between pairs of points drawn
from the noise or latent space, along the great circle between them
(spherical interpolation: White 2016, "Sampling Generative Networks";
Radford et al. 2016, figure 4, for the DCGAN), a straight line through a
Gaussian's hollow centre being unlike any draw; for InfoGAN then each code
swept, one row per category (Chen et al. 2016, figure 2). The same
arguments give the same picture."""
import math
import sys
from pathlib import Path

import numpy as np

from common import images, runs
from common.arguments import Parser, positive_int
from common.atomic import check_file

STEPS = 10  # images per interpolated row, its two ends included
SCALE = 2


def make_parser():
    parser = Parser(prog="python -m common.generate", description=__doc__)
    runs.add_arguments(parser)
    parser.add_argument("--n", type=positive_int, default=64,
                        help=f"how many images; with --interpolate, n / {STEPS} rows of "
                             f"{STEPS} (at least one)")
    parser.add_argument("--interpolate", action="store_true",
                        help="rows walking between pairs of random points of the noise or "
                             "latent space (and InfoGAN's codes swept)")
    parser.add_argument("--out", required=True, help="the .png file to write (its folders are "
                                                     "made)")
    return parser


def slerp(a, b, t):
    """Spherical interpolation from a to b (rows of two arrays) at the
    fractions t: sin((1 - t) w) / sin w a + sin(t w) / sin w b, w the angle
    between them; a straight line where they are (nearly) parallel.
    Returns [len(t), len(a), dimensions]."""
    a, b, t = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(t)[:, None, None]
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    angle = np.arccos(np.clip(cos, -1.0, 1.0))[None, :, None]
    sin = np.sin(angle)
    parallel = sin < 1e-6
    safe = np.where(parallel, 1.0, sin)
    curved = (np.sin((1 - t) * angle) * a + np.sin(t * angle) * b) / safe
    return np.where(parallel, (1 - t) * a + t * b, curved)


def walks(model, rows, seed, digit=None):
    """The images of `rows` walks of STEPS steps, [rows, STEPS, 28, 28(, 3)]:
    walk i from draw i to draw rows + i of the model's inputs from `seed`,
    its normal inputs spherically interpolated and the others (a category,
    a digit) those of its start."""
    drawn = {name: np.asarray(value) for name, value in model.draw(2 * rows, seed, digit).items()}
    t = np.linspace(0.0, 1.0, STEPS)
    inputs = {}
    for name, spec in model.inputs.items():
        start, end = drawn[name][:rows], drawn[name][rows:]
        if spec.distribution.startswith("normal"):
            path = slerp(start, end, t).astype(spec.dtype)  # [steps, rows, d]
        else:
            path = np.broadcast_to(start, (STEPS, *start.shape))
        inputs[name] = np.swapaxes(path, 0, 1).reshape(rows * STEPS, *start.shape[1:])
    walked = images.pictures(np.asarray(model.generate(inputs)))
    return walked.reshape(rows, STEPS, *walked.shape[1:])


def picture(loaded, n, seed, digit=None, interpolate=False):
    """The picture generate writes, uint8."""
    model = loaded.model
    if not interpolate:
        return images.grid(loaded.sample(n, seed, digit), cols=math.ceil(math.sqrt(n)),
                           scale=SCALE)
    rows = max(1, n // STEPS)
    walked = walks(model, rows, seed, digit)
    sections = [images.labelled_rows([(f"walk {i + 1}", row) for i, row in enumerate(walked)],
                                     scale=SCALE)]
    if hasattr(model, "code_pictures"):  # InfoGAN: each code swept as well
        codes = model.draw(STEPS, seed + 1)
        swept = model.code_pictures(codes, codes["noise"][:1])
        titles = {"image": f"the category code, {STEPS} draws of the other inputs"}
        sections += [images.titled(picture, titles.get(name, f"{name.replace('_', ' code ')} "
                                                              f"from -2 to 2, the other at 0"))
                     for name, picture in swept.items()]
    width = max(section.shape[1] for section in sections)
    return np.concatenate([_pad(section, width) for section in sections])


def _pad(section, width):
    """A section of the picture widened to `width` with the grid's grey."""
    extra = width - section.shape[1]
    padding = [(0, 0), (0, extra)] + [(0, 0)] * (section.ndim - 2)
    return np.pad(section, padding, constant_values=images.GAP)


def main(argv=None):
    return runs.command(make_parser(), argv, draw)


def draw(args):
    check_file(args.out, ".png")
    loaded = runs.open_from(args)
    drawn = picture(loaded, args.n, args.seed, args.digit, args.interpolate)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    images.save_png(drawn, args.out)
    what = "walks" if args.interpolate else f"{args.n} images"
    print(f"Wrote {what} of {loaded.config['model']} at epoch {loaded.epoch} (seed {args.seed}) "
          f"to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
