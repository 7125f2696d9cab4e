"""Report 002's learning-rate sensitivity (its table 1): one model trained
at several learning rates, a table of each run's final losses and metrics,
and one figure of their losses over epochs.

    python -m common.experiments lr-sweep --model vaegan --epochs 5 [--rates 0.00015 0.0003 0.0006]

Every other argument goes to the model's train.py. Each rate is an
ordinary run directory (OUT/lr_<rate>), so running the same command again
resumes an interrupted sweep, and finished runs are not trained again."""
import csv
import io
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from common import images, runs
from common.arguments import Parser, positive_float
from common.atomic import atomic_write
from common.errors import UsageError
from common.rundir import RunDir

RATES = (0.00015, 0.0003, 0.0006)  # report 002, table 1


def make_parser():
    parser = Parser(prog="python -m common.experiments lr-sweep", description=__doc__)
    parser.add_argument("--model", default="vaegan",
                        help="the model to sweep (default: vaegan, report 002's)")
    parser.add_argument("--rates", type=positive_float, nargs="+", default=list(RATES),
                        help="the learning rates (default: report 002's)")
    parser.add_argument("--out", default=None,
                        help="where the runs and the table go (default: outputs/lr_sweep_<model>)")
    return parser


def main(argv=None):
    parser = make_parser()
    args, training = parser.parse_known_args(argv)
    try:
        script = runs.script_for(args.model)
        if any(token == "--lr" or token.startswith("--lr=") for token in training):
            raise UsageError("the sweep sets --lr itself")
    except UsageError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    out = Path(args.out or f"outputs/lr_sweep_{args.model}")
    directories = {}
    for rate in args.rates:
        directories[rate] = out / f"lr_{rate:g}"
        print(f"== learning rate {rate:g}: {directories[rate]}", flush=True)
        status = script.main(["--model", args.model, "--lr", str(rate),
                              "--out", str(directories[rate]), *training])
        if status:
            return status
    write_report(directories, out)
    print(f"Wrote {out / 'lr_sweep.md'}")
    return 0


def final_rows(directories):
    """Per rate: the run's last history row and its last metrics row."""
    rows = {}
    for rate, directory in directories.items():
        run = RunDir(directory)
        history, scores = run.read_table("history"), run.read_table("metrics")
        rows[rate] = {**history[-1], **({f"metrics_{k}": v for k, v in scores[-1].items()}
                                        if scores else {})}
    return rows


def write_report(directories, out):
    rows = final_rows(directories)
    columns = ["learning_rate"] + [c for c in next(iter(rows.values()))
                                   if c not in ("seconds", "images_per_sec", "metrics_epoch",
                                                "metrics_seconds", "metrics_samples")]
    table = [[rate] + [row.get(c) for c in columns[1:]] for rate, row in rows.items()]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([columns, *table])
    with atomic_write(out / "lr_sweep.csv", "w") as f:
        f.write(text.getvalue())
    lines = ["# Learning-rate sweep", "",
             "The last epoch of each run (report 002, table 1, swept the VAE-GAN's GAN, prior "
             "and discriminator losses at these rates); `metrics_` columns are the last "
             "scoring of metrics.csv.", "",
             "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row)
              + " |" for row in table]
    lines += ["", "![losses by learning rate](lr_sweep.png)", ""]
    with atomic_write(out / "lr_sweep.md", "w") as f:
        f.write("\n".join(lines))
    plot(directories, out / "lr_sweep.png")


def plot(directories, path):
    """Each loss column of history.csv over epochs, one line per rate."""
    histories = {rate: RunDir(d).read_table("history") for rate, d in directories.items()}
    names = [c for c in next(iter(histories.values()))[0]
             if c not in ("epoch", "seconds", "images_per_sec")]
    figure = Figure(figsize=(4 * min(len(names), 3), 3 * -(-len(names) // 3)),
                    layout="constrained")
    axes = np.atleast_1d(figure.subplots(-(-len(names) // 3), min(len(names), 3))).ravel()
    for ax, name in zip(axes, names):
        for rate, history in histories.items():
            points = [(r["epoch"], r[name]) for r in history if not np.isnan(r[name])]
            ax.plot(*zip(*points), marker=".", label=f"lr {rate:g}")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes[len(names):]:
        ax.axis("off")
    axes[0].legend()
    images.save_figure(figure, path)


if __name__ == "__main__":
    sys.exit(main())
