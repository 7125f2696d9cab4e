"""A run directory (outputs/<model> by default): what it holds, whether a new
command resumes it or is refused, and its history.csv and config.json, each
rewritten atomically so that a killed run leaves them whole.

No TensorFlow here: a run directory is checked before TensorFlow starts."""
import csv
import io
import json
import math
import shutil
from pathlib import Path

from common.atomic import atomic_write, check_writable, remove_leftovers
from common.errors import UsageError

# Arguments that may change between a run and its resumption: how long to
# train, how often to write, where things are. Every other argument defines
# the run, and a command that differs in one of them is refused.
RUN_CONTROL = frozenset({"epochs", "out", "fresh", "data_dir", "save_every",
                         "checkpoint_every", "eval_every", "metrics_every", "metrics_samples",
                         "classifier_dir", "strategy", "precision", "jit", "steps_per_call",
                         "data_on_device", "profile_epoch"})

# What the program writes into a run directory; --fresh removes these and
# nothing else.
OWNED = ("config.json", "history.csv", "metrics.csv", "evaluation.json", "images",
         "checkpoints", "logs", "progress.gif", "losses.png", "timing.png",
         "latent_manifold.png", "latent_scatter.png", "index.html", "index-data.js")


class RunDir:
    """The files of one run. `open` checks; nothing is written before `start`."""

    def __init__(self, path):
        self.path = Path(path)
        self.config_file = self.path / "config.json"
        self.images = self.path / "images"
        self.checkpoints = self.path / "checkpoints"
        self.logs = self.path / "logs"

    @classmethod
    def open(cls, path, model, args, fresh=False):
        """Check that a run of `model` with `args` may use `path`: it is (or
        can become) a writable directory, and any run already in it is the
        same model with the same run-defining arguments (unless `fresh`).
        Returns the RunDir and the config of the run found there (or None)."""
        run = cls(path)
        run._check_writable()
        old = run.read_config()
        if old is None and not fresh and run.path.exists() and any(run.path.iterdir()):
            raise UsageError(f"{run.path} is not empty and holds no run (no config.json); "
                             f"choose another --out, or pass --fresh to write into it")
        if old is not None and not fresh:
            differences = _differences(old, model, args)
            if differences:
                raise UsageError(f"{run.path} holds a different run ({'; '.join(differences)}); "
                                 f"pass --fresh to replace it, or choose another --out")
        return run, (None if fresh else old)

    def _check_writable(self):
        """Fail now, before anything is written, if --out cannot be written:
        probe the directory itself or, if it does not exist yet, the nearest
        ancestor that does (nothing is created here)."""
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"--out {self.path} is a file, not a directory")
        existing = self.path
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise UsageError(f"cannot create --out {self.path}: {existing} is a file")
        try:
            check_writable(existing)
        except OSError as error:
            raise UsageError(f"cannot write to --out {self.path}: "
                             f"{error.strerror or error}") from None

    def start(self, config, fresh=False):
        """Begin (or resume) the run: remove the temporary files a killed
        run left; with `fresh`, what an earlier run wrote; then write
        config.json."""
        if self.path.is_dir():
            remove_leftovers(self.path)
        if fresh:
            for name in OWNED:
                target = self.path / name
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
        for folder in (self.images, self.checkpoints, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.config_file, "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write("\n")

    def read_config(self):
        if not self.config_file.exists():
            return None
        try:
            return json.loads(self.config_file.read_text())
        except (ValueError, OSError) as error:
            raise UsageError(f"{self.config_file} is unreadable ({error}); "
                             f"pass --fresh to start the run over") from None

    def image_path(self, epoch, name="image"):
        return self.images / f"{name}_at_epoch_{epoch:04d}.png"

    def read_table(self, name):
        """The rows of `name`.csv (history, metrics) as dicts of floats (epoch
        as int); a blank cell, a value not measured that epoch, reads as NaN."""
        path = self.path / f"{name}.csv"
        if not path.exists():
            return []
        with open(path, newline="") as f:
            return [{key: int(value) if key == "epoch" else _float(value)
                     for key, value in row.items()} for row in csv.DictReader(f)]

    def write_table(self, name, rows, columns):
        """Rewrite `name`.csv with `rows`: small enough to rewrite whole each
        epoch, which keeps it whole however the process ends."""
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_format(row.get(column)) for column in columns])
        with atomic_write(self.path / f"{name}.csv", "w") as f:
            f.write(text.getvalue())


def _differences(old, model, args):
    """Human-readable differences between a stored config and this command."""
    if old.get("model") != model:
        return [f"model {old.get('model')!r}, not {model!r}"]
    stored = old.get("args", {})
    return [f"--{key.replace('_', '-')} {stored[key]} there, {args[key]} here"
            for key in sorted(set(stored) & set(args) - RUN_CONTROL)
            if stored[key] != args[key]
            and not (key == "seed" and args[key] is None)]  # no --seed: resume with the stored one


def _float(text):
    return float(text) if text not in ("", None) else math.nan


def _format(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.7g}"
    return str(value)
