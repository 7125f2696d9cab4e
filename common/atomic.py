"""Write files so that a killed process leaves either the old or the new
file, never a half-written one: write a temporary file beside it, then
rename it over the target (an atomic step on POSIX file systems)."""
import contextlib
import os
import tempfile
from pathlib import Path

from common.errors import UsageError

TEMPORARY = ".tmp-"  # .<name>.tmp-<pid>: a file being written, or left by a killed writer


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside `path`; on success, flush it to disk and
    rename it to `path`. On an exception the temporary file is removed and
    `path` is untouched; an OSError (a full disk: ENOSPC) names `path`, the
    file the user knows, rather than its temporary."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TEMPORARY}{os.getpid()}")
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        error.filename = str(path)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def check_directory(path, option):
    """Fail now, before any work, unless `path` is a directory files can be
    created in, or can become one: probe it or, if it does not exist yet,
    the nearest ancestor that does, with a temporary file removed at once
    (nothing is created). The UsageError names the command-line `option`
    that gave the path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file, not a directory")
    existing = nearest_existing(path)
    if not existing.is_dir():
        raise UsageError(f"cannot create {option} {path}: {existing} is a file")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as error:
        raise UsageError(f"cannot write to {option} {path}: {existing} takes no new files"
                         f" ({error.strerror or error})") from None


def check_file(path, suffix, option="--out"):
    """Fail now, before any work, unless `path` names a file ending in
    `suffix` that can be written (its folder made if need be)."""
    path = Path(path)
    if path.suffix != suffix:
        raise UsageError(f"{option} {path}: the file's name must end in {suffix}")
    if path.is_dir():
        raise UsageError(f"{option} {path} is a directory")
    check_directory(path.parent, f"the folder of {option}")


def nearest_existing(path):
    """`path` if it exists, else its nearest ancestor that does."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return path


def remove_leftovers(directory):
    """Remove the temporary files that killed writers left below
    `directory`; only for a directory no other process writes into."""
    for path in Path(directory).rglob(f".*{TEMPORARY}*"):
        if path.is_file():
            path.unlink()
