"""What keeping a run's page current costs: the time RunPage.update takes to
rewrite index-data.js after each of the last REPEATS epochs of a run with
EPOCHS epochs of history (DCGAN columns, metrics every 10 epochs, a picture
every epoch), in a temporary directory. A script that prints figures, not a
test:

    python bench/pages.py [--epochs 2000] [--pictures 1] [--repeats 20]

Divide by an epoch's seconds (history.csv) for the share of the epoch."""
import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

if not __package__:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import pages  # noqa: E402  (after the path is set)
from common.evaluation.evaluate import Evaluator  # noqa: E402
from common.rundir import RunDir  # noqa: E402

COLUMNS = ("epoch", "seconds", "train_seconds", "images_per_sec", "g_loss", "d_loss", "d_real",
           "d_fake", "host_mb")
PLOTS = {"loss": ("g_loss", "d_loss"), "discriminator": ("d_real", "d_fake")}


def fake_run(path, epochs, pictures=1):
    """A run directory that has trained `epochs` epochs: config, history,
    metrics and `pictures` pictures an epoch (the same small PNG); returns
    the RunDir and the history rows."""
    run = RunDir(path)
    run.start({"model": "dcgan", "args": {"model": "dcgan", "epochs": epochs, "seed": 1,
                                          "out": str(path)}})
    history = [{"epoch": e, "seconds": 60 + e % 7 / 10, "train_seconds": 59.5,
                "images_per_sec": 1000.0 + e, "g_loss": 1 / e, "d_loss": 1.2 + 1 / e,
                "d_real": 0.6, "d_fake": 0.4, "host_mb": 1800.0} for e in range(1, epochs + 1)]
    run.write_table("history", history, COLUMNS)
    run.write_table("metrics", [{"epoch": e, "seconds": 11.0, "samples": 10000,
                                 **{name: 1.0 / e for name in Evaluator.columns[3:]}}
                                for e in range(10, epochs + 1, 10)], Evaluator.columns)
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (122, 122), np.uint8)).save(png, "PNG")
    for e in range(1, epochs + 1):
        for name in ("image", "continuous_1", "continuous_2")[:pictures]:
            run.image_path(e, name).write_bytes(png.getvalue())
    return run, history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2000, help="epochs of history")
    parser.add_argument("--pictures", type=int, choices=(1, 2, 3), default=1,
                        help="pictures per epoch (InfoGAN: 3)")
    parser.add_argument("--repeats", type=int, default=20, help="updates timed")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        run, history = fake_run(Path(directory) / "run", args.epochs, args.pictures)
        began = time.perf_counter()
        page = pages.RunPage(run, PLOTS)
        started = time.perf_counter() - began
        page.update(history[:-args.repeats])  # the training loop's rows, as after its first epoch
        times = []
        for done in range(len(history) - args.repeats + 1, len(history) + 1):
            began = time.perf_counter()
            page.update(history[:done])
            times.append(time.perf_counter() - began)
        size = (run.path / "index-data.js").stat().st_size
    print(f"{args.epochs} epochs, {args.pictures} picture(s) each: RunPage.update "
          f"{1000 * statistics.median(times):.1f} ms median (min {1000 * min(times):.1f}, "
          f"max {1000 * max(times):.1f}) over {args.repeats}; index-data.js {size / 1000:.0f} kB; "
          f"the page and the index at the start {1000 * started:.0f} ms")


if __name__ == "__main__":
    sys.exit(main())
