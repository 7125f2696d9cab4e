"""How far a slow step has got, told as it goes: on a terminal a bar with a
time estimate (Keras's), elsewhere (a log file, CI) one line when the step
starts and one when it ends, so that every command says what it is doing
and what it cost."""
import sys
import time


class Progress:
    """A step of `total` units: update(done) as it goes, finish() at the end."""

    def __init__(self, title, total):
        self.title, self.total = title, total
        self.began = time.perf_counter()
        print(title + ("" if sys.stdout.isatty() else " ..."), flush=True)
        self.bar = None
        if sys.stdout.isatty():
            import keras

            self.bar = keras.utils.Progbar(total)

    def update(self, done):
        if self.bar is not None:
            self.bar.update(done)

    def finish(self):
        self.update(self.total)
        print(f"{self.title}: done in {time.perf_counter() - self.began:.0f} s", flush=True)
