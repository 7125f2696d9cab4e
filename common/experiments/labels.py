"""Report 003's label predictor, made a number: the evaluation classifier
labels each run's generated digits; the share of each digit, the
classifier's mean confidence and (for a conditional model) how often it
agrees with the digit asked for.

    python -m common.experiments labels outputs/dcgan outputs/conv_vae

writes labels.md and labels.png (a histogram per run) to --out (default
outputs/labels). The numbers are those of common.evaluation.evaluate, reused from each
run's evaluation.json; common.evaluation.compare shows them too."""
import sys
from pathlib import Path

from common import images, runs
from common.arguments import Parser
from common.atomic import atomic_write
from common.evaluation import spread
from common.evaluation.evaluate import add_options, evaluate_run, options


def make_parser():
    parser = Parser(prog="python -m common.experiments labels", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", help="run directories written by train.py")
    parser.add_argument("--out", default="outputs/labels", help="where to write")
    add_options(parser)
    return parser


def main(argv=None):
    return runs.command(make_parser(), argv, report)


def report(args):
    paths, configs = runs.collect(args.run_dirs, args.out)
    names = runs.names(paths)
    results = {name: evaluate_run(path, **options(args)) for path, name in zip(paths, names)}
    groups = {group: [names[i] for i in members]
              for group, members in spread.groups(paths, configs, names).items()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images.plot_label_histograms({name: r["labels"]["label_histogram"]
                                  for name, r in results.items()}, out / "labels.png")
    lines = table(results) + group_table(results, groups)
    with atomic_write(out / "labels.md", "w") as f:
        f.write("\n".join(lines + ["", "![predicted digits](labels.png)", ""]))
    print("\n".join(lines))
    return 0


def table(results):
    """Markdown: per run, its samples' predicted digits (%), confidence,
    coverage and, for conditional models, agreement with the digit asked."""
    rows = []
    for name, result in results.items():
        labels = result["labels"]
        asked = labels.get("conditional_accuracy")
        rows.append([name, *[f"{100 * share:.1f}" for share in labels["label_histogram"]],
                     f"{labels['confidence']:.3f}", result["metrics"]["coverage"],
                     "—" if asked is None else f"{asked:.3f}"])
    return spread.markdown(["run", *range(10), "confidence", "coverage",
                            "generates the digit asked"], rows)


def group_table(results, groups):
    """Markdown, when some group has several seeds: the mean ± standard
    deviation over its seeds of each digit's share (%) and of the confidence."""
    def cell(members, i):  # digit i's share, or (i = 10) the confidence
        labels = [results[name]["labels"] for name in members]
        return spread.Spread([100 * r["label_histogram"][i] if i < 10 else r["confidence"]
                              for r in labels]).text()

    return spread.group_table([*range(10), "confidence"], groups, cell)


if __name__ == "__main__":
    sys.exit(main())
