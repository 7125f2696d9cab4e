"""The comparison the reports could not make: runs side by side, in numbers,
with the spread between seeds.

    python -m common.evaluation.compare RUN_DIR [RUN_DIR ...] [--epoch N] [--out outputs/comparison]

A RUN_DIR may also be a sweep's directory (outputs/seeds_dcgan): its runs
are taken. Runs that differ only by their seed form a group (the seeds
command makes them). Writes report.md and its figures: per group the mean,
standard deviation and every seed's value of each metric of
common.evaluation.evaluate at the latest checkpoints, or at epoch N of
every run (and the test ELBO and
likelihood bound where the model has them), seconds per epoch and images
per second; metrics.csv against epochs and against training time on shared
axes (each group's mean and the range of its seeds); the runs' pictures side
by side at the report's epochs; and a written verdict, from the numbers, by
the rule of common.evaluation.spread: a group is called better than another
only when the difference holds beyond the seeds' spread."""
import datetime
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from common import images, pages, runs
from common.arguments import Parser
from common.atomic import atomic_write, check_directory
from common.errors import UsageError
from common.evaluation import spread
from common.evaluation.evaluate import add_options, evaluate_run, options
from common.evaluation.metrics import LABELS, MODE_METRICS
from common.experiments.labels import table as labels_table
from common.rundir import RunDir

REPORT_EPOCHS = (5, 50, 100, 250, 500, 1000, 2000)  # report 000's pictures
PLOTTED = ("fd", "kid", "classifier_score", "coverage", "precision", "recall", "modes",
           "mode_kl")
TABLED = ("fd", "kid", "classifier_score", "coverage", "precision", "recall", "modes", "mode_kl",
          "test_elbo", "nll_iw")
# the latest checkpoints' verdict: the distances, the score, fidelity and
# diversity, the modes on Stacked MNIST, and the likelihood where the models
# bound it
JUDGED = ("fd", "kid", "classifier_score", "precision", "recall", "modes", "mode_kl",
          "test_elbo", "nll_iw")
# compared only between runs scored on the same test images (data.test_data)
LIKELIHOODS = ("test_elbo", "nll_iw")


def load(paths, configs, **evaluation):
    """For each run (runs.collect's paths and configs): its name, group
    (the runs that differ only by their seed), seed, evaluation, history
    and metrics rows."""
    loaded = []
    for path, config, name in zip(paths, configs, runs.names(paths)):
        run = RunDir(path)
        history = run.read_table("history")
        elapsed = np.cumsum([row["seconds"] for row in history])
        loaded.append({"name": name, "path": run.path, "history": history,
                       "elapsed": dict(zip((row["epoch"] for row in history), elapsed)),
                       "metrics": run.read_table("metrics"),
                       "seed": config["args"].get("seed"),
                       "evaluation": evaluate_run(path, **evaluation)})
    for group, members in spread.groups(paths, configs, [run["name"] for run in loaded]).items():
        for i in members:
            loaded[i]["group"] = group
    return loaded


def groups(loaded):
    """{group name: its runs}, in the order first given."""
    named = {}
    for run in loaded:
        named.setdefault(run["group"], []).append(run)
    return named


def final(run, metric):
    """A run's value of `metric` at its latest checkpoint: evaluation.json's
    metrics and likelihood bound; the test ELBO of its last history row."""
    evaluation = run["evaluation"]
    if metric in evaluation["metrics"]:
        return evaluation["metrics"][metric]
    if metric == "test_elbo":  # on grey levels minus the reports' loss: no likelihood
        value = run["history"][-1].get("test_elbo", np.nan)
        return None if np.isnan(value) or evaluation["grey_vae"] else value
    return evaluation["likelihood"].get(metric)


def group_spreads(loaded, value):
    """{group: {metric: Spread of value(run, metric) over its runs}}, for
    the metrics every run of the group has."""
    result = {}
    for group, members in groups(loaded).items():
        values = {metric: [value(run, metric) for run in members] for metric in TABLED}
        result[group] = {metric: spread.Spread(v) for metric, v in values.items()
                         if all(x is not None for x in v)}
    return result


