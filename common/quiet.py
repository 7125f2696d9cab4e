"""TensorFlow started without its informational start-up lines. TensorFlow
2.21 writes some of them to stderr before its logging is initialised, where
TF_CPP_MIN_LOG_LEVEL cannot reach them (oneDNN, the CUDA stub, absl's note
that logging is not initialised yet); every command of the project starts
TensorFlow through start_tensorflow, which drops those and writes every
other line (warnings, errors) on. A user who sets TF_CPP_MIN_LOG_LEVEL
chooses for themselves: then nothing is dropped."""
import contextlib
import os
import re
import sys
import tempfile

# I0000 00:00:1795307851.899059    2322 port.cc:153] oneDNN custom operations are on...
INFORMATIONAL = re.compile(r"^I\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+:\d+\] ")
# written once before the first line above, about logging itself
ABSL_PREAMBLE = ("WARNING: All log messages before absl::InitializeLog() is called are written "
                 "to STDERR")
# on a machine with no CUDA driver, after "Could not find cuda drivers on
# your machine, GPU will not be used": the same news as an error line
NO_DRIVER = re.compile(r"^E\d{4} .*cuda_platform\.cc:\d+\] failed call to cuInit")


def start_tensorflow():
    """Import TensorFlow and initialise its devices; returns the module."""
    if "tensorflow" in sys.modules or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        import tensorflow as tf
        return tf
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"  # once logging is set up: no INFO lines
    lines = []
    try:
        with _stderr_captured(lines):
            import tensorflow as tf
            tf.config.list_physical_devices()  # the platforms' start-up lines, too
    finally:  # also when the import fails: its own lines say why
        sys.stderr.write("".join(kept(lines)))
        sys.stderr.flush()
    return tf


def kept(lines):
    """The start-up lines to show: all but the informational ones (and the
    cuInit error that only repeats "no CUDA driver")."""
    no_driver = any("Could not find cuda drivers" in line for line in lines)
    return [line for line in lines
            if not (INFORMATIONAL.match(line) or line.strip() == ABSL_PREAMBLE
                    or (no_driver and NO_DRIVER.match(line)))]


@contextlib.contextmanager
def _stderr_captured(lines):
    """File descriptor 2 (what C++ and Python write to stderr) into a
    temporary file, whose lines are added to `lines` at the end."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines += captured.read().decode(errors="replace").splitlines(True)
