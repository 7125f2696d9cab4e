"""TensorFlow started without the lines of its own that tell a user nothing:
its informational start-up lines, some of which TensorFlow 2.21 writes to
stderr before its logging is initialised, where TF_CPP_MIN_LOG_LEVEL cannot
reach them (oneDNN, the CUDA stub, absl's note that logging is not
initialised yet), and one error line of its graph optimizer that is known
to be harmless (REMAPPER below). Every command of the project starts
TensorFlow through start_tensorflow, which from then on passes the
process's stderr through a small filter process that drops those lines and
writes every other one on (warnings, errors, tracebacks) as it comes. A user
who sets TF_CPP_MIN_LOG_LEVEL chooses for themselves: then nothing is
dropped.

Run as a script (python -I -S common/quiet.py), this file is that filter: it
copies its standard input to its standard output, less those lines."""
import codecs
import os
import re
import subprocess
import sys

# I0000 00:00:1795307851.899059    2322 port.cc:153] oneDNN custom operations are on...
INFORMATIONAL = re.compile(r"^I\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+:\d+\] ")
# written once before the first line above, about logging itself
ABSL_PREAMBLE = ("WARNING: All log messages before absl::InitializeLog() is called are written "
                 "to STDERR")
# on a machine with no CUDA driver, after "Could not find cuda drivers on
# your machine, GPU will not be used": the same news as an error line
NO_DRIVER = re.compile(r"^E\d{4} .*cuda_platform\.cc:\d+\] failed call to cuInit")
# TensorFlow 2.21's graph optimizer, once per compiled train step of a
# network with Conv2D -> LeakyReLU: its remapper leaves the graph unfused, as
# it was (in fp16 the nodes' names end in _1 and the like); harmless
# (docs/speed.md#the-remappers-error-line).
REMAPPER = re.compile(r"^E\d{4} .*meta_optimizer\.cc:\d+\] remapper failed: INVALID_ARGUMENT: "
                      r"Mutation::Apply error: fanout '[^']*/LeakyReluGrad(_\d+)?' exist for "
                      r"missing node '[^']*/BiasAdd(_\d+)?'")
# the start of a line of TensorFlow's logging (severity, month, day): a
# part of one is held back until its end shows whether it is dropped
LOG_LINE = re.compile(r"^[IWEF]\d{0,4}$|^[IWEF]\d{4} ")


def start_tensorflow():
    """Import TensorFlow and initialise its devices, this process's stderr
    filtered from now on (filter_stderr); returns the module."""
    if "tensorflow" in sys.modules:
        import tensorflow as tf
        return tf
    filtered = filter_stderr()
    import tensorflow as tf
    if filtered:
        tf.config.list_physical_devices()  # the platforms' start-up lines, too
    return tf


def filter_stderr():
    """From now on, this process's stderr (and that of the processes it
    starts) without TensorFlow's lines that tell a user nothing, unless the
    user chose TF_CPP_MIN_LOG_LEVEL; for a program that imports TensorFlow
    itself, afterwards (the tutorials' loops in bench/). Returns whether it
    filters.

    File descriptor 2, which C++ and Python write stderr to (and which the
    processes started from here inherit), becomes a pipe read by a filter
    process that writes on to where stderr went. The filter is in a session
    of its own, so that Ctrl-C or a closed terminal does not stop it before
    this process's last lines; it ends when every writer has closed the
    pipe, however this process ends, with the lines it has read written."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return False
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"  # once logging is set up: no INFO lines
    sys.stderr.flush()
    read, write = os.pipe()
    try:
        subprocess.Popen([sys.executable, "-I", "-S", __file__], stdin=read, stdout=2,
                         start_new_session=True)
    except OSError:  # no process to spare: stderr as it is, unfiltered
        os.close(write)
        return True
    finally:
        os.close(read)
    os.dup2(write, 2)
    os.close(write)
    return True


class Lines:
    """Which lines of stderr to show: all but the informational ones, absl's
    preamble, the remapper's harmless error, and the cuInit error that only
    repeats "no CUDA driver" (after that line)."""

    def __init__(self):
        self.no_driver = False

    def shown(self, line):
        text = line.rstrip("\r\n")
        if "Could not find cuda drivers" in text:
            self.no_driver = True
        return not (INFORMATIONAL.match(text) or text.strip() == ABSL_PREAMBLE
                    or REMAPPER.match(text) or (self.no_driver and NO_DRIVER.match(text)))


def kept(lines):
    """The lines of `lines` (each with its newline) to show."""
    filtering = Lines()
    return [line for line in lines if filtering.shown(line)]


def copy_filtered(source, sink):
    """Copy file descriptor `source` to the binary stream `sink` until end
    of file, line by line less the lines Lines drops, each as soon as it is
    whole; a part of a line goes on at once unless it may be the start of a
    line of TensorFlow's logging. Once `sink` cannot be written (a terminal
    that hung up), the rest is read and dropped: the writers never block."""
    filtering, pending, open_ = Lines(), "", True
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while chunk := os.read(source, 1 << 16):
        *lines, pending = (pending + decoder.decode(chunk)).split("\n")
        text = "".join(line + "\n" for line in lines if filtering.shown(line))
        if pending and not LOG_LINE.match(pending[:6]):
            text, pending = text + pending, ""
        open_ = open_ and _write(sink, text)
    if pending and filtering.shown(pending) and open_:
        _write(sink, pending)


def _write(sink, text):
    """Write `text` to `sink` now; False if it can no longer be written."""
    try:
        sink.write(text.encode())
        sink.flush()
    except OSError:
        return False
    return True


if __name__ == "__main__":
    copy_filtered(sys.stdin.fileno(), sys.stdout.buffer)
