"""What TensorFlow's remapper (the graph optimizer's fusion pass) is worth to
the GANs whose steps make it print "remapper failed ... LeakyReluGrad":
each model trained with the remapper on and off, in fresh processes, in
interleaved rounds, and the median seconds of an epoch's train steps after
the first epoch. A script that prints figures, not a test:

    python bench/remapper.py --data-dir DIR [--images 6144] [--epochs 3] [--repeats 3]

docs/speed.md, "The remapper's error line", has the figures."""
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.arguments import Parser, positive_int  # noqa: E402

# One training in this process, with the remapper as argv[1] says.
TRAIN = """
import sys
import tensorflow as tf
tf.config.optimizer.set_experimental_options({"remapping": sys.argv[1] == "on"})
from gan_keras import train
sys.exit(train.main(sys.argv[2:]))
"""


def make_parser():
    parser = Parser(prog="python bench/remapper.py", description=__doc__)
    parser.add_argument("--data-dir", default=None, help="MNIST IDX files (default: "
                                                         "tensorflow-datasets)")
    parser.add_argument("--models", nargs="+", default=["dcgan", "infogan"],
                        help="GAN --model names")
    parser.add_argument("--images", type=positive_int, default=6144)
    parser.add_argument("--epochs", type=positive_int, default=3)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--precision", default=None, help="train.py's --precision (default: "
                                                          "the device type's)")
    return parser


def epoch_seconds(model, remapper, args, out):
    """The train steps' seconds of each epoch after the first."""
    command = [sys.executable, "-c", TRAIN, remapper, "--model", model, "--out", str(out),
               "--train-size", str(args.images), "--epochs", str(args.epochs),
               "--metrics-every", "0", "--seed", "1"]
    command += ["--data-dir", args.data_dir] if args.data_dir else []
    command += ["--precision", args.precision] if args.precision else []
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    with open(out / "history.csv", newline="") as f:
        return [float(row["train_seconds"]) for row in csv.DictReader(f)][1:]


def main(argv=None):
    args = make_parser().parse_args(argv)
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="remapper_") as scratch:
        for repeat in range(args.repeats):
            for model in args.models:
                for remapper in ("on", "off"):
                    out = Path(scratch) / f"{model}_{remapper}_{repeat}"
                    seconds.setdefault((model, remapper), []).extend(
                        epoch_seconds(model, remapper, args, out))
                    print(f"round {repeat + 1}: {model}, remapper {remapper}: "
                          f"{seconds[model, remapper][-1]:.2f} s", flush=True)
    print(f"\n{args.images} images, median train seconds of epochs 2-{args.epochs} over "
          f"{args.repeats} rounds:\n")
    print("| model | remapper on | remapper off | off / on |\n|---|---|---|---|")
    for model in args.models:
        on, off = (statistics.median(seconds[model, r]) for r in ("on", "off"))
        print(f"| {model} | {on:.2f} s | {off:.2f} s | {off / on:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