def summary_table(loaded):
    """The Markdown table: one row per group, mean ± standard deviation over
    its seeds; then every run's values."""
    finals = group_spreads(loaded, final)
    shown = [m for m in TABLED if any(m in spreads for spreads in finals.values())]
    header = ["group", "model", "test data", "seeds", "epochs", "parameters", "s/epoch (median)",
              "images/s (median)", *[LABELS[m] for m in shown]]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for group, members in groups(loaded).items():
        e = members[0]["evaluation"]
        seconds = [r["seconds"] for run in members for r in run["history"]]
        rate = [r["images_per_sec"] for run in members for r in run["history"]]
        epochs = sorted({run["evaluation"]["settings"]["epoch"] for run in members})
        lines.append("| " + " | ".join(
            [group, e["model"], e["test_data"], str(len(members)), "/".join(map(str, epochs)),
             f"{e['parameters']:,}", f"{np.median(seconds):.3g}", f"{np.median(rate):.4g}",
             *[finals[group][m].text(spread.DIGITS.get(m, 3)) if m in finals[group] else "—"
               for m in shown]]) + " |")
    floor = loaded[0]["evaluation"]["floor"]
    lines.append("| " + " | ".join(["real images (floor)", *["—"] * 7,
                                     *[f"{floor[m]:.{spread.DIGITS.get(m, 3)}g}" if m in floor
                                       else "—" for m in shown]]) + " |")
    lines += ["", "Every run:", "", "| run | group | seed | test data | " + " | ".join(
        LABELS[m] for m in shown) + " |", "|" + " --- |" * (len(shown) + 4)]
    for run in loaded:
        cells = [final(run, m) for m in shown]
        lines.append(f"| {run['name']} | {run['group']} | {run['seed']} | "
                     f"{run['evaluation']['test_data']} | " + " | ".join(
                         "—" if v is None else f"{v:.4g}" for v in cells) + " |")
    return lines


