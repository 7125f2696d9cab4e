"""Report 002's translation robustness (its section 4.4): test digits shifted
at random by up to 10% of their size each way, reconstructed by each model
with an encoder (the VAEs, the VAE-GAN), against the unshifted digits.

    python -m common.experiments translation outputs/conv_vae outputs/vaegan

writes translation.md and .csv (per model: the pixel reconstruction error
and the evaluation classifier's accuracy on the reconstructions, for
unshifted and shifted digits) and translation.png (originals, shifted,
each model's reconstructions of both) to --out (default outputs/translation)."""
import csv
import sys
from pathlib import Path

import numpy as np

from common import images, runs
from common.arguments import Parser, positive_int, seed, unit_interval
from common.atomic import atomic_write
from common.errors import UsageError
from common.evaluation import spread

SHOWN = 10  # digits in the figure


def translate(digits, max_shift, rng):
    """Each image moved by a whole number of pixels drawn uniformly from
    [-max_shift, max_shift] (rounded) down and right, zeros let in."""
    shifts = np.rint(rng.uniform(-max_shift, max_shift, (len(digits), 2))).astype(int)
    moved = np.zeros_like(digits)
    size = digits.shape[1]
    for out, image, (dy, dx) in zip(moved, digits, shifts):
        out[max(dy, 0):size + min(dy, 0), max(dx, 0):size + min(dx, 0)] = \
            image[max(-dy, 0):size + min(-dy, 0), max(-dx, 0):size + min(-dx, 0)]
    return moved


def make_parser():
    parser = Parser(prog="python -m common.experiments translation", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", help="runs of models with an encoder")
    parser.add_argument("--out", default="outputs/translation", help="where to write")
    parser.add_argument("--images", type=positive_int, default=1000,
                        help="test digits to shift (the first N)")
    parser.add_argument("--shift", type=unit_interval, default=0.1,
                        help="largest shift, as a share of the image's size (report 002: 0.1)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the shifts")
    parser.add_argument("--data-dir", default=None, help="read the data from here")
    parser.add_argument("--classifier-dir", default=None,
                        help="where the evaluation classifier is cached")
    return parser


def main(argv=None):
    return runs.command(make_parser(), argv, measure)


def measure(args):
    paths, configs = runs.collect(args.run_dirs, args.out)
    loaded = [runs.open_run(path, data_dir=args.data_dir) for path in paths]
    for run in loaded:
        if not hasattr(run.model, "reconstruct"):
            raise UsageError(f"{run.run.path} is a {run.config['model']}, which has no "
                             f"encoder to reconstruct with")
    from common.evaluation import classifier

    data = loaded[0].data
    trained = classifier.load_or_train(data, classifier.cache_dir(paths[0], args.classifier_dir))
    digits, labels = data.test_images[:args.images], data.test_labels[:args.images]
    shifted = translate(digits, args.shift * digits.shape[1], np.random.default_rng(args.seed))
    rows, pictures = [], [("Originals", digits[:SHOWN] / 255), ("Shifted", shifted[:SHOWN] / 255)]

    def accuracy(x):
        return float((trained.features_and_probabilities(x)[1].argmax(axis=1) == labels).mean())

    rows.append(["(the digits themselves)", "", "", accuracy(digits), accuracy(shifted)])
    names = runs.names(paths)
    for run, name in zip(loaded, names):
        plain, moved = run.model.reconstruct(digits, labels), run.model.reconstruct(shifted, labels)
        rows.append([name, float(np.mean((plain - digits / 255) ** 2)),
                     float(np.mean((moved - shifted / 255) ** 2)), accuracy(plain),
                     accuracy(moved)])
        pictures += [(f"{name}: from originals", plain[:SHOWN]),
                     (f"{name}: from shifted", moved[:SHOWN])]
    groups = {group: [rows[1 + i] for i in members]
              for group, members in spread.groups(paths, configs, names).items()}
    write(rows, groups, pictures, Path(args.out), args)
    print(f"Wrote {Path(args.out) / 'translation.md'}")
    return 0


def write(rows, groups, pictures, out, args):
    """translation.csv and .md (every run; and per group of seeds, the mean
    ± standard deviation), translation.png."""
    out.mkdir(parents=True, exist_ok=True)
    header = ["model", "reconstruction MSE (unshifted)", "reconstruction MSE (shifted)",
              "classifier accuracy (unshifted)", "classifier accuracy (shifted)"]
    with atomic_write(out / "translation.csv", "w") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])
    lines = ["# Translation robustness", "",
             f"The first {args.images} test digits, each shifted by up to "
             f"{args.shift:.0%} of its size each way (seed {args.seed}), and their "
             f"reconstructions (from the mean of q(z|x)); the error is against the digit the "
             f"model was given, pixels in [0, 1]; the accuracy is the evaluation classifier's "
             f"on the reconstructions, against the digits' labels.", "",
             *spread.markdown(header, [[f"{v:.4f}" if isinstance(v, float) else v for v in row]
                                       for row in rows]),
             *spread.group_table(header[1:], groups, lambda members, i: spread.Spread(
                 [row[i + 1] for row in members]).text(4)),
             "", "![originals, shifted, reconstructions](translation.png)", ""]
    with atomic_write(out / "translation.md", "w") as f:
        f.write("\n".join(lines))
    images.save_png(images.labelled_rows(pictures), out / "translation.png")


if __name__ == "__main__":
    sys.exit(main())
