"""Sample quality and likelihood of a trained run, in numbers.

    python -m common.evaluation.evaluate RUN_DIR [--epoch N] [--samples 10000] [--iw-samples 1000]
                                         [--iw-rounds 5]

scores the run's latest checkpoint (or, with --epoch, that of a kept epoch):
N generated images (as 8-bit images, the way an export holds them) against
the N first test images in the evaluation classifier's feature space
(Frechet distance, kernel distance, classifier score, class coverage,
precision and recall; on Stacked MNIST also the modes hit and the mode KL),
each beside its real-vs-real floor (N training images against the same test
images), and, for a VAE, the test-set ELBO and the importance-weighted
bound on the negative log-likelihood (its mean and spread over --iw-rounds
independent draws, as pythae reports it). It prints a table and writes it to
RUN_DIR/evaluation.json (evaluation_at_epoch_N.json); the training scripts
use the same Evaluator for metrics.csv."""
import json
import sys

import numpy as np

from common import data, runs
from common.arguments import Parser, non_negative_int, positive_int
from common.atomic import atomic_write
from common.evaluation.evaluator import SAMPLE_SEED, Evaluator, sample_count
from common.evaluation.metrics import LABELS
from common.images import to_uint8
from common.progress import Progress

# The likelihood bound's default (K importance samples, test images; None:
# all) per device type: the full bound on a GPU, a minute's on a CPU
# (docs/evaluation.md#one-run-evaluate).
IW_BUDGET = {"GPU": (1000, None), "CPU": (1000, 500)}
# What evaluate says of a VAE trained and scored on grey levels (--binarize
# none, as the reports' PyTorch VAEs), in place of its likelihood
NO_LIKELIHOOD = ("no test ELBO or NLL bound: on grey levels the Bernoulli decoder's loss bounds "
                 "no likelihood (--binarize none; history.csv's test_elbo is minus the reports' "
                 "loss)")
FORMAT = 7  # of evaluation.json: a stored evaluation of another format is computed again


def likelihood_budget(iw_samples, iw_images, test_images):
    """The likelihood bound's K and test images: the options given, else the
    device type's default (IW_BUDGET), at most the test set."""
    from common import devices

    default = IW_BUDGET["GPU" if devices.device_type() == "GPU" else "CPU"]
    samples = default[0] if iw_samples is None else iw_samples
    return samples, min(iw_images or default[1] or test_images, test_images)


def evaluate_run(path, *, epoch=None, samples=None, iw_samples=None, iw_images=None,
                 iw_rounds=1, data_dir=None, classifier_dir=None):
    """Score the run at `path`, at its latest checkpoint or at the end of
    `epoch`; the result (also written to RunDir.evaluation_path) is reused
    while the checkpoint and settings are the same. The likelihood bound's
    budget is the device type's unless given (likelihood_budget); it is
    computed `iw_rounds` times, from seeds 0, 1, ...: its mean is nll_iw,
    its population standard deviation nll_iw_std."""
    loaded = runs.open_run(path, epoch, data_dir=data_dir)  # TensorFlow starts here
    from common.evaluation import classifier

    iw_samples, iw_images = likelihood_budget(iw_samples, iw_images,
                                              len(loaded.data.test_images))
    trained = classifier.load_or_train(loaded.data, classifier.cache_dir(path, classifier_dir))
    settings = {"format": FORMAT, "epoch": loaded.epoch,
                "samples": sample_count(loaded.data, samples),
                "iw_samples": iw_samples, "iw_images": iw_images, "iw_rounds": iw_rounds,
                "classifier": trained.info["key"]}
    cache = loaded.run.evaluation_path(epoch)
    if cache.exists():
        stored = json.loads(cache.read_text())
        if stored.get("settings") == settings:
            return stored
    step = Progress(f"Scoring {loaded.run.path} at epoch {loaded.epoch}: {settings['samples']} "
                    f"samples and as many real images, in the classifier's feature space", 3)
    evaluator = Evaluator(trained, loaded.data, samples)  # the test images' features: not cached
    generated = to_uint8(loaded.model.sample(evaluator.n, SAMPLE_SEED))
    step.update(1)
    asked = data.conditional_labels(evaluator.n) if loaded.model.conditional else None
    args = loaded.config["args"]
    result = {"model": loaded.config["model"], "settings": settings,
              "test_data": data.test_data(args),
              "grey_vae": "binarize" in args and not data.has_likelihood(args["binarize"],
                                                                         args["dataset"]),
              "parameters": loaded.model.parameter_count(),
              "metrics": {"samples": evaluator.n, **evaluator.compare(generated)},
              "labels": evaluator.labels(generated, asked)}
    step.update(2)
    result.update({"floor": evaluator.floor(loaded.data),
                   "real_modes": evaluator.real_modes(),
                   "real_classifier_score": evaluator.real_classifier_score(),
                   "classifier_accuracy": trained.info["test_accuracy"]})
    step.finish()
    result["likelihood"] = {}
    if iw_samples and loaded.model.has_likelihood:
        step = Progress(f"Likelihood bound of {loaded.run.path}: K = {iw_samples} importance "
                        f"samples for each of {iw_images} test images, {iw_rounds} "
                        f"round{'s' * (iw_rounds > 1)}", iw_images * iw_rounds)
        rounds = [loaded.model.likelihood(iw_images, iw_samples, seed=r, progress=lambda done,
                                          r=r: step.update(r * iw_images + done))
                  for r in range(iw_rounds)]
        step.finish()
        bounds = [bound["nll_iw"] for bound in rounds]
        result["likelihood"] = {"test_elbo": rounds[0]["test_elbo"],
                                "nll_iw": float(np.mean(bounds)), "nll_iw_std": float(np.std(bounds)),
                                "nll_iw_rounds": bounds}
    with atomic_write(cache, "w") as f:
        json.dump(result, f, indent=2)
    return result


