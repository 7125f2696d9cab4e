"""The first command to run where a GPU is at hand (docs/speed.md, "On a
GPU"): about 8 minutes on one GPU, one table of three parts.

    python bench/gpu_check.py --data-dir DIR    # MNIST's IDX files (default: tensorflow-datasets)

1. Every model's short run with its defaults, --jit, --precision bf16,
   --precision fp16 and --strategy mirrored: exit status and last line.
2. The speed defaults' choice, for the DCGAN and the conv VAE on the whole
   training set: fp32, bf16 and fp16, then XLA and 100 steps a call on the
   fastest of them, seconds per epoch beside the tutorial's loop (the runs
   of python bench/speed.py).
3. Resume: two epochs straight against one, then resumed to two, with and
   without --deterministic: whether the histories agree bit for bit.

--quick does the same on 256 images with the conv VAE alone in parts 1
and 2 (how a test runs it on the CPU)."""
import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

if not __package__:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import speed  # noqa: E402
from common import runs  # noqa: E402
from common.arguments import Parser  # noqa: E402
from common.rundir import RunDir  # noqa: E402

# (train.py, options): every GAN, WGAN-GP's critic steps among them, and every VAE
MODELS = [("gan", ["--model", "dcgan"]), ("gan", ["--model", "dcgan", "--loss", "wgan-gp"]),
          ("gan", ["--model", "mlp_gan"]), ("gan", ["--model", "infogan"]),
          ("gan", ["--model", "vaegan"]), ("vae", ["--model", "conv_vae"]),
          ("vae", ["--model", "mlp_vae"]), ("vae", ["--model", "cvae"])]
VARIANTS = ["", "--jit", "--precision bf16", "--precision fp16", "--strategy mirrored"]
SPEED_MODELS = ("dcgan", "conv_vae")
MEASURED = ["train_seconds", "seconds", "images_per_sec", "host_mb", "device_mb"]


def make_parser():
    parser = Parser(prog="python bench/gpu_check.py", description=__doc__)
    parser.add_argument("--data-dir", default=None, help="MNIST's IDX files")
    parser.add_argument("--quick", action="store_true",
                        help="256 images; the conv VAE alone in parts 1 and 2")
    parser.add_argument("--models", default=None, help=argparse.SUPPRESS)  # a part-1 child
    parser.add_argument("--resume", default=None, help=argparse.SUPPRESS)  # a part-3 child
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)
    if args.models is not None:
        return short_runs(args, json.loads(args.models))
    if args.resume is not None:
        return resume(args, args.resume)
    images = 256 if args.quick else 60_000
    models = [("vae", ["--model", "conv_vae"])] if args.quick else MODELS
    speed_models = ("conv_vae",) if args.quick else SPEED_MODELS
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as scratch:
        table = ["| part | run | result |", "|---|---|---|"]
        for variant in VARIANTS:
            for (script, options), (status, line) in zip(models, child(
                    args, "--models", json.dumps([variant, scratch, models]))):
                table.append(f"| 1 | {' '.join(options[1:])} {variant} | exit {status}: "
                             f"{line.replace('|', '/')} |")
        for model in speed_models:
            with contextlib.redirect_stdout(sys.stderr):  # the runs' progress
                rows = speed_rows(args, model, images)
            for row in rows:
                table.append(f"| 2 | {model} {row['loop']} | {row['seconds']:.3f} s an epoch, "
                             f"{row['ratio']} the tutorial's speed |")
        for deterministic in ("", "--deterministic"):
            (result,) = child(args, f"--resume={deterministic}")
            table.append(f"| 3 | dcgan resumed after epoch 1 {deterministic} | {result} |")
    print("\n".join(table))
    return 0


def child(args, *options):
    """Run this script again, in a fresh process, with `options`; its last
    line of stdout, a JSON list."""
    command = [sys.executable, __file__, *options] + (
        ["--data-dir", args.data_dir] if args.data_dir else []) + (
        ["--quick"] if args.quick else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def short_runs(args, plan):
    """Part 1, in this process: each model of `plan` one short epoch with
    `variant`; prints [[exit status, last line], ...]."""
    from gan_keras import train as gan_train
    from vae_keras import train as vae_train

    variant, scratch, models = plan
    results = []
    for i, (script, options) in enumerate(models):
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            try:
                status = {"gan": gan_train, "vae": vae_train}[script].main(
                    [*options, *variant.split(), *_data(args), "--epochs", "1",
                     "--train-size", "256" if args.quick else "2048", "--metrics-every", "0",
                     "--fresh", "--seed", "1", "--out", f"{scratch}/short{i}{variant}"])
            except Exception as error:  # a crash is a finding here, not the end of the check
                status = f"crashed: {type(error).__name__}: {str(error).splitlines()[0]}"
        lines = output.getvalue().strip().splitlines()
        results.append([status, lines[-1] if lines else ""])
    print(json.dumps(results))
    return 0


def speed_rows(args, model, images):
    """Part 2: the reference and our loop in each precision, then XLA and
    100 steps a call on the fastest; bench/speed.py's summary rows."""
    measure = argparse.Namespace(model=model, images=images, epochs=2, data_dir=args.data_dir,
                                 reference=speed.REFERENCES[model], repeats=1, growth=False)
    script = runs.script_for(model)
    results = speed.measure(measure, script, [f"--precision {p} --no-jit --steps-per-call 25"
                                              for p in ("fp32", "bf16", "fp16")])
    rows = speed.summary(results, images)
    fastest = min(rows[1:], key=lambda row: row["seconds"])["loop"].removeprefix("ours ")
    measure.reference = None
    more = speed.summary(speed.measure(measure, script, [
        fastest.replace("--no-jit", "--jit"),
        fastest.replace("--steps-per-call 25", "--steps-per-call 100")]), images)
    reference = rows[0]["seconds"]
    for row in more:
        row["ratio"] = f"{reference / row['seconds']:.2f}x"
    return rows + more


def resume(args, deterministic):
    """Part 3, in this process (--deterministic is the process's): the
    DCGAN two epochs straight, and one epoch then resumed to two; prints
    ["bit for bit" or the largest relative gap]."""
    from gan_keras import train as gan_train

    common = ["--model", "dcgan", *_data(args), "--train-size", "256" if args.quick else "4096",
              "--metrics-every", "0", "--seed", "1", *deterministic.split()]
    with tempfile.TemporaryDirectory(prefix="gpu_check_resume_") as scratch:
        with contextlib.redirect_stdout(io.StringIO()):
            for out, epochs in (("straight", 2), ("resumed", 1), ("resumed", 2)):
                if gan_train.main([*common, "--epochs", str(epochs), "--out", f"{scratch}/{out}"]):
                    sys.exit(f"the {out} run failed")
        histories = [RunDir(f"{scratch}/{out}").read_table("history")
                     for out in ("straight", "resumed")]
    gaps = [abs(float(a[k]) - float(b[k])) / max(abs(float(a[k])), 1e-12)
            for a, b in zip(*histories) for k in a if k not in MEASURED and k != "epoch"]
    print(json.dumps(["bit for bit" if not any(gaps)
                      else f"largest relative gap {max(gaps):.2g}"]))
    return 0


def _data(args):
    return ["--data-dir", args.data_dir] if args.data_dir else []


if __name__ == "__main__":
    sys.exit(main())
