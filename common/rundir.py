"""A run directory (outputs/<model> by default): the names of its files,
built and read here only; whether a new command resumes it or is refused;
its lock (RunLock), which keeps a second process out; and its tables
(Table: history.csv, metrics.csv), events.csv and config.json, each
rewritten atomically so that a killed run leaves them whole.

No TensorFlow here: a run directory is checked before TensorFlow starts."""
import csv
import datetime
import fcntl
import io
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path

from common.atomic import atomic_write, check_directory, remove_leftovers
from common.errors import UsageError

# The end-of-run figures, by name (RunDir.figure): the loop's and the models'.
FIGURES = {"progress": "progress.gif", "losses": "losses.png", "timing": "timing.png",
           "latent_manifold": "latent_manifold.png", "latent_scatter": "latent_scatter.png"}
PAGE, PAGE_DATA = "index.html", "index-data.js"  # a page and its data (common/pages)
# What the program writes into a run directory; --fresh removes these and
# nothing else.
OWNED = ("config.json", "history.csv", "metrics.csv", "events.csv", "evaluation.json",
         "evaluation_at_epoch_*.json", "images", "checkpoints", "logs", "export",
         *FIGURES.values(), PAGE, PAGE_DATA)

# The file a training process holds an OS lock on (flock) while it writes the
# run: the kernel releases the lock when the process ends, however it ends,
# so the file itself is never removed and never stale.
LOCK = ".lock"
EVENT_COLUMNS = ("time", "epoch", "event", "detail")
# A picture's file name: images/<name>_at_epoch_<epoch, 4 digits>.png, "image"
# the main one (picture_name builds it, RunDir.pictures reads it back)
PICTURE = re.compile(r"(\w+)_at_epoch_(\d+)\.png")


def picture_name(epoch, name="image"):
    """The file name of picture `name` of `epoch` (PICTURE)."""
    return f"{name}_at_epoch_{epoch:04d}.png"


# A checkpoint's files (tf.train.CheckpointManager's names, its default prefix):
# checkpoints/ckpt-<number>.index and .data-*, the
# number the epoch it ends, or the one it was saved inside (SIGTERM); the
# same names in checkpoints/kept/ for the kept epochs.
def checkpoint_name(number):
    return f"ckpt-{number}"


def checkpoint_numbers(folder):
    """{number: index file} of the checkpoints in `folder`."""
    return {int(index.stem.split("-")[1]): index for index in Path(folder).glob("ckpt-*.index")}


