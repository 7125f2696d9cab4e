"""Is our training as good as the tutorial's, epoch for epoch? The
TensorFlow tutorial's own loop (bench/ref_dcgan.py, bench/ref_cvae.py) and
the project's, on the same data for the same epochs, several seeds each,
ours in each precision the speed defaults may pick; every epoch of every
run scored with common.evaluation's metrics, on as many samples (10,000;
on Stacked MNIST 26,000, with the modes hit and the mode KL) drawn and
quantized the same way.

    python bench/parity.py --model dcgan --epochs 5 --seeds 1 2 3
    python bench/parity.py --model dcgan --dataset stacked_mnist --epochs 2

writes OUT/parity.md (per variant: mean ± standard deviation over seeds and
every seed's value at the last epoch, the verdict of each of ours against
the reference by the rule of common.evaluation.spread, seconds per epoch),
OUT/curves.png (each metric per epoch, mean and range over seeds),
OUT/pictures.png (every run's picture at the first and last epochs) and
OUT/<variant>/seed_<s>/, the runs (OUT: outputs/parity_<model>). Running
the command again resumes: finished runs are not trained again, scored
epochs not scored again."""
import datetime
import shlex
import sys
from pathlib import Path

import numpy as np

if not __package__:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.speed import REFERENCES, ROOT  # noqa: E402
from common import data, images, runs  # noqa: E402
from common.arguments import Parser, positive_int, seed  # noqa: E402
from common.atomic import atomic_write, check_directory  # noqa: E402
from common.errors import UsageError  # noqa: E402
from common.evaluation import spread  # noqa: E402
from common.evaluation.metrics import LABELS, MODE_METRICS  # noqa: E402
from common.experiments import sweep  # noqa: E402
from common.rundir import RunDir  # noqa: E402

METRICS = ("fd", "kid", "classifier_score", "coverage", "label_kl", "precision", "recall")
MODEL_METRICS = {"conv_vae": ("test_elbo",)}  # the model's own evaluation, per epoch
# the verdict's metrics: the distance, the diversity, the modes on Stacked
# MNIST, the model's own bound (KID and the label KL move with FD and
# coverage; the tables show them all)
JUDGED = ("fd", "classifier_score", "coverage", "recall", "modes", "mode_kl", "test_elbo")
REFERENCE = "reference"


def make_parser():
    parser = Parser(prog="python bench/parity.py", description=__doc__)
    parser.add_argument("--model", choices=tuple(REFERENCES), default="dcgan",
                        help="the report's model whose tutorial loop to match")
    parser.add_argument("--epochs", type=positive_int, default=5, help="epochs per run")
    parser.add_argument("--seeds", type=seed, nargs="+", default=[1, 2, 3],
                        help="one run per seed and variant")
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "bf16", "fp16"),
                        default=None,
                        help="ours in each of these (default: each the speed defaults pick on "
                             "some device type for this model)")
    parser.add_argument("--dataset", choices=data.DATASETS, default="mnist",
                        help="the data set both loops train on (stacked_mnist: also scored "
                             "by the modes hit and the mode KL)")
    parser.add_argument("--images", type=positive_int, default=None,
                        help="train on the first N training images (default: all)")
    parser.add_argument("--samples", type=positive_int, default=None,
                        help="generated images scored per epoch (default: 10,000; on "
                             "Stacked MNIST 26,000)")
    parser.add_argument("--data-dir", default=None,
                        help="MNIST IDX files (default: tensorflow-datasets)")
    parser.add_argument("--out", default=None, help="default: outputs/parity_<model>")
    sweep.add_options(parser)
    return parser


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    out = Path(args.out or f"outputs/parity_{args.model}").resolve()
    try:
        check_directory(out, "--out")
        sweep.check_options(args)
        script = runs.script_for(args.model)
    except UsageError as error:
        parser.error(error)
    precisions = args.precisions or default_precisions(script, args.model)
    variants = [REFERENCE] + [f"ours_{precision}" for precision in precisions]
    # the tutorial's loop cannot resume (ours can, and says when it has
    # nothing to train): a reference that has not exported its last epoch
    # trains again from its first, its old scores gone
    todo = [run for run in commands(args, script, precisions, out)
            if not (run.name.startswith(REFERENCE)
                    and RunDir(out / run.name).samples_path(args.epochs).exists())]
    for run in todo:
        if run.name.startswith(REFERENCE):
            (out / run.name / "metrics.csv").unlink(missing_ok=True)
    if not sweep.run(parser, todo, args):
        return 1
    score_references(args, out)
    write_report(args, out, variants)
    print(f"Wrote {out / 'parity.md'}")
    return 0


