"""Speed and memory of the training loop, side by side with a reference loop
(bench/ref_dcgan.py and bench/ref_cvae.py, the TensorFlow tutorials' plain
loops) on the same images in the same session. A script that prints
figures, not a test:

    python bench/speed.py --model dcgan --images 6144 --epochs 3
    python bench/speed.py --suite     # every row of the speed tables, into bench.md

Each run is a fresh process: the reference as `REF --images IMAGES --epochs
EPOCHS [--data-dir DIR]`, ours as `train.py --model M --train-size IMAGES --epochs EPOCHS` into a
temporary directory, once per --variant (train.py options, e.g. "--precision
bf16"; the default variant is the device type's defaults). Both print one
line per epoch, `epoch N SECONDS s`: for ours the train steps alone, as the
reference times them, then the whole epoch (pictures, evaluation, history,
checkpoint: everything from one epoch's line to the next). The summary
gives the median after the first (warm-up) epoch, images per second, the
process's peak host memory, the device's peak memory, and the host memory
of the first and last epochs (a long run's must stay flat).

--growth measures a long run instead, no reference: whether what an epoch
does besides its train steps costs more as epochs accumulate, and the disk
a run fills per epoch (docs/reliability.md has the figures):

    python bench/speed.py --growth --model dcgan --images 64 --epochs 500 \
        --variant "--batch-size 64 --metrics-every 50"
"""
import argparse
import csv
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

if not __package__:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import runs  # noqa: E402
from common.arguments import Parser, positive_int  # noqa: E402
from common.atomic import atomic_write  # noqa: E402
from common.errors import UsageError  # noqa: E402
from common.rundir import RunDir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The tutorial loop of each model that has one; any other --reference may be given.
REFERENCES = {"dcgan": ROOT / "bench" / "ref_dcgan.py", "conv_vae": ROOT / "bench" / "ref_cvae.py"}


def make_parser():
    parser = Parser(prog="python bench/speed.py", description=__doc__)
    parser.add_argument("--model", default="dcgan", help="a --model of either train.py")
    parser.add_argument("--images", type=positive_int, default=6144,
                        help="train on the first IMAGES training images")
    parser.add_argument("--epochs", type=positive_int, default=3, help="epochs per run")
    parser.add_argument("--data-dir", default=None,
                        help="MNIST IDX files (.gz or not), for both loops (default: "
                             "tensorflow-datasets)")
    parser.add_argument("--reference", default=None,
                        help="the reference loop, a script taking --data-dir, --images and "
                             "--epochs (default: the model's tutorial loop in bench/, if any; "
                             "'none' for none)")
    parser.add_argument("--variant", action="append", default=None,
                        help="train.py options of one run of ours, in quotes; repeat to "
                             "compare several (default: one run with the defaults)")
    parser.add_argument("--repeats", type=positive_int, default=1,
                        help="run the reference and every variant this many times, in turn "
                             "(the machines are noisy: interleaving evens it out)")
    parser.add_argument("--growth", action="store_true",
                        help="no reference: the seconds outside the train steps at epochs "
                             "10-19 against the last ten, and the disk used per epoch "
                             "(at least 40 --epochs)")
    parser.add_argument("--suite", action="store_true",
                        help="measure every row of the speed tables instead: for the DCGAN "
                             "and the conv VAE, the reference, our defaults and each option of "
                             "the fast path turned the other way, on as many images as "
                             "SUITE_IMAGES gives this device type (--model, --images, "
                             "--variant and --reference are ignored); writes bench.md to --out")
    parser.add_argument("--out", default="outputs/bench",
                        help="where --suite writes bench.md")
    return parser


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.suite:
        return suite(args)
    if args.growth and args.epochs < 40:
        parser.error("--growth compares epochs 10-19 with the last ten: give --epochs 40 or more")
    if args.growth:
        args.reference = None
    elif args.reference is None:
        args.reference = REFERENCES.get(args.model)
    elif args.reference == "none":
        args.reference = None
    if args.reference and not Path(args.reference).is_file():
        parser.error(f"--reference {args.reference}: no such file")
    try:
        script = runs.script_for(args.model)
    except UsageError as error:
        parser.error(str(error))
    results = measure(args, script, args.variant or [""])
    if not args.growth:
        print(f"\n{args.images} images, {args.epochs} epochs, median after the first epoch:")
        print_table(summary(results, args.images))
    return 0