def table(result):
    """The evaluation as aligned text lines."""
    s = result["settings"]
    lines = [f"{result['model']} at epoch {s['epoch']}: {s['samples']} samples against "
             f"{s['samples']} test images (classifier accuracy "
             f"{result['classifier_accuracy']:.4f}, real test images' classifier score "
             f"{result['real_classifier_score']:.2f})", f"test data: {result['test_data']}"]
    if result["real_modes"]:
        lines.append(f"the {s['samples']} test images themselves: "
                     f"{result['real_modes']['modes']} modes, mode KL "
                     f"{result['real_modes']['mode_kl']:.4f}")
    lines.append(f"{'metric':28} {'model':>12} {'real floor':>12}")
    for name in (name for name in result["metrics"] if name != "samples"):
        lines.append(f"{LABELS[name]:28} {result['metrics'][name]:12.4g} "
                     f"{result['floor'][name]:12.4g}")
    labels = result["labels"]
    lines.append(f"{'classifier confidence':28} {labels['confidence']:12.4g}")
    if "conditional_accuracy" in labels:
        lines.append(f"{'generates the digit asked':28} {labels['conditional_accuracy']:12.4g}")
    lines.append("predicted digits (%):       "
                 + " ".join(f"{d}:{100 * share:.0f}" for d, share in
                            enumerate(labels["label_histogram"])))
    likelihood = result["likelihood"]
    if result["grey_vae"]:
        lines.append(NO_LIKELIHOOD)
    if likelihood:
        lines.append(f"{'test-set ELBO (nats)':28} {likelihood['test_elbo']:12.2f}")
        spread = (f" ± {likelihood['nll_iw_std']:.2f} (std of {s['iw_rounds']} rounds)"
                  if s["iw_rounds"] > 1 else "")
        lines.append(f"{'NLL, IW bound (nats)':28} {likelihood['nll_iw']:12.2f}{spread}   "
                     f"(K = {s['iw_samples']}, {s['iw_images']} test images)")
    return lines


def add_options(parser):
    """The evaluation's settings, shared with common.evaluation.compare."""
    add = parser.add_argument
    add("--epoch", type=positive_int, default=None,
        help="score the checkpoint at the end of this epoch, one the run kept (--keep-epochs, "
             "or one of its last 3) (default: the latest)")
    add("--samples", type=positive_int, default=None,
        help="generated images to score, at most the test set's size (default: 10,000; on "
             "stacked_mnist 26,000)")
    add("--iw-samples", type=non_negative_int, default=None,
        help="importance samples K per test image for a VAE's likelihood bound (0: skip it; "
             f"default: {IW_BUDGET['GPU'][0]} on a GPU, {IW_BUDGET['CPU'][0]} on a CPU; on "
             "all 10,000 test images K = 1000 takes seconds on a GPU, about 15 minutes on a "
             "2-core CPU)")
    add("--iw-images", type=positive_int, default=None,
        help="test images for the likelihood bound (default: all on a GPU, the first "
             f"{IW_BUDGET['CPU'][1]} on a CPU)")
    add("--iw-rounds", type=positive_int, default=1,
        help="compute the likelihood bound this many times, from independent draws, and give "
             "their mean and standard deviation (pythae's protocol: 5 rounds of K = 200)")
    add("--data-dir", default=None,
        help="read the data from here instead of where the run read it")
    add("--classifier-dir", default=None,
        help="where the evaluation classifier is cached (default: 'classifier' beside the "
             "run directory)")


def options(args):
    """The keyword arguments of evaluate_run from parsed `add_options`."""
    return {name: getattr(args, name) for name in ("epoch", "samples", "iw_samples", "iw_images",
                                                   "iw_rounds", "data_dir", "classifier_dir")}


def make_parser():
    parser = Parser(prog="python -m common.evaluation.evaluate", description=__doc__)
    parser.add_argument("run_dir", help="a run directory written by a train.py")
    add_options(parser)
    return parser


def main(argv=None):
    return runs.command(make_parser(), argv, evaluate)


def evaluate(args):
    """The command (open_run rejects a bad RUN_DIR or --epoch first)."""
    print("\n".join(table(evaluate_run(args.run_dir, **options(args)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