def plot_metrics(loaded, path, by_time):
    """Each plotted metric of metrics.csv against epoch or training time:
    per group the mean over its seeds and, for several, their range."""
    plotted = [name for name in PLOTTED if any(name in row for run in loaded
                                               for row in run["metrics"])] or PLOTTED[:6]
    rows = -(-len(plotted) // 3)
    figure = Figure(figsize=(11, 3.5 * rows), layout="constrained")
    axes = figure.subplots(rows, 3, squeeze=False).ravel()
    for ax in axes[len(plotted):]:  # the last row's empty places
        ax.set_axis_off()
    for ax, name in zip(axes, plotted):
        for group, members in groups(loaded).items():
            def elapsed(epochs, members=members):  # mean training seconds at those epochs
                return np.mean([[run["elapsed"].get(e, np.nan) for e in epochs]
                                for run in members], axis=0)

            images.plot_band(ax, [{r["epoch"]: r[name] for r in run["metrics"] if name in r}
                                  for run in members], group, elapsed if by_time else None)
        ax.set_title(LABELS[name] + (" (lower is better)" if spread.LOWER_IS_BETTER[name]
                                     else ""))
        ax.set_xlabel("training seconds (mean over seeds)" if by_time else "epoch")
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
                with Image.open(picture) as png:  # grey, or Stacked MNIST's colour
                    ax.imshow(np.asarray(png), cmap="gray" if png.mode == "L" else None,
                              vmin=0, vmax=255)
            ax.set_title(f"{run['name']}, epoch {epoch}", fontsize=9)
            ax.axis("off")
    images.save_figure(figure, path)
    return epochs


def verdict(loaded, metric="fd"):
    """Sentences, from the numbers, by the rule of common.evaluation.spread:
    which group is better by `metric` at equal epochs and at equal training
    time (metrics.csv), and on Stacked MNIST by the modes hit and the mode KL
    too; then by each JUDGED metric at the latest checkpoints
    (evaluation.json)."""
    label = LABELS[metric]
    scored = [run for run in loaded if run["metrics"]]
    lines = []
    if len({run["group"] for run in scored}) >= 2:
        followed = [metric, *[m for m in MODE_METRICS
                              if all(m in run["metrics"][-1] for run in scored)]]
        common = min(run["metrics"][-1]["epoch"] for run in scored)
        budget = min(max(run["elapsed"].values()) for run in scored)
        for m in followed:
            lines += _at(scored, m, lambda run: _last(run["metrics"],
                                                      lambda r: r["epoch"] <= common),
                         f"At equal epochs (the last scoring at or before epoch {common} of "
                         f"each run)")
            lines += _at(scored, m, lambda run: _last(
                run["metrics"],
                lambda r: run["elapsed"].get(r["epoch"], np.inf) <= budget * 1.0001),
                f"At equal training time (the last scoring within {budget:.0f} s, the "
                f"shortest run's time)")
    else:
        lines.append("Fewer than two groups have metrics.csv (train with --metrics-every K), "
                     "so there is no epoch-by-epoch comparison.")
    finals = group_spreads(loaded, final)
    data = {group: members[0]["evaluation"]["test_data"]
            for group, members in groups(loaded).items()}
    for judged in JUDGED:  # every metric that two groups or more have, a likelihood on one data
        having = {group: spreads[judged] for group, spreads in finals.items()
                  if judged in spreads}
        by_data = {None: having}
        if judged in LIKELIHOODS:
            by_data = {}
            for group, value in having.items():
                by_data.setdefault(data[group], {})[group] = value
        for comparable in by_data.values():
            if len(comparable) >= 2:
                lines += [f"At the latest checkpoints: {sentence}"
                          for sentence in spread.ranking(comparable, judged, LABELS[judged])]
        if len(by_data) >= 2:
            lines.append(f"{LABELS[judged]}: not compared between groups scored on different "
                         f"test data (" + "; ".join(f"{group}: {data[group]}"
                                                    for group in having) + ").")
    if any("test_elbo" in spreads for spreads in finals.values()):
        lines += [f"{group}: no likelihood verdict: scored on grey levels (--binarize none), "
                  f"where the Bernoulli decoder's loss bounds no likelihood."
                  for group, members in groups(loaded).items()
                  if members[0]["evaluation"]["grey_vae"]]
    lines.append(f"Real training images score {loaded[0]['evaluation']['floor'][metric]:.3g} "
                 f"by {label}.")
    if real := loaded[0]["evaluation"].get("real_modes"):
        lines.append(f"The test images themselves hit {real['modes']} modes, at a mode KL of "
                     f"{real['mode_kl']:.3g}: the floor of the mode metrics.")
    for run in scored:
        spent = sum(r["seconds"] for r in run["metrics"])
        trained = sum(r["seconds"] for r in run["history"])
        lines.append(f"{run['name']}: scoring {len(run['metrics'])} times took {spent:.1f} s, "
                     f"{100 * spent / trained:.1f}% of its {trained:.0f} s of training.")
    return lines


def _last(rows, keep):
    kept = [row for row in rows if keep(row)]
    return kept[-1] if kept else None


def _at(scored, metric, row_of, context):
    """The ranking sentences of the groups by the rows row_of(run) picks."""
    rows = {}
    for run in scored:
        row = row_of(run)
        if row is not None:
            rows.setdefault(run["group"], []).append(row)
    if len(rows) < 2:
        return [f"{context}: fewer than two groups were scored by then."]
    epochs = {group: sorted({row["epoch"] for row in members}) for group, members in rows.items()}
    spreads = {group: spread.Spread([row[metric] for row in members])
               for group, members in rows.items()}
    where = "; ".join(f"{group} at epoch {'/'.join(map(str, e))}" for group, e in epochs.items())
    return [f"{context}, {where}: {sentence}"
            for sentence in spread.ranking(spreads, metric, LABELS[metric])]


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
    stacked = "modes" in loaded[0]["evaluation"]["metrics"]  # its score is over 1000 modes
    lines = [
        "# Comparison of runs", "",
        f"Written by `python -m common.evaluation.compare` on "
        f"{datetime.date.today().isoformat()}. Each run is scored at its latest checkpoint: "
        f"{settings['samples']} generated images against as many test images, in the feature "
        f"space of the evaluation classifier (test accuracy "
        f"{loaded[0]['evaluation']['classifier_accuracy']:.4f}). FD and KID: lower is better; "
        f"classifier score: up to {1000 if stacked else 10}; coverage: classes holding at least 1% of the samples; "
        f"precision (fidelity) and recall (diversity): up to 1. The floor is real training "
        f"images scored the same way. Runs that differ only by their seed form a group; its "
        f"cells are the mean ± standard deviation over its seeds."
        + (f" The NLL bound is the importance-weighted bound with K = {settings['iw_samples']} "
           f"samples on each of the first {settings['iw_images']} test images."
           if any(run["evaluation"]["likelihood"] for run in loaded) else ""), "",
        *summary_table(loaded), "",
        "## What the numbers say", "",
        spread.RULE, "",
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


def make_parser():
    parser = Parser(prog="python -m common.evaluation.compare", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", help="run directories written by train.py")
    parser.add_argument("--out", default="outputs/comparison", help="where to write the report")
    add_options(parser)
    return parser


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        check_directory(args.out, "--out")
        paths, configs = runs.collect(args.run_dirs)
        for path in paths:
            runs.check(path, args.epoch)
        loaded = load(paths, configs, **options(args))
    except UsageError as error:
        parser.error(error)
    print(f"Wrote {write_report(loaded, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
