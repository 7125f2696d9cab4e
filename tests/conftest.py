"""Fixtures: MNIST-format files written by the tests themselves, the real
MNIST when MNIST_DIR is set, and helpers to run the train.py scripts.

Markers (pyproject.toml): `slow` tests (real processes killed and signalled,
Ray, the browser, trainings of many steps) run only when asked, `python -m
pytest -m slow` (`-m "slow or not slow"`: everything; .ci/run runs the
default run, then the slow tests);
`dynamics` tests assert something of training itself (a loss falls, a
metric beats a bound) and take their seed from the `dynamics_seed` fixture,
so that `--dynamics-seeds 1 2 3 4 5` runs each under every one of those
seeds and prints every value beside its bound: how the margins in their
comments were measured. The session ends by printing its peak memory and
the tests that raised it most.

And a guard: the suite cannot touch the machine it runs on. Before any test
module imports TensorFlow or tensorflow-datasets (which reads its data
directory once, at import), HOME, KERAS_HOME and TFDS_DATA_DIR point into a
temporary directory, and so does TMPDIR for the processes the tests start
(a killed one leaves its temporary files: TensorFlow's AutoGraph code); every test runs with its working directory in its own
temporary directory; and when the session ends it fails if the real home's
tensorflow-datasets cache, its Keras directory or the checkout's outputs/
changed (pytest_sessionfinish below)."""
import csv
import gc
import gzip
import hashlib
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["pytester"]  # test_guard.py runs a pytest session of its own

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# On a GPU host the pytest process and the runs it starts share the GPUs: each
# takes memory as it needs it, where TensorFlow would reserve nearly all of a
# GPU in the first process to touch it (set before TensorFlow is imported)
os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"

ROOT = Path(__file__).resolve().parents[1]
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# What a test must never change, and the temporary stand-ins it gets instead.
PROTECTED = tuple(dict.fromkeys(
    [Path.home() / "tensorflow_datasets", Path.home() / ".keras", ROOT / "outputs"]
    + [Path(os.environ[name]) for name in ("TFDS_DATA_DIR", "KERAS_HOME") if os.environ.get(name)]))
SANDBOX = Path(tempfile.mkdtemp(prefix="tests-sandbox-"))
os.environ.update(HOME=str(SANDBOX / "home"), KERAS_HOME=str(SANDBOX / "home" / ".keras"),
                  TFDS_DATA_DIR=str(SANDBOX / "tensorflow_datasets"), TMPDIR=str(SANDBOX / "t"))
(SANDBOX / "home").mkdir()
(SANDBOX / "t").mkdir()


def snapshot(paths=PROTECTED):
    """{path: {file or folder below it: (size, modification time)}}, None
    for a path that does not exist."""
    state = {}
    for top in paths:
        if not top.exists():
            state[top] = None
            continue
        entries = {}
        for folder, folders, files in os.walk(top):
            for name in folders + files:
                path = Path(folder) / name
                stat = path.lstat()
                entries[str(path.relative_to(top))] = (stat.st_size if name in files else -1,
                                                       stat.st_mtime_ns)
        state[top] = entries
    return state


def changes(before, after):
    """Lines naming what differs between two snapshots."""
    lines = []
    for top in before:
        old, new = before[top], after[top]
        if old == new:
            continue
        if old is None or new is None:
            lines.append(f"{top} was {'created' if old is None else 'removed'}")
            continue
        touched = sorted(set(old) ^ set(new) | {p for p in set(old) & set(new) if old[p] != new[p]})
        lines.append(f"{top}: {len(touched)} entries added, removed or changed, e.g. "
                     + ", ".join(touched[:5]))
    return lines


_BEFORE = snapshot()


# The suite must run on an 8 GB laptop: the run fails if the pytest process,
# or a process it started, ever held more (issue 19; measured peaks are in
# the README, 1.5 to 2.2 GiB).
MEMORY_LIMIT_GIB = 3.0


def pytest_sessionfinish(session):
    """Fail the run if a protected path changed, or if it took more memory
    than MEMORY_LIMIT_GIB; remove the sandbox."""
    shutil.rmtree(SANDBOX, ignore_errors=True)
    found = changes(_BEFORE, snapshot())
    peak = max(_peak_gib(), _peak_gib(resource.RUSAGE_CHILDREN))
    if peak >= MEMORY_LIMIT_GIB:
        _fail(session, f"\nThe suite's memory reached {peak:.2f} GiB, over its limit of "
                       f"{MEMORY_LIMIT_GIB} GiB (the tests that raised it most are named "
                       f"below)\n")
    if found:
        _fail(session, "\nThe tests changed what they must never touch (a test wrote outside "
                       "its temporary directories):\n  " + "\n  ".join(found) + "\n")


