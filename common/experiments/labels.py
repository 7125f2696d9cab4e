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
from common.errors import UsageError
from common.evaluation.evaluate import add_options, evaluate_run, options


def main(argv=None):
    parser = Parser(prog="python -m common.experiments labels", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", help="run directories written by train.py")
    parser.add_argument("--out", default="outputs/labels", help="where to write")
    add_options(parser)
    args = parser.parse_args(argv)
    try:
        for path in args.run_dirs:
            runs.check(path)
        results = {Path(path).name: evaluate_run(path, **options(args))
                   for path in args.run_dirs}
    except UsageError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images.plot_label_histograms({name: r["labels"]["label_histogram"]
                                  for name, r in results.items()}, out / "labels.png")
    with atomic_write(out / "labels.md", "w") as f:
        f.write("\n".join(table(results) + ["", "![predicted digits](labels.png)", ""]))
    print("\n".join(table(results)))
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


if __name__ == "__main__":
    sys.exit(main())