def default_precisions(script, model):
    """The --precision values our defaults choose for `model` on some device
    type (common/devices.py)."""
    from common import devices

    fp32 = model in script.make_parser().fp32_models
    return sorted({devices.speed_defaults(kind, fp32=fp32)["precision"]
                   for kind in devices.SPEED_DEFAULTS})


def run_dir(out, variant, seed_):
    return out / variant / f"seed_{seed_}"


def commands(args, script, precisions, out):
    """Every run of the experiment, as sweep.Runs."""
    source = ["--dataset", args.dataset, *(
        ["--data-dir", str(Path(args.data_dir).resolve())] if args.data_dir else [])]
    size = ["--images", str(args.images)] if args.images else []
    count = ["--sample-count", str(args.samples)] if args.samples else []
    for seed_ in args.seeds:
        yield sweep.Run(f"{REFERENCE}/seed_{seed_}", (
            sys.executable, str(REFERENCES[args.model]), "--epochs", str(args.epochs),
            "--seed", str(seed_), "--samples", str(run_dir(out, REFERENCE, seed_)),
            *count, *source, *size))
        for precision in precisions:
            variant = f"ours_{precision}"
            yield sweep.training_run(f"{variant}/seed_{seed_}", script, args.model, [
                "--epochs", str(args.epochs), "--precision", precision, "--metrics-every", "1",
                *(["--metrics-samples", str(args.samples)] if args.samples else []),
                "--classifier-dir", str(out / "classifier"), *source,
                *(["--train-size", str(args.images)] if args.images else [])],
                seed_, run_dir(out, variant, seed_))


def score_references(args, out):
    """metrics.csv for each reference run: every exported epoch scored as
    ours are, by the same classifier."""
    from common import quiet

    quiet.start_tensorflow()
    from common.evaluation import classifier
    from common.evaluation.evaluator import Evaluator

    evaluator = None
    for seed_ in args.seeds:
        run = RunDir(run_dir(out, REFERENCE, seed_))
        rows = run.read_table("metrics")
        scored = {row["epoch"] for row in rows}
        for epoch in range(1, args.epochs + 1):
            if epoch in scored:
                continue
            if evaluator is None:
                everything = data.load(args.dataset, args.data_dir)
                evaluator = Evaluator(classifier.load_or_train(everything, out / "classifier"),
                                      everything, args.samples)
            with np.load(run.samples_path(epoch)) as archive:
                samples = archive["images"]
            rows.append({"epoch": epoch, "seconds": 0.0, "samples": evaluator.n,
                         **evaluator.compare(samples)})
            run.write_table("metrics", rows, evaluator.columns)
            print(f"Scored {run.path} at epoch {epoch}", flush=True)


def train_seconds(history):
    """Each epoch's seconds of train steps (ours record them apart from the
    whole epoch; the reference times only its steps)."""
    return [row.get("train_seconds", row["seconds"]) for row in history]


def table(out, variants, args, pick):
    """{variant: {metric: Spread over seeds}} of every run at the epoch
    pick(history) chooses, with that "epoch" and the median "seconds" of an
    epoch's train steps."""
    model_metrics = MODEL_METRICS.get(args.model, ())
    sampled = (*METRICS, *(MODE_METRICS if args.dataset in data.STACKED else ()))
    result = {}
    for variant in variants:
        values = {name: [] for name in (*sampled, *model_metrics, "epoch", "seconds")}
        for seed_ in args.seeds:
            run = RunDir(run_dir(out, variant, seed_))
            history = run.read_table("history")
            epoch = pick(history)
            scored = {row["epoch"]: row for row in run.read_table("metrics")}[epoch]
            trained = {row["epoch"]: row for row in history}[epoch]
            for name in sampled:
                values[name].append(scored[name])
            for name in model_metrics:
                values[name].append(trained[name])
            values["epoch"].append(epoch)
            values["seconds"].append(float(np.median(train_seconds(history))))
        result[variant] = {name: spread.Spread(v) for name, v in values.items()}
    return result


