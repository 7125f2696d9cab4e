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

from common import images, pages, runs
from common.arguments import Parser
from common.atomic import atomic_write
from common.evaluation import spread
from common.evaluation.evaluate import add_options, evaluate_run, options
from common.evaluation.metrics import LABELS, MODE_METRICS
from common.experiments.labels import table as labels_table
from common.rundir import RunDir

REPORT_EPOCHS = (5, 50, 100, 250, 500, 1000, 2000)  # report 000's pictures
PLOTTED = ("fd", "kid", "classifier_score", "coverage", "precision", "recall", "modes",
           "mode_kl")
# compared only between runs scored on the same test images (data.test_data)
LIKELIHOODS = ("test_elbo", "nll_iw")
TABLED = (*PLOTTED, *LIKELIHOODS)
# the latest checkpoints' verdict: the distances, the score, fidelity and
# diversity, the modes on Stacked MNIST, and the likelihood where the models
# bound it
JUDGED = ("fd", "kid", "classifier_score", "precision", "recall", "modes", "mode_kl",
          *LIKELIHOODS)


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
    labels = [LABELS[m] for m in shown]
    rows = []
    for group, members in groups(loaded).items():
        e = members[0]["evaluation"]
        seconds = [r["seconds"] for run in members for r in run["history"]]
        rate = [r["images_per_sec"] for run in members for r in run["history"]]
        epochs = sorted({run["evaluation"]["settings"]["epoch"] for run in members})
        rows.append([group, e["model"], e["test_data"], len(members), "/".join(map(str, epochs)),
                     f"{e['parameters']:,}", f"{np.median(seconds):.3g}", f"{np.median(rate):.4g}",
                     *[finals[group][m].text(spread.DIGITS.get(m, 3)) if m in finals[group]
                       else "—" for m in shown]])
    floor = loaded[0]["evaluation"]["floor"]
    rows.append(["real images (floor)", *["—"] * 7, *[
        f"{floor[m]:.{spread.DIGITS.get(m, 3)}g}" if m in floor else "—" for m in shown]])
    every = [[run["name"], run["group"], run["seed"], run["evaluation"]["test_data"],
              *["—" if v is None else f"{v:.4g}" for v in (final(run, m) for m in shown)]]
             for run in loaded]
    return [*spread.markdown(["group", "model", "test data", "seeds", "epochs", "parameters",
                              "s/epoch (median)", "images/s (median)", *labels], rows),
            "", "Every run:", "",
            *spread.markdown(["run", "group", "seed", "test data", *labels], every)]


def plot_metrics(loaded, path, by_time):
    """Each plotted metric of metrics.csv against epoch or training time:
    per group the mean over its seeds and, for several, their range."""
    plotted = [name for name in PLOTTED if any(name in row for run in loaded
                                               for row in run["metrics"])] or PLOTTED[:6]

    def elapsed(members):  # x: the mean training seconds at the epochs
        return lambda epochs: np.mean([[run["elapsed"].get(e, np.nan) for e in epochs]
                                       for run in members], axis=0)

    def curves(name):  # a group's each: its runs' series, its name, x
        return [([{r["epoch"]: r[name] for r in run["metrics"] if name in r} for run in members],
                 group, elapsed(members) if by_time else None)
                for group, members in groups(loaded).items()]

    images.plot_bands({spread.title(name): curves(name) for name in plotted}, path,
                      "training seconds (mean over seeds)" if by_time else "epoch")


def plot_pictures(loaded, path):
    """Each run's picture at the report's epochs it has, and its last."""
    last = [run["history"][-1]["epoch"] for run in loaded]
    epochs = sorted({e for e in REPORT_EPOCHS if e <= max(last)} | set(last))
    epochs = [e for e in epochs
              if any(RunDir(run["path"]).image_path(e).exists() for run in loaded)]
    images.plot_pictures([[(RunDir(run["path"]).image_path(e), f"{run['name']}, epoch {e}")
                           for run in loaded] for e in epochs], path)
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
            lines += _at(scored, m, lambda run, row: row["epoch"] <= common,
                         f"At equal epochs (the last scoring at or before epoch {common} of "
                         f"each run)")
            lines += _at(scored, m, lambda run, row: run["elapsed"].get(row["epoch"], np.inf)
                         <= budget * 1.0001, f"At equal training time (the last scoring within "
                                             f"{budget:.0f} s, the shortest run's time)")
    else:
        lines.append("Fewer than two groups have metrics.csv (train with --metrics-every K), "
                     "so there is no epoch-by-epoch comparison.")
    finals = group_spreads(loaded, final)
    data = {group: members[0]["evaluation"]["test_data"]
            for group, members in groups(loaded).items()}
    for judged in JUDGED:  # every metric that two groups or more have, a likelihood on one data
        having = {group: spreads[judged] for group, spreads in finals.items()
                  if judged in spreads}
        by_data = {}
        for group, value in having.items():
            by_data.setdefault(data[group] if judged in LIKELIHOODS else None, {})[group] = value
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


def _at(scored, metric, keep, context):
    """The ranking sentences of the groups by each run's last metrics row
    that keep(run, row) keeps."""
    rows = {}
    for run in scored:
        kept = [row for row in run["metrics"] if keep(run, row)]
        if kept:
            rows.setdefault(run["group"], []).append(kept[-1])
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
    images.plot_seconds({run["name"]: run["history"] for run in loaded},
                        out / "seconds_per_epoch.png")
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
    return runs.command(make_parser(), argv, compare)


def compare(args):
    """The command: its runs, each at --epoch, checked before any is scored."""
    paths, configs = runs.collect(args.run_dirs, args.out)
    for path in paths:
        runs.check(path, args.epoch)
    print(f"Wrote {write_report(load(paths, configs, **options(args)), args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