def measure(args, script, variants):
    """{loop name: [one result of run() per repeat]}: the reference (if
    any) and each variant of ours, interleaved over the repeats."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_") as scratch:
        for repeat in range(args.repeats):
            if args.reference:
                command = [sys.executable, str(args.reference), "--images", str(args.images),
                           "--epochs", str(args.epochs)]
                if args.data_dir:
                    command += ["--data-dir", args.data_dir]
                results.setdefault("reference", []).append(run("reference", command))
            for i, variant in enumerate(variants):
                name = f"ours {variant}".strip() if variant else "ours, defaults"
                out = Path(scratch) / f"run{i}_{repeat}"
                results.setdefault(name, []).append(
                    run(name, ours(args, script, variant, out), out))
                if args.growth:
                    growth(results[name][-1], out)
    return results


# The suite's training images per device type and model: 3 epochs of each
# loop fit in about 8 minutes on one GPU (the whole set) and in about 10 on
# the 2-core development CPU (the sizes of docs/speed.md's CPU tables).
SUITE_IMAGES = {"GPU": {"dcgan": 60_000, "conv_vae": 60_000},
                "CPU": {"dcgan": 6144, "conv_vae": 20_000}}


def suite(args):
    """Every row of the speed tables on this machine, into OUT/bench.md."""
    from common import devices, quiet

    quiet.start_tensorflow()
    kind = devices.device_type()
    sizes = SUITE_IMAGES["GPU" if kind == "GPU" else "CPU"]
    began = time.perf_counter()
    lines = [f"# Speed on {devices.describe()}", "",
             f"Written by `python bench/speed.py --suite` on "
             f"{datetime.date.today().isoformat()} ({kind}; TensorFlow "
             f"{metadata.version('tensorflow')}, Keras {metadata.version('keras')}, Python "
             f"{platform.python_version()}). {args.epochs} epochs of each loop in a fresh "
             f"process, one after another; s/epoch is the median of the train steps' seconds "
             f"after the first epoch, 'vs reference' the reference's over ours (above 1: "
             f"ours is faster), 'outside' the share of our whole epoch spent beyond the train "
             f"steps (picture, history, checkpoint). The machines are noisy: only ratios "
             f"measured in one session mean much.", ""]
    for model in ("dcgan", "conv_vae"):
        script = runs.script_for(model)
        defaults = devices.speed_defaults(fp32=model in script.make_parser().fp32_models)
        measured = argparse.Namespace(**{**vars(args), "model": model,
                                         "images": sizes[model],
                                         "reference": REFERENCES[model]})
        rows = summary(measure(measured, script, ["", *toggles(defaults)]), sizes[model])
        lines += [f"## {model}, {sizes[model]:,} images, batch "
                  f"{script.make_parser().get_default('batch_size')}", "",
                  "Our defaults here: " + ", ".join(f"{k} {v}" for k, v in defaults.items()),
                  "", "| loop | s/epoch | images/s | vs reference | outside | peak host |"
                  " device |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {row['loop']} | {row['seconds']:.3f} | {row['images_per_sec']:.0f} | "
                  f"{row['ratio']} | {row['outside']} | {row['peak']:.0f} MB | "
                  f"{row['device']} |" for row in rows]
        lines.append("")
    lines.append(f"The suite took {(time.perf_counter() - began) / 60:.1f} minutes.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "bench.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"Wrote {out / 'bench.md'}")
    return 0


def toggles(defaults):
    """One variant per option of the fast path: that option turned from its
    default to the other way (bf16 <-> fp32, the on-device feed <-> tf.data,
    25 <-> 1 steps a call, XLA off <-> on)."""
    return [f"--precision {'bf16' if defaults['precision'] == 'fp32' else 'fp32'}",
            "--no-data-on-device" if defaults["data_on_device"] else "--data-on-device",
            f"--steps-per-call {1 if defaults['steps_per_call'] != 1 else 25}",
            "--no-jit" if defaults["jit"] else "--jit"]


def ours(args, script, variant, out):
    """The command line of one run of ours: `script`, the train.py module
    that builds the model (common.runs.script_for)."""
    command = [sys.executable, script.__file__, "--model", args.model,
               "--train-size", str(args.images), "--epochs", str(args.epochs),
               "--out", str(out), "--fresh", "--metrics-every", "0", "--seed", "1",
               # on the one device the reference uses, unless a variant says otherwise
               "--strategy", "none"]
    # a model's own evaluation (the VAEs' test ELBO) at the last epoch only:
    # the reference's is outside its timing too
    evaluation = ["--eval-every", str(args.epochs)]
    if not script.make_parser().parse_known_args(evaluation)[1]:
        command += evaluation
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    return command + shlex.split(variant)


def run(name, command, out=None):
    """Run one loop, echoing its epoch lines; {"train": [s per epoch],
    "whole": [...], "peak_host_mb", "host_mb": [...], "device_mb"}."""
    print(f"== {name}: {shlex.join(command)}", flush=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)
    result, began, lines = {"train": [], "whole": []}, time.perf_counter(), []
    for line in process.stdout:
        lines.append(line)
        now = time.perf_counter()
        if line.startswith("epoch "):  # the reference's own line
            result["train"].append(float(line.split()[2]))
            print(line, end="", flush=True)
        elif line.startswith("Time for epoch "):  # ours: the whole epoch ends here
            result["whole"].append(now - began)
        else:
            continue
        began = now
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit(f"{name} failed (exit {process.returncode}):\n" + "".join(lines[-20:]))
    result["peak_host_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    if out is not None:
        with open(out / "history.csv") as f:
            history = list(csv.DictReader(f))
        result["train"] = [float(row["train_seconds"]) for row in history]
        result["pictures"] = [float(row["seconds"]) - float(row["train_seconds"])
                              for row in history[:-1] or history]  # the last also evaluates
        result["host_mb"] = [float(row["host_mb"]) for row in history]
        if "device_mb" in history[0]:
            result["device_mb"] = max(float(row["device_mb"]) for row in history)
        for epoch, (train, whole) in enumerate(zip(result["train"], result["whole"]), 1):
            print(f"epoch {epoch} {train:.3f} s (whole epoch {whole:.3f} s)", flush=True)
    return result


def growth(result, out):
    """Print the seconds outside the train steps (everything from one
    epoch's line to the next but the steps: picture, history, TensorBoard,
    checkpoint) at epochs 10-19 and at the last ten but the last one
    (which also scores and draws the run's figures), the run's disk per
    epoch and at 2000 epochs, and the cost of rewriting history.csv whole
    at its size now and at 2000 rows."""
    outside = [whole - train for whole, train in zip(result["whole"], result["train"])]
    epochs = len(outside)
    early = statistics.median(outside[9:19])
    late = statistics.median(outside[-11:-1])
    print(f"\nseconds outside the train steps, median: epochs 10-19 {early:.4f} s, epochs "
          f"{epochs - 10}-{epochs - 1} {late:.4f} s ({100 * (late / early - 1):+.1f}%); by "
          f"tenths of the run: " + ", ".join(
              f"{statistics.median(outside[i * epochs // 10:(i + 1) * epochs // 10]):.4f}"
              for i in range(10)))
    sizes = {name: _disk(out / name) for name in ("images", "logs", "history.csv",
                                                 "metrics.csv", "checkpoints")}
    growing = sum(size for name, size in sizes.items() if name != "checkpoints")
    print("disk: " + ", ".join(f"{name} {size / 2**20:.2f} MB" for name, size in sizes.items())
          + " (checkpoints: the last 3, whatever the epochs)")
    print("disk per epoch: " + ", ".join(f"{name} {size / epochs / 2**10:.1f} KB"
                                           for name, size in sizes.items()
                                           if name != "checkpoints")
          + f"; {growing / epochs / 2**10:.1f} KB in all, {2000 * growing / epochs / 2**20:.0f} MB "
            f"at 2000 epochs, plus {sizes['checkpoints'] / 2**20:.0f} MB of checkpoints")
    rows = RunDir(out).read_table("history")
    columns = tuple(rows[0])
    with tempfile.TemporaryDirectory() as scratch:
        for count in (len(rows), 2000):
            table = [{**rows[i % len(rows)], "epoch": i + 1} for i in range(count)]
            began = time.perf_counter()
            for _ in range(20):
                RunDir(scratch).write_table("history", table, columns)
            print(f"history.csv rewritten whole at {count} rows: "
                  f"{(time.perf_counter() - began) / 20 * 1000:.1f} ms")


def _disk(path):
    """Bytes of a file, or of every file below a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def summary(results, images):
    """One row per loop: medians after the warm-up epoch over all repeats."""
    def after_warmup(loops, key):
        values = [s for r in loops for s in (r[key][1:] if len(r[key]) > 1 else r[key])]
        return statistics.median(values) if values else float("nan")

    reference = after_warmup(results["reference"], "train") if "reference" in results else None
    rows = []
    for name, loops in results.items():
        train = after_warmup(loops, "train")
        whole = after_warmup(loops, "whole") if loops[0]["whole"] else train
        device = max((r["device_mb"] for r in loops if "device_mb" in r), default=None)
        host = loops[-1].get("host_mb")
        rows.append({
            "loop": name, "seconds": train, "images_per_sec": images / train,
            "ratio": f"{reference / train:.2f}x" if reference else "-",
            "outside": f"{100 * (whole - train) / whole:.1f}%" if loops[0]["whole"] else "-",
            "pictures": (f"{100 * after_warmup(loops, 'pictures') / whole:.1f}%"
                         if loops[0]["whole"] else "-"),
            "peak": max(r["peak_host_mb"] for r in loops),
            "device": f"{device:.0f} MB" if device else "-",
            "growth": f"{host[0]:.0f}→{host[-1]:.0f} MB" if host else "-", "host": host})
    return rows


def print_table(rows):
    print(f"{'loop':<40} {'s/epoch':>8} {'images/s':>9} {'vs ref':>7} {'outside':>8} "
          f"{'pictures':>9} {'peak host':>10} {'device':>8} {'host first→last':>17}")
    for row in rows:
        print(f"{row['loop']:<40} {row['seconds']:>8.3f} {row['images_per_sec']:>9.0f} "
              f"{row['ratio']:>7} {row['outside']:>8} {row['pictures']:>9} "
              f"{row['peak']:>7.0f} MB {row['device']:>8} {row['growth']:>17}")
    for row in rows:
        host = row["host"]
        if host and len(host) >= 10:  # a long run: its memory, epoch by epoch
            marks = sorted({1, *range(len(host) // 6, len(host) + 1, len(host) // 6)})
            half = host[len(host) // 2:-1]  # the last epoch also evaluates
            print(f"{row['loop']}: host MB at epochs " + ", ".join(
                f"{epoch}: {host[epoch - 1]:.0f}" for epoch in marks)
                  + f"; over the second half {(half[-1] - half[0]) / len(half):+.2f} MB/epoch")
    print("vs ref: the reference's seconds over this loop's (above 1: faster); outside: the "
          "share of the whole epoch spent beyond the train steps (pictures, evaluation, "
          "history, checkpoint); pictures: the share spent making and writing the epoch's "
          "picture")


if __name__ == "__main__":
    sys.exit(main())