def write_report(args, out, variants):
    last = table(out, variants, args, lambda history: args.epochs)
    metrics = [name for name in next(iter(last.values())) if name not in ("epoch", "seconds")]
    budget = min(measured["seconds"].mean for measured in last.values()) * args.epochs

    def within(history):  # the last epoch whose train steps took at most `budget` s (or the first)
        elapsed = np.cumsum(train_seconds(history))
        return history[max(int(np.searchsorted(elapsed, budget * 1.0001, side="right")) - 1,
                           0)]["epoch"]

    timed = table(out, variants, args, within)
    scored = RunDir(run_dir(out, REFERENCE, args.seeds[0])).read_table("metrics")
    samples = int(scored[0]["samples"])  # the evaluator's count (csv reads it as a float)
    lines = [
        f"# Parity: {args.model}, the tutorial's loop and ours", "",
        f"Written by `python bench/parity.py {shlex.join(_given(args))}` on "
        f"{datetime.date.today().isoformat()}. {len(args.seeds)} seeds "
        f"({', '.join(map(str, args.seeds))}) per variant, {args.epochs} epochs on "
        f"{'the first ' + str(args.images) if args.images else 'all'} training images of "
        f"{args.dataset}; every epoch scored on {samples} samples against as many test images "
        f"(common.evaluation). `{REFERENCE}` is {REFERENCES[args.model].relative_to(ROOT)}; "
        f"`ours_<precision>` is the project's loop with its other defaults.", "",
        spread.RULE, "",
        *_section(f"At epoch {args.epochs}", last, variants, metrics, args.seeds),
        *_section(f"At equal training time: each run at its last epoch within {budget:.0f} s "
                  f"of train steps (the fastest variant's {args.epochs} epochs)", timed,
                  variants, metrics, None)]
    plot_curves(out, variants, args.seeds, metrics, out / "curves.png")
    plot_pictures(out, variants, args.seeds, (1, args.epochs), out / "pictures.png")
    lines += ["## Per epoch (mean, and the range over seeds)", "", "![curves](curves.png)",
              "", f"## Pictures at epochs 1 and {args.epochs}", "",
              "A column per variant, a row per epoch and seed. The reference's picture is the "
              "tutorial's 4x4 grid of its fixed noise; ours is the model's own.", "",
              "![pictures](pictures.png)", ""]
    with atomic_write(out / "parity.md", "w") as f:
        f.write("\n".join(lines))


def _section(title, measured, variants, metrics, seeds):
    """A report section: mean ± standard deviation per variant, every
    seed's value (when `seeds`), and each of ours against the reference."""
    labels = [LABELS[m] for m in metrics]
    lines = [f"## {title}", "", *spread.markdown(
        ["variant", "epochs", *labels, "train s/epoch"],
        [[variant, "/".join(str(e) for e in sorted(set(m["epoch"].values))),
          *[m[n].text(spread.DIGITS.get(n, 3)) for n in metrics], m["seconds"].text()]
         for variant, m in measured.items()])]
    if seeds:
        lines += ["", "Every seed's value:", "", *spread.markdown(
            ["variant", "seed", *labels],
            [[variant, seed_, *[f"{m[n].values[i]:.4g}" for n in metrics]]
             for variant, m in measured.items() for i, seed_ in enumerate(seeds)])]
    lines += ["", "Verdict:", ""]
    for variant in variants[1:]:
        for metric in (m for m in metrics if m in JUDGED):
            lines += [f"- {sentence}" for sentence in spread.ranking(
                {variant: measured[variant][metric], REFERENCE: measured[REFERENCE][metric]},
                metric, LABELS[metric])]
    return lines + [""]


def _given(args):
    """The command's arguments, to print beside its report."""
    given = ["--model", args.model, "--epochs", str(args.epochs),
             "--seeds", *map(str, args.seeds)]
    if args.dataset != "mnist":
        given += ["--dataset", args.dataset]
    if args.precisions:
        given += ["--precisions", *args.precisions]
    if args.images:
        given += ["--images", str(args.images)]
    if args.samples:
        given += ["--samples", str(args.samples)]
    return given


def plot_curves(out, variants, seeds, metrics, path):
    """Each metric per epoch: per variant the mean over seeds, and their range."""
    def series(variant, seed_, metric):
        table = "history" if metric == "test_elbo" else "metrics"
        return {row["epoch"]: row[metric]
                for row in RunDir(run_dir(out, variant, seed_)).read_table(table)}

    images.plot_bands({spread.title(metric): [
        ([series(variant, seed_, metric) for seed_ in seeds], variant) for variant in variants]
        for metric in metrics}, path)


def plot_pictures(out, variants, seeds, epochs, path):
    """Each run's picture at `epochs` (the reference exports its own there
    too): a column per variant, a row per epoch and seed."""
    images.plot_pictures([[(RunDir(run_dir(out, variant, seed_)).image_path(epoch),
                            f"{variant}, seed {seed_}, epoch {epoch}") for variant in variants]
                          for epoch in epochs for seed_ in seeds], path, size=2.6)


if __name__ == "__main__":
    sys.exit(main())
