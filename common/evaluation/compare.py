"""The comparison the reports could not make: runs side by side, in numbers.

    python -m common.evaluation.compare RUN_DIR [RUN_DIR ...] [--out outputs/comparison]

writes report.md and its figures: a table per run (model, parameters,
median seconds per epoch, images per second, the metrics of
common/evaluate.py at its latest checkpoint, the likelihood bound where the
model has one), the metrics.csv of every run against epochs and against
training time on shared axes, seconds per epoch, the runs' pictures side by
side at the report's epochs, and a written comparison generated from the
numbers: which run is better at equal epochs and at equal training time."""
import datetime
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from common import images, pages, runs
from common.arguments import Parser
from common.atomic import atomic_write
from common.errors import UsageError
from common.evaluation.evaluate import LABELS, add_options, evaluate_run, options
from common.experiments.labels import table as labels_table
from common.rundir import RunDir

REPORT_EPOCHS = (5, 50, 100, 250, 500, 1000, 2000)  # report 000's pictures
PLOTTED = ("fd", "kid", "classifier_score", "coverage", "precision", "recall")
LOWER_IS_BETTER = {"fd", "kid", "label_kl"}


def load(paths, **evaluation):
    """For each run: its name, evaluation, history and metrics rows."""
    loaded = []
    for path in paths:
        run = RunDir(path)
        history = run.read_table("history")
        elapsed = np.cumsum([row["seconds"] for row in history])
        loaded.append({"name": run.path.name, "path": run.path, "history": history,
                       "elapsed": dict(zip((row["epoch"] for row in history), elapsed)),
                       "metrics": run.read_table("metrics"),
                       "evaluation": evaluate_run(path, **evaluation)})
    return loaded


def summary_table(loaded):
    """The Markdown table: one row per run."""
    header = ["run", "model", "epochs", "parameters", "s/epoch (median)", "images/s (median)",
              "FD", "KID", "classifier score", "coverage", "precision", "recall",
              "NLL bound (nats)"]
    rows = [header, ["---"] * len(header)]
    for run in loaded:
        e, h = run["evaluation"], run["history"]
        m, likelihood = e["metrics"], e["likelihood"]
        rows.append([run["name"], e["model"], str(e["settings"]["epoch"]),
                     f"{e['parameters']:,}", f"{np.median([r['seconds'] for r in h]):.3g}",
                     f"{np.median([r['images_per_sec'] for r in h]):.4g}",
                     f"{m['fd']:.3g}", f"{m['kid']:.3g} ± {m['kid_se']:.2g}",
                     f"{m['classifier_score']:.3g}", str(m["coverage"]), f"{m['precision']:.3f}",
                     f"{m['recall']:.3f}",
                     f"{likelihood['nll_iw']:.2f}" if likelihood else "—"])
    floor = loaded[0]["evaluation"]["floor"]
    rows.append(["real images (floor)", "—", "—", "—", "—", "—", f"{floor['fd']:.3g}",
                 f"{floor['kid']:.3g} ± {floor['kid_se']:.2g}",
                 f"{floor['classifier_score']:.3g}", str(floor["coverage"]),
                 f"{floor['precision']:.3f}", f"{floor['recall']:.3f}", "—"])
    return ["| " + " | ".join(row) + " |" for row in rows]


def plot_metrics(loaded, path, by_time):
    """Each plotted metric of metrics.csv, all runs, against epoch or time."""
    figure = Figure(figsize=(11, 7), layout="constrained")
    for ax, name in zip(figure.subplots(2, 3).ravel(), PLOTTED):
        for run in loaded:
            rows = run["metrics"]
            x = [run["elapsed"].get(r["epoch"], np.nan) if by_time else r["epoch"] for r in rows]
            ax.plot(x, [r[name] for r in rows], marker=".", label=run["name"])
        ax.set_title(LABELS[name] + (" (lower is better)" if name in LOWER_IS_BETTER else ""))
        ax.set_xlabel("training seconds" if by_time else "epoch")
        ax.grid(alpha=0.3)
    figure.axes[0].legend()
    images.save_figure(figure, path)


