"""The exceptions a user sees as a single line, and the exit status of each:
2 bad input, 3 diverged, 143 terminated, 129 hung up (cli.main prints them)."""
import signal


class UsageError(Exception):
    """Bad arguments, data files or output directory.

    The scripts print it as one line on stderr and exit with status 2; it is
    raised before anything in the run directory is changed."""


class Diverged(Exception):
    """A loss or a weight became NaN or infinite in `epoch`: `what` says
    which. Nothing of that epoch was written and no checkpoint of it saved:
    the run's newest checkpoint, of epoch `checkpoint` (0: none yet), is its
    last good state. `rollbacks`: how many times the run went back to a
    checkpoint at half the learning rate before (--on-nonfinite rollback)."""

    status = 3

    def __init__(self, epoch, what, checkpoint, rollbacks):
        super().__init__(epoch, what, checkpoint, rollbacks)
        self.epoch, self.what, self.checkpoint, self.rollbacks = epoch, what, checkpoint, rollbacks


class Terminated(Exception):
    """SIGTERM or SIGHUP (`signum`): the run stopped at a step boundary, its
    newest checkpoint the state after epoch `epoch` and `step` steps of the
    next. Its exit status is the shell's for that signal, 128 + its number:
    143 for SIGTERM, 129 for SIGHUP."""

    def __init__(self, epoch, step, signum=signal.SIGTERM):
        super().__init__(epoch, step, signum)
        self.epoch, self.step, self.signal = epoch, step, signal.Signals(signum)
        self.status = 128 + self.signal