def _fail(session, message):
    """Fail the session with `message`, printed in red."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    else:
        print(message, file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_addoption(parser):
    parser.addoption("--dynamics-seeds", type=int, nargs="+", default=None, metavar="SEED",
                     help="run each test marked dynamics under each of these seeds (default: "
                          "its own one) and print every value it checks beside its bound")


def pytest_generate_tests(metafunc):
    seeds = metafunc.config.getoption("dynamics_seeds")
    if seeds and "dynamics_seed" in metafunc.fixturenames:
        metafunc.parametrize("dynamics_seed", seeds, indirect=True, ids=lambda s: f"seed{s}")


@pytest.fixture
def dynamics_seed(request):
    """The seed of a `dynamics` test's training: its marker's (seed=, default
    1), or one of --dynamics-seeds."""
    marker = request.node.get_closest_marker("dynamics")
    assert marker is not None, "a test taking dynamics_seed is marked dynamics"
    return getattr(request, "param", marker.kwargs.get("seed", 1))


MEASURED = []  # (test, seed, what, value, comparison, bound), printed with --dynamics-seeds


class Margin:
    """A dynamics test's checks of its measured values against their bounds,
    recorded for the summary: margin.above("q_accuracy", 0.41, 0.3)."""

    def __init__(self, test, seed):
        self.test, self.seed = test, seed

    def above(self, what, value, bound):
        MEASURED.append((self.test, self.seed, what, float(value), ">", float(bound)))
        assert value > bound, f"{what} {value:.4g} is not above {bound:.4g}"

    def below(self, what, value, bound):
        MEASURED.append((self.test, self.seed, what, float(value), "<", float(bound)))
        assert value < bound, f"{what} {value:.4g} is not below {bound:.4g}"


@pytest.fixture
def margin(request, dynamics_seed):
    return Margin(request.node.originalname, dynamics_seed)


def pytest_terminal_summary(terminalreporter, config):
    """With --dynamics-seeds every value checked beside its bound; then the
    peak resident memory of this process, where the in-process trainings
    run (each command a test starts is one run in a process of its own)."""
    if config.getoption("dynamics_seeds") and MEASURED:
        forced = os.environ.get("GAN_VAE_DEVICE_TYPE")
        terminalreporter.write_sep("-", "dynamics: each value measured and its bound"
                                   + (f" (GAN_VAE_DEVICE_TYPE={forced})" if forced else ""))
        for test, seed, what, value, comparison, bound in sorted(MEASURED):
            terminalreporter.write_line(f"{test} seed {seed}: {what} {value:.4g} {comparison} "
                                        f"{bound:.4g}")
    rises = sorted(RISES, key=RISES.get, reverse=True)[:3]
    children = _peak_gib(resource.RUSAGE_CHILDREN)
    terminalreporter.write_line(
        f"peak memory of the pytest process: {_peak_gib():.2f} GiB, of the largest process it "
        f"started: {children:.2f} GiB" + (f" (in {LARGEST_CHILD[0]})" if LARGEST_CHILD else "")
        + ("; raised most by " + ", ".join(f"{test} (+{RISES[test]:.2f})" for test in rises)
           if rises else ""))


RISES = {}  # test id: how far it raised the process's peak memory, GiB
_PEAK_BEFORE = {}  # test id: the peak when it started
LARGEST_CHILD = []  # the test that started the largest process so far
_CHILDREN_BEFORE = {}  # test id: the largest started process's peak when it started


def _peak_gib(who=resource.RUSAGE_SELF):
    """The peak resident memory of this process (or, RUSAGE_CHILDREN, of the
    largest process it started and waited for, GiB: Linux counts in a
    started process the pages it shared with this one until it ran its
    program, so that figure is never below this process's at the time)."""
    return resource.getrusage(who).ru_maxrss / 2**20  # KiB on Linux


def pytest_runtest_logstart(nodeid, location):
    _PEAK_BEFORE[nodeid] = _peak_gib()
    _CHILDREN_BEFORE[nodeid] = _peak_gib(resource.RUSAGE_CHILDREN)


def pytest_runtest_logfinish(nodeid, location):
    """Which tests raised the peak (in-process runs: where to look when the
    suite's memory grows)."""
    rise = _peak_gib() - _PEAK_BEFORE.pop(nodeid)
    if rise >= 0.01:
        RISES[nodeid] = rise
    children = _peak_gib(resource.RUSAGE_CHILDREN)
    if children > _CHILDREN_BEFORE.pop(nodeid):
        LARGEST_CHILD[:] = [nodeid]


# the keys of Keras's global state when nothing was built: its settings, the policy and the seed
UNBUILT = {"nnx_enabled", "dtype_policy", "global_random_seed", "global_seed_generator"}


@pytest.fixture(autouse=True)
def released():
    """What a test's in-process trainings built (models, their traced
    graphs, Keras's global state) freed once it ends, so that the suite's
    memory stays bounded rather than growing by every run it made.

    In TensorFlow 2.21 a traced train step is never freed on its own: the
    Keras optimizer all-reduces the gradients through the replica context
    even without a strategy, whose @tf.custom_gradient registers a closure
    holding the traced graph (and so the networks' weights and slots, 40 MB
    for the DCGAN) in TensorFlow's global gradient registry, for good
    (tensorflow/tensorflow#97697). The registrations a test made are dropped
    when it ends: their graphs' gradients are built already.

    A test that built nothing of Keras (no names handed out to layers,
    models or variables: its global state holds at most the seed) and
    registered nothing costs no collection: clearing and collecting take
    half a second, which the suite's many small tests would pay 300 times
    over."""
    from keras.src.backend.common import global_state
    from tensorflow.python.framework import ops

    registry = ops._gradient_registry._registry
    before = set(registry)
    yield
    import keras

    added = [name for name in set(registry) - before if name.startswith("CustomGradient-")]
    for name in added:
        del registry[name]
    if added or set(vars(global_state.GLOBAL_STATE_TRACKER)) - UNBUILT:
        keras.backend.clear_session()
        gc.collect()


@pytest.fixture(scope="session", autouse=True)
def sandboxed_session(tmp_path_factory):
    """The session's working directory is a temporary one (module-scoped
    fixtures run there), and tensorflow-datasets, if something imported it
    before this file set TFDS_DATA_DIR, reads and writes the sandbox's."""
    if "tensorflow_datasets.core.constants" in sys.modules:
        sys.modules["tensorflow_datasets.core.constants"].DATA_DIR = os.environ["TFDS_DATA_DIR"]
    before = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(before)


@pytest.fixture(autouse=True)
def in_temporary_directory(tmp_path, monkeypatch):
    """Each test runs in its own temporary directory: a relative path a
    test or a command under test writes (outputs/ by default) lands there."""
    monkeypatch.chdir(tmp_path)


def idx_bytes(array, magic=None):
    """An IDX file's bytes: magic, one big-endian size per dimension, data."""
    array = np.asarray(array, dtype=np.uint8)
    magic = magic if magic is not None else (0x803 if array.ndim == 3 else 0x801)
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def write_file(path, raw):
    path = Path(path)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def synthetic_digits(n, seed=0, centered=False):
    """n fake 28x28 'digits' (a bright random rectangle on black) and labels;
    `centered`: each rectangle's centre is the image's, as MNIST centres its
    digits (a shifted one is then unlike any training image)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    for image in images:
        top, left = rng.integers(2, 12, size=2)
        height, width = rng.integers(8, 15, size=2)
        if centered:
            top, left = (28 - height) // 2, (28 - width) // 2
        image[top:top + height, left:left + width] = rng.integers(150, 256)
    return images, rng.integers(0, 10, n).astype(np.uint8)


def write_mnist(directory, n_train=256, n_test=64, gz=True, seed=0, centered=False):
    """The four IDX files of a synthetic data set in `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n, s in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
        images, labels = synthetic_digits(n, s, centered)
        write_file(directory / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images))
        write_file(directory / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels))
    return directory


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same Python, numpy and TensorFlow seeds,
    whatever ran before it in this process: a model a test builds gets the
    same weights alone or in the whole suite. Every test leaves the global
    precision policy at float32, as it found it (module-scoped fixtures
    are built between tests)."""
    import keras

    keras.utils.set_random_seed(0)
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def mixed_precision_runs():
    """Skips a test that trains in bf16 or fp16 where this process cannot
    (devices.check_precision: an AVX-512 CPU under ONEDNN_MAX_CPU_ISA=AVX2,
    a laptop's instructions)."""
    from common import devices
    from common.errors import UsageError

    try:
        devices.check_precision("bf16")
    except UsageError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def synthetic_mnist(tmp_path_factory):
    """256 training and 64 test images, IDX .gz, read-only by convention."""
    return write_mnist(tmp_path_factory.mktemp("synthetic_mnist"))


# The runs a test stops (SIGKILL, SIGTERM, SIGHUP, Ctrl-C) and resumes, per
# model: its script, options and training images, at batch STOPPED_BATCH and
# STOPPED_PER_CALL steps a graph call for 4 epochs. A test stops one inside
# an epoch by step, not by time: Held holds it at the first call's end, so
# an epoch needs only a few calls (128 images: 16 steps, 4 calls; the
# timed waits this replaced needed epochs of seconds, 1024 and 4096 images).
STOPPED_RUNS = {"dcgan": ("gan_keras/train.py", [], 128),
                "conv_vae": ("vae_keras/train.py", ["--no-data-on-device"], 128)}
STOPPED_BATCH, STOPPED_PER_CALL = 8, 4


def stopped_run(model, data_dir, out):
    """The command of STOPPED_RUNS[model], reading `data_dir` (the
    synthetic set of its size, write_mnist), into `out`."""
    script, options, _ = STOPPED_RUNS[model]
    return command(script, *options, "--data-dir", data_dir, "--out", out, "--epochs", 4,
                   "--batch-size", STOPPED_BATCH, "--seed", 2, "--metrics-every", 0,
                   "--steps-per-call", STOPPED_PER_CALL)


# write(2)'s number in /proc/PID/syscall
_WRITE = {"x86_64": "1", "amd64": "1", "aarch64": "64", "arm64": "64"}


class Held:
    """A training command started with its standard output on a
    pseudo-terminal, where the loop writes Keras's progress bar after each
    graph call of an epoch (common/training.py: only to a terminal), and
    where ^S (XOFF, as a user types it) holds the run at its next write.
    hold(epoch) waits for the line that ends the epoch before, types ^S and
    returns once the run is asleep writing: after the first graph call of
    `epoch`, STOPPED_PER_CALL steps into it, where a signal then lands
    (SIGTERM and SIGHUP save at the next step boundary, that one). Only on
    a machine too slow to type ^S within a checkpoint's save and one graph
    call does the run get further, to a later call's bar (`shown`, the last
    step the bar showed before it held, says so: 0 when it held at the
    first). release() types ^Q: the run goes on.

    `terminal`: the pseudo-terminal is the run's controlling terminal and
    all three streams, as a shell on a terminal starts a command; closing
    it (close()) hangs up, and the kernel sends SIGHUP. Otherwise it is
    stdout alone, and stderr a pipe (`stderr`, read once the run ended)."""

    def __init__(self, argv, *, terminal=False, env=None, preexec_fn=None):
        import pty
        import threading

        self.master, slave = pty.openpty()
        if terminal:
            import termios

            def start():  # in the child, after setsid: the terminal becomes its own
                import fcntl
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
                if preexec_fn:
                    preexec_fn()

            self.process = subprocess.Popen(argv, env=environment(env), stdin=slave,
                                            stdout=slave, stderr=slave,
                                            start_new_session=True, preexec_fn=start)
        else:
            self.process = subprocess.Popen(argv, env=environment(env),
                                            stdin=subprocess.DEVNULL, stdout=slave,
                                            stderr=subprocess.PIPE, text=True,
                                            preexec_fn=preexec_fn)
        os.close(slave)
        self.shown, self._closing = [], False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        """Everything the run writes to the terminal, as it comes (a full
        terminal would block the run), until every writer is gone or
        close() asks."""
        import select

        while not self._closing:
            if not select.select([self.master], [], [], 0.1)[0]:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: every writer gone
                chunk = b""
            with self._changed:
                self.shown.append(chunk)
                self._changed.notify_all()
            if not chunk:
                return

    def text(self):
        """What the run wrote to the terminal so far."""
        with self._changed:
            return b"".join(self.shown)

    def hold(self, epoch, timeout=300):
        """Hold the run at its first write in `epoch` (see the class);
        returns the last step of `epoch` its bar showed before (0: none)."""
        import platform
        import re

        deadline = time.monotonic() + timeout
        ended = re.compile(rb"Time for epoch %d is [^\n]*\n" % (epoch - 1))
        with self._changed:
            while not (found := ended.search(b"".join(self.shown))):
                assert self.process.poll() is None, (
                    f"the run ended before epoch {epoch - 1} did")
                assert time.monotonic() < deadline, f"no epoch {epoch - 1} in time"
                self._changed.wait(0.5)
        os.write(self.master, b"\x13")  # ^S
        syscall, status = (Path(f"/proc/{self.process.pid}/{name}") for name in ("syscall", "stat"))
        write = _WRITE[platform.machine().lower()]
        asleep = 0
        while asleep < 2:  # twice, 20 ms apart: not a write that passes
            assert self.process.poll() is None, f"the run ended before ^S held it in epoch {epoch}"
            assert time.monotonic() < deadline, f"^S did not hold the run in epoch {epoch}"
            time.sleep(0.02)
            state = status.read_text().rsplit(")", 1)[1].split()[0]
            asleep = asleep + 1 if (state == "S" and syscall.read_text().split()[:2]
                                    == [write, "0x1"]) else 0
        after = self.text()[found.end():]
        assert b"Time for epoch" not in after, f"epoch {epoch} ended before ^S held the run"
        bars = [(int(a), int(b)) for a, b in re.findall(rb"(\d+)/(\d+)", after)]
        assert all(a < b for a, b in bars), f"epoch {epoch}'s last call ended before ^S held"
        return max((a for a, _ in bars), default=0)

    def release(self):
        os.write(self.master, b"\x11")  # ^Q

    def send_signal(self, signum):
        self.process.send_signal(signum)

    def wait(self, timeout=300):
        return self.process.wait(timeout=timeout)

    @property
    def stderr(self):
        return self.process.stderr

    def close(self):
        """Close the terminal (with `terminal`: the run's terminal hangs up)."""
        if not self._closing:
            self._closing = True
            self._reader.join()
            os.close(self.master)


@pytest.fixture
def held():
    """held(argv, **options): a Held run of `argv`, killed if it still runs
    when the test ends (a run held by a failed test would wait for good)."""
    started = []

    def start(argv, **options):
        started.append(Held(argv, **options))
        return started[-1]

    yield start
    for run in started:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()
        run.close()


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    """uninterrupted(model): the run of STOPPED_RUNS[model] never stopped,
    trained once for the whole pytest run, for every test that stops one and
    compares the resumed run with it; uninterrupted.start(model) begins it
    in the background, for a test to train its own meanwhile."""
    root, started = tmp_path_factory.mktemp("uninterrupted"), {}

    def start(model):
        if model not in started:
            data_dir = write_mnist(root / f"data_{model}", n_train=STOPPED_RUNS[model][2])
            started[model] = subprocess.Popen(
                stopped_run(model, data_dir, root / model), env=environment(),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def finished(model):
        start(model)
        assert started[model].wait(timeout=600) == 0, started[model].stderr.read()
        return root / model

    finished.start = start
    yield finished
    for process in started.values():
        process.kill()
        process.wait()


def unavailable(what, reason):
    """Skip a test that needs `what` ("chromium", "tmpfs") this machine
    cannot give, saying why; under CI=true fail instead, unless .ci/run said
    it cannot provide it (CI_CANNOT_PROVIDE, names separated by commas): a
    CI run must not pass by skipping the only checks of a feature."""
    if (os.environ.get("CI") == "true"
            and what not in os.environ.get("CI_CANNOT_PROVIDE", "").split(",")):
        pytest.fail(f"{reason} (CI=true, and .ci/run did not say it cannot provide {what})")
    pytest.skip(reason)


@pytest.fixture
def real_mnist():
    """The real MNIST IDX directory named by MNIST_DIR, else skip."""
    path = os.environ.get("MNIST_DIR")
    if not path:
        pytest.skip("MNIST_DIR is not set: real-data test skipped")
    return Path(path)


def command(script, *args):
    """`python <script> args...` with the script's path in the checkout (or
    `python -m module ...`, `python -c code ...`), to run in the test's
    working directory."""
    return [sys.executable, script if script in ("-m", "-c") else str(ROOT / script),
            *map(str, args)]


def environment(env=None):
    """os.environ with the checkout importable (for python -m) and `env`
    (a variable set to None is removed)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    merged = {**os.environ, "PYTHONPATH": path, **(env or {})}
    return {name: value for name, value in merged.items() if value is not None}


def run_script(script, *args, env=None, timeout=600):
    """Run a train.py or `-m module` as a user would, from the test's
    temporary working directory."""
    return subprocess.run(command(script, *args), capture_output=True, text=True,
                          timeout=timeout, env=environment(env))


def free_ports(n):
    """n TCP ports free on this host now."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tree_digest(directory):
    """{relative path: sha256} of every file below `directory`."""
    directory = Path(directory)
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def history(out):
    """The rows of a run's history.csv, as strings."""
    with open(Path(out) / "history.csv", newline="") as f:
        return list(csv.DictReader(f))