def plot_seconds(loaded, path):
    figure = Figure(figsize=(7, 3.5), layout="constrained")
    ax = figure.subplots()
    for run in loaded:
        ax.plot([r["epoch"] for r in run["history"]], [r["seconds"] for r in run["history"]],
                label=run["name"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("seconds per epoch")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(alpha=0.3)
    images.save_figure(figure, path)


def plot_pictures(loaded, path):
    """Each run's picture at the report's epochs it has, and its last."""
    last = [run["history"][-1]["epoch"] for run in loaded]
    epochs = sorted({e for e in REPORT_EPOCHS if e <= max(last)} | set(last))
    epochs = [e for e in epochs
              if any(RunDir(run["path"]).image_path(e).exists() for run in loaded)]
    figure = Figure(figsize=(3 * len(loaded), 3 * len(epochs)), layout="constrained")
    axes = figure.subplots(len(epochs), len(loaded), squeeze=False)
    for row, epoch in zip(axes, epochs):
        for ax, run in zip(row, loaded):
            picture = RunDir(run["path"]).image_path(epoch)
            if picture.exists():
                with Image.open(picture) as png:
                    ax.imshow(np.asarray(png.convert("L")), cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{run['name']}, epoch {epoch}", fontsize=9)
            ax.axis("off")
    images.save_figure(figure, path)
    return epochs


def verdict(loaded, name="fd"):
    """Sentences, from the numbers: who is better at equal epochs and at
    equal training time, by `name` of metrics.csv, and the final numbers."""
    label = LABELS[name]
    scored = [run for run in loaded if run["metrics"]]
    lines = []
    if len(scored) >= 2:
        common = min(run["metrics"][-1]["epoch"] for run in scored)
        at_epoch = [(run["name"], _last(run["metrics"], lambda r: r["epoch"] <= common))
                    for run in scored]
        lines.append(_ranking(f"At equal epochs (the last scoring at or before epoch {common} "
                              f"of each run)", at_epoch, name))
        budget = min(max(run["elapsed"].values()) for run in scored)
        at_time = [(run["name"], _last(run["metrics"],
                                       lambda r, run=run: run["elapsed"].get(r["epoch"], np.inf)
                                       <= budget * 1.0001))
                   for run in scored]
        lines.append(_ranking(f"At equal training time (the last scoring within {budget:.0f} s, "
                              f"the shortest run's time)", at_time, name))
    else:
        lines.append("Fewer than two runs have metrics.csv (train with --metrics-every K), "
                     "so there is no epoch-by-epoch comparison.")
    final = sorted(loaded, key=lambda run: run["evaluation"]["metrics"][name])
    lines.append(f"At their latest checkpoints, by {label}: " + ", ".join(
        f"{run['name']} {run['evaluation']['metrics'][name]:.3g} (epoch "
        f"{run['evaluation']['settings']['epoch']})" for run in final)
        + f"; real training images score {loaded[0]['evaluation']['floor'][name]:.3g}.")
    for run in scored:
        spent = sum(r["seconds"] for r in run["metrics"])
        trained = sum(r["seconds"] for r in run["history"])
        lines.append(f"{run['name']}: scoring {len(run['metrics'])} times took {spent:.1f} s, "
                     f"{100 * spent / trained:.1f}% of its {trained:.0f} s of training.")
    return lines


def _last(rows, keep):
    kept = [row for row in rows if keep(row)]
    return kept[-1] if kept else None


def _ranking(context, pairs, name):
    pairs = [(run, row) for run, row in pairs if row is not None]
    if len(pairs) < 2:
        return f"{context}: fewer than two runs were scored by then."
    pairs.sort(key=lambda pair: pair[1][name], reverse=name not in LOWER_IS_BETTER)
    (best, row), rest = pairs[0], pairs[1:]
    others = ", ".join(f"{run} {r[name]:.3g} at epoch {r['epoch']}" for run, r in rest)
    return (f"{context}, {best} is better by {LABELS[name]}: {row[name]:.3g} at epoch "
            f"{row['epoch']}, against {others}.")


def write_report(loaded, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plot_metrics(loaded, out / "metrics_by_epoch.png", by_time=False)
    plot_metrics(loaded, out / "metrics_by_time.png", by_time=True)
    plot_seconds(loaded, out / "seconds_per_epoch.png")
    epochs = plot_pictures(loaded, out / "pictures.png")
    images.plot_label_histograms({run["name"]: run["evaluation"]["labels"]["label_histogram"]
                                  for run in loaded}, out / "labels.png")
    settings = loaded[0]["evaluation"]["settings"]
    lines = [
        "# Comparison of runs", "",
        f"Written by `python -m common.evaluation.compare` on "
        f"{datetime.date.today().isoformat()}. Each run is scored at its latest checkpoint: "
        f"{settings['samples']} generated images against as many test images, in the feature "
        f"space of the evaluation classifier (test accuracy "
        f"{loaded[0]['evaluation']['classifier_accuracy']:.4f}). FD and KID: lower is better; "
        f"classifier score: up to 10; coverage: classes holding at least 1% of the samples; "
        f"precision (fidelity) and recall (diversity): up to 1. The floor is real training "
        f"images scored the same way.", "",
        *summary_table(loaded), "",
        "## What the numbers say", "",
        *[f"- {line}" for line in verdict(loaded)], "",
        "## Metrics during training", "",
        "![metrics by epoch](metrics_by_epoch.png)", "",
        "![metrics by training time](metrics_by_time.png)", "",
        "## Seconds per epoch", "",
        "![seconds per epoch](seconds_per_epoch.png)", "",
        "## The label predictor (report 003)", "",
        "The digits the evaluation classifier sees in each run's samples, in %, its mean "
        "confidence, and for a conditional model how often it sees the digit asked for.", "",
        *labels_table({run["name"]: run["evaluation"] for run in loaded}), "",
        "![predicted digits](labels.png)", "",
        f"## Pictures at epochs {', '.join(map(str, epochs))}", "",
        "![pictures](pictures.png)", "",
        "## Runs", "",
        *[f"- `{run['name']}`: `{run['path']}`" for run in loaded], ""]
    with atomic_write(out / "report.md", "w") as f:
        f.write("\n".join(lines))
    pages.write_report(loaded, out)
    return out / "report.md"


def main(argv=None):
    parser = Parser(prog="python -m common.evaluation.compare", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", help="run directories written by train.py")
    parser.add_argument("--out", default="outputs/comparison", help="where to write the report")
    add_options(parser)
    args = parser.parse_args(argv)
    try:
        datasets = {runs.check(path)["args"]["dataset"] for path in args.run_dirs}
        if len(datasets) > 1:
            raise UsageError(f"the runs are on different data sets ({', '.join(sorted(datasets))})")
        if len({RunDir(path).path.name for path in args.run_dirs}) < len(args.run_dirs):
            raise UsageError("two runs share a directory name; the report names runs by it")
        loaded = load(args.run_dirs, **options(args))
    except UsageError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    print(f"Wrote {write_report(loaded, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
