"""Report 002's learning-rate sensitivity (its table 1): one model trained
at several learning rates, under one seed or several, a table of each run's
final losses and metrics (per rate, their mean and spread over the seeds),
and one figure of their losses over epochs.

    python -m common.experiments lr-sweep --model vaegan --epochs 5 \\
        [--rates 0.00015 0.0003 0.0006] [--seeds 1 2 3] [--workers N | --cluster ADDRESS]

Every other argument goes to the model's train.py. Each run is an ordinary
run directory (OUT/lr_<rate>, or OUT/lr_<rate>/seed_<s> with --seeds), so
running the same command again resumes an interrupted sweep, and finished
runs are not trained again."""
import csv
import sys
from pathlib import Path

import numpy as np

from common import images
from common.arguments import Parser, positive_float, seed
from common.atomic import atomic_write
from common.evaluation import spread
from common.experiments import sweep
from common.rundir import RunDir

RATES = (0.00015, 0.0003, 0.0006)  # report 002, table 1
MEASURED = ("seconds", "train_seconds", "images_per_sec", "host_mb", "device_mb",
            "metrics_epoch", "metrics_seconds", "metrics_samples")  # not compared across rates


def make_parser():
    parser = Parser(prog="python -m common.experiments lr-sweep", description=__doc__)
    parser.add_argument("--model", default="vaegan",
                        help="the model to sweep (report 002's)")
    parser.add_argument("--rates", type=positive_float, nargs="+", default=list(RATES),
                        help="the learning rates (report 002's)")
    parser.add_argument("--seeds", type=seed, nargs="+", default=None,
                        help="train every rate under each of these seeds (default: one run per "
                             "rate, with the train.py's --seed if given)")
    parser.add_argument("--out", default=None,
                        help="where the runs and the table go (default: outputs/lr_sweep_<model>)")
    sweep.add_options(parser)
    return parser


def main(argv=None):
    parser = make_parser()
    args, training, script = sweep.parse(parser, argv, set_by_the_sweep)
    out = Path(args.out or f"outputs/lr_sweep_{args.model}")
    directories = {(rate, s): out / f"lr_{rate:g}" / (f"seed_{s}" if s is not None else "")
                   for rate in args.rates for s in (args.seeds or [None])}
    planned = [sweep.training_run(str(directory.relative_to(out)), script, args.model,
                                  [*training, "--lr", str(rate)], s, directory)
               for (rate, s), directory in directories.items()]
    if not sweep.run(parser, planned, args):
        return 1
    write_report(directories, out)
    print(f"Wrote {out / 'lr_sweep.md'}")
    return 0


def set_by_the_sweep(args):
    """The train.py options the sweep sets itself: --seed too with --seeds."""
    return ("--lr", "--out", *(["--seed"] if args.seeds else []))


def final_row(directory):
    """A run's last history row and its last metrics row (metrics_ columns)."""
    run = RunDir(directory)
    history, scores = run.read_table("history"), run.read_table("metrics")
    return {**history[-1], **({f"metrics_{k}": v for k, v in scores[-1].items()}
                              if scores else {})}


def write_report(directories, out):
    rows = {key: final_row(directory) for key, directory in directories.items()}
    columns = [c for c in next(iter(rows.values())) if c not in MEASURED]
    with atomic_write(out / "lr_sweep.csv", "w") as f:
        csv.writer(f, lineterminator="\n").writerows(
            [["learning_rate", "seed", *columns]]
            + [[rate, "" if s is None else s, *[row.get(c) for c in columns]]
               for (rate, s), row in rows.items()])
    rates = list(dict.fromkeys(rate for rate, _ in rows))
    by_rate = {rate: {c: spread.Spread([row[c] for (r, _), row in rows.items() if r == rate])
                      for c in columns} for rate in rates}
    seeds = len(rows) // len(rates)
    lines = ["# Learning-rate sweep", "",
             "The last epoch of each run (report 002, table 1, swept the VAE-GAN's GAN, prior "
             "and discriminator losses at these rates); `metrics_` columns are the last "
             "scoring of metrics.csv"
             + (f"; each cell is the mean ± standard deviation over {seeds} seeds "
                f"(lr_sweep.csv has every run)." if seeds > 1 else "."), "",
             *spread.markdown(["learning_rate", *columns],
                              [[f"{rate:g}", *[by_rate[rate][c].text(4) for c in columns]]
                               for rate in rates])]
    if "metrics_fd" in columns and len(rates) > 1:
        lines += ["", spread.RULE, ""]
        lines += [f"- {sentence}" for sentence in spread.ranking(
            {f"lr {rate:g}": by_rate[rate]["metrics_fd"] for rate in rates}, "fd",
            "Frechet distance")]
    lines += ["", "![losses by learning rate](lr_sweep.png)", ""]
    with atomic_write(out / "lr_sweep.md", "w") as f:
        f.write("\n".join(lines))
    plot(directories, out / "lr_sweep.png")


def plot(directories, path):
    """Each loss column of history.csv over epochs, one line per rate (the
    mean over seeds, with their range)."""
    histories = {}
    for (rate, _), directory in directories.items():
        histories.setdefault(rate, []).append(RunDir(directory).read_table("history"))
    names = [c for c in next(iter(histories.values()))[0][0]
             if c not in ("epoch", *MEASURED)]
    images.plot_bands({name: [([{r["epoch"]: r[name] for r in h if not np.isnan(r[name])}
                                for h in runs_], f"lr {rate:g}")
                              for rate, runs_ in histories.items()] for name in names}, path)


if __name__ == "__main__":
    sys.exit(main())
