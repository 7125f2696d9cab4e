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
from common.atomic import atomic_write, check_directory
from common.errors import UsageError
from common.evaluation import spread
from common.evaluation.evaluate import add_options, evaluate_run, options


def make_parser():
    parser = Parser(prog="python -m common.experiments labels", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", help="run directories written by train.py")
    parser.add_argument("--out", default="outputs/labels", help="where to write")
    add_options(parser)
    return parser


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        check_directory(args.out, "--out")
        paths, configs = runs.collect(args.run_dirs)
        names = runs.names(paths)
        results = {name: evaluate_run(path, **options(args)) for path, name in zip(paths, names)}
    except UsageError as error:
        parser.error(error)
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
    header = ["run", *[str(d) for d in range(10)], "confidence", "coverage",
              "generates the digit asked"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, result in results.items():
        labels = result["labels"]
        asked = labels.get("conditional_accuracy")
        lines.append("| " + " | ".join(
            [name, *[f"{100 * share:.1f}" for share in labels["label_histogram"]],
             f"{labels['confidence']:.3f}", str(result["metrics"]["coverage"]),
             "—" if asked is None else f"{asked:.3f}"]) + " |")
    return lines



def group_table(results, groups):
    """Markdown, when some group has several seeds: per group of runs that
    differ only by their seed, the mean ± standard deviation over its seeds
    of each digit's share (%) and of the confidence."""
    if all(len(members) == 1 for members in groups.values()):
        return []
    lines = ["", "Per group of runs that differ only by their seed, the mean ± standard "
             "deviation over its seeds:", "",
             "| group | seeds | " + " | ".join(map(str, range(10))) + " | confidence |",
             "|" + " --- |" * 13]
    for group, members in groups.items():
        labels = [results[name]["labels"] for name in members]
        shares = [spread.Spread([100 * r["label_histogram"][d] for r in labels]).text()
                  for d in range(10)]
        confidence = spread.Spread([r["confidence"] for r in labels]).text()
        lines.append(f"| {group} | {len(members)} | " + " | ".join(shares)
                     + f" | {confidence} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