class RunDir:
    """The files of one run. `open` checks; nothing is written before `start`."""

    def __init__(self, path):
        self.path = Path(path)
        self.config_file = self.path / "config.json"
        self.images = self.path / "images"
        self.checkpoints = self.path / "checkpoints"
        self.kept = self.checkpoints / "kept"  # --keep-epochs: checkpoints kept for good
        self.logs = self.path / "logs"
        self.exports = self.path / "export"
        self.page, self.page_data = self.path / PAGE, self.path / PAGE_DATA
        self.lock = None  # the open lock file while this process holds the run
        self.config_seen = None  # config.json when the run was opened

    @classmethod
    def open(cls, path, model, args, fresh=False, controls=frozenset()):
        """Check that a run of `model` with `args` may use `path`: it is (or
        can become) a writable directory, and any run already in it is the
        same model with the same arguments, but for the run `controls`
        (Parser.run_controls) (unless `fresh`). Returns the RunDir and the
        config of the run found there (or None)."""
        run = cls(path)
        check_directory(run.path, "--out")
        if (run.path / LOCK).exists():  # fail now if it is in use; start() takes the lock
            RunLock(run.path).take(warn=False).close()
        old = run.config_seen = run.read_config()
        if (old is None and not fresh and run.path.exists()
                and any(p.name != LOCK for p in run.path.iterdir())):
            raise UsageError(f"{run.path} is not empty and holds no run (no config.json); "
                             f"choose another --out, or pass --fresh to write into it")
        if old is not None and not fresh:
            differences = _differences(old, model, args, controls)
            if differences:
                raise UsageError(f"{run.path} holds a different run ({'; '.join(differences)}); "
                                 f"pass --fresh to replace it, or choose another --out")
        return run, (None if fresh else old)

    def start(self, config, fresh=False):
        """Begin (or resume) the run: take its lock (a UsageError if another
        process holds it, or wrote a run here since `open`), remove the
        temporary files a killed run left, ours and TensorFlow's (a
        checkpoint's _temp folder); with `fresh`, what an earlier run wrote;
        then write config.json. The lock is held until `close`, or until
        the process ends."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.lock is None:
            self.lock = RunLock(self.path).take()
            if not fresh and self.read_config() != self.config_seen:
                self.close()
                raise UsageError(f"another process started a run in {self.path} while this "
                                 f"command started; run it again")
        remove_leftovers(self.path)
        for leftover in self.checkpoints.glob("ckpt-*_temp"):
            shutil.rmtree(leftover)
        if fresh:
            for target in (found for name in OWNED for found in self.path.glob(name)):
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
        for folder in (self.images, self.checkpoints, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.config_file, "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write("\n")
        self.config_seen = config

    def close(self):
        """Release the run's lock."""
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def read_config(self):
        if not self.config_file.exists():
            return None
        try:
            return json.loads(self.config_file.read_text())
        except (ValueError, OSError) as error:
            raise UsageError(f"{self.config_file} is unreadable ({error}); "
                             f"pass --fresh to start the run over") from None

    def figure(self, name):
        """The file of end-of-run figure `name` (FIGURES)."""
        return self.path / FIGURES[name]

    def image_path(self, epoch, name="image"):
        return self.images / picture_name(epoch, name)

    def pictures(self):
        """{picture name: {epoch: path}} of the run's pictures."""
        found = {}
        if self.images.is_dir():
            for entry in os.scandir(self.images):
                match = PICTURE.fullmatch(entry.name)
                if match:
                    found.setdefault(match[1], {})[int(match[2])] = Path(entry.path)
        return found

    def evaluation_path(self, epoch=None):
        """Where evaluate stores its scores: of the latest checkpoint, or of
        the one at the end of `epoch`."""
        return self.path / ("evaluation.json" if epoch is None
                            else f"evaluation_at_epoch_{epoch:04d}.json")

    def samples_path(self, epoch):
        """An epoch's exported samples (the reference loops', for parity)."""
        return self.path / f"samples_at_epoch_{epoch:04d}.npz"

    def table(self, name):
        """The table `name`.csv (history, metrics)."""
        return Table(self.path / f"{name}.csv")

    def read_table(self, name):
        return self.table(name).read()

    def write_table(self, name, rows, columns):
        self.table(name).write(rows, columns)

    def trim_table(self, name, epoch):
        self.table(name).trim(epoch)

    def events(self):
        """The rows of events.csv, as strings: what happened to the run
        besides training (a rollback, a divergence, a damaged checkpoint
        passed over, a termination)."""
        path = self.path / "events.csv"
        if not path.exists():
            return []
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    def log_event(self, epoch, event, detail):
        """Add a row to events.csv (rewritten whole: a handful of rows)."""
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        rows = [*self.events(), {"time": now, "epoch": epoch, "event": event, "detail": detail}]
        text = io.StringIO()
        writer = csv.DictWriter(text, EVENT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        with atomic_write(self.path / "events.csv", "w") as f:
            f.write(text.getvalue())

    def checkpoint(self, epoch):
        """The path (without suffix) of the checkpoint at the end of `epoch`:
        one of the last few (the newest unless the run was stopped inside
        the next epoch), or one kept for good; None if there is none."""
        for path in (self.checkpoints / checkpoint_name(epoch), self.kept / checkpoint_name(epoch)):
            if path.with_suffix(".index").exists() and (path.parent == self.kept
                                                         or epoch in self._epochs_done()):
                return path
        return None

    def checkpoint_epochs(self):
        """The epochs whose end has a checkpoint, in order."""
        numbers = {number for folder in (self.checkpoints, self.kept)
                   for number in checkpoint_numbers(folder)}
        return sorted(epoch for epoch in numbers if self.checkpoint(epoch) is not None)

    def _epochs_done(self):
        """The epochs of history.csv. A checkpoint numbered after an epoch
        that is not there was saved inside that epoch (SIGTERM): not its end."""
        return {row["epoch"] for row in self.read_table("history")}

    def checkpoint_bytes(self):
        """The size of the run's newest checkpoint on disk (0: none)."""
        indexes = sorted(self.checkpoints.glob("ckpt-*.index"), key=os.path.getmtime)
        if not indexes:
            return 0
        return sum(p.stat().st_size for p in self.checkpoints.glob(f"{indexes[-1].stem}.*"))


class RunLock:
    """The OS lock (flock) a training process holds on a run's LOCK file
    while it writes the run: the kernel releases it when the process ends,
    however it ends, so it is never stale."""

    def __init__(self, directory):
        self.file = Path(directory) / LOCK

    def take(self, warn=True):
        """The lock file, open and locked by this process; a UsageError
        naming the process that holds it if another does. On a file system
        that has no locks (Lustre without -o flock, NFS without its lock
        daemon) it is open but unlocked, with a warning."""
        lock = open(self.file, "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise UsageError(f"{self.file.parent} is in use by {self.holder()}; "
                             f"wait for it to end, or stop it") from None
        except OSError as error:
            if warn:
                print(f"warning: {self.file.parent} cannot be locked ({error.strerror}): "
                      f"nothing keeps a second process from training into it", file=sys.stderr)
        return lock

    def holder(self):
        """The process holding the lock, in words: its pid and command
        line, found in Linux's /proc/locks; a process on another host (a
        shared file system) or another OS is "another process"."""
        stat = os.stat(self.file)
        device = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
        try:
            with open("/proc/locks") as f:
                # "1: FLOCK  ADVISORY  WRITE 4242 fd:00:2155137 0 EOF"
                pids = [line.split()[4] for line in f if line.split()[5:6] == [device]]
            with open(f"/proc/{pids[0]}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            return "another process"
        return f"process {pids[0]} ({command})"


class Table:
    """A run's CSV table, one row per epoch (history.csv, metrics.csv):
    small enough to rewrite whole each epoch, which keeps it whole however
    the process ends."""

    def __init__(self, path):
        self.path = Path(path)

    def read(self):
        """The rows as dicts of floats (epoch as int); a blank cell, a value
        not measured that epoch, reads as NaN."""
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return [{key: int(value) if key == "epoch" else _float(value)
                     for key, value in row.items()} for row in csv.DictReader(f)]

    def write(self, rows, columns):
        """Rewrite the table with `rows`, these `columns` of each."""
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_format(row.get(column)) for column in columns])
        with atomic_write(self.path, "w") as f:
            f.write(text.getvalue())

    def trim(self, epoch):
        """Drop the rows after `epoch`, as a resumed run does for the epochs
        it trains again; the rows kept are left as written."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        kept = rows[:1] + [row for row in rows[1:] if int(row[0]) <= epoch]
        if len(kept) < len(rows):
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(kept)
            with atomic_write(self.path, "w") as f:
                f.write(text.getvalue())


def _differences(old, model, args, controls):
    """Human-readable differences between a stored config and this command."""
    if old.get("model") != model:
        return [f"model {old.get('model')!r}, not {model!r}"]
    stored = old.get("args", {})
    args = json.loads(json.dumps(args))  # as config.json holds them: tuples become lists
    return [f"--{key.replace('_', '-')} {stored[key]} there, {args[key]} here"
            for key in sorted(set(stored) & set(args) - controls)
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
