"""Several independent runs of an experiment (seeds, learning rates, the
parity variants), each its own process, run one after another, N at once on
this machine, or handed to a Ray cluster: the sweeps' one way to run, so
that each experiment only says which runs it wants.

A run is a command line (a train.py, which resumes its run directory, or a
reference loop); running a sweep again runs every command again, and a
train.py whose run has finished says so and stops. Exit statuses: 0 done; 2
(bad input) and 3 (diverged) are final; any other (killed, preempted) is
retried on a cluster, where the run resumes from its checkpoint on whichever
worker takes it."""
import dataclasses
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common.errors import UsageError
from common.runs import script_for

ROOT = Path(__file__).resolve().parents[2]
FINAL = (0, 2, 3)  # exit statuses that running the command again would not change
RETRIES = 3  # on a cluster: how often a killed or preempted run is started again


@dataclasses.dataclass(frozen=True)
class Run:
    name: str  # printed before each of its lines when several run at once
    command: tuple  # the argv, with absolute paths: it may run on another host


def refuse(training, options):
    """A UsageError if the training arguments set one of `options`, which
    the sweep sets itself, in any spelling (--seed 1, --seed=1)."""
    for option in options:
        if any(token == option or token.startswith(f"{option}=") for token in training):
            raise UsageError(f"the sweep sets {option} itself")


def training_run(name, script, model, training, seed_, directory):
    """A Run of `script` (a train.py module) training `model` with the
    `training` arguments under `seed_` (None: the script's own, or a --seed
    in `training`) into `directory`."""
    seeded = () if seed_ is None else ("--seed", str(seed_))
    return Run(name, (sys.executable, script.__file__, "--model", model, *training, *seeded,
                      "--out", str(Path(directory).resolve())))


def add_options(parser):
    """--workers and --cluster, for every sweep."""
    parser.add_argument("--workers", type=int, default=1,
                        help="runs at once on this machine: one GPU each when there are GPUs, "
                             "else the CPU's threads divided between them")
    parser.add_argument("--cluster", default=None, metavar="ADDRESS",
                        help="hand each run to the Ray cluster at ADDRESS (one task per run, "
                             "one GPU per task where the cluster has GPUs; 'local' starts one "
                             "on this machine); the repository and the run directories must be "
                             "at the same paths on every node (shared storage); needs "
                             "pip install -r requirements-cluster.txt")


def check_options(args):
    """A UsageError for impossible --workers/--cluster, before any run starts."""
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected a whole number >= 1")
    if args.cluster is not None:
        _ray()


def parse(parser, argv, set_by_the_sweep):
    """A training sweep's arguments, the train.py arguments it passes on,
    and the train.py module of its --model; the parser's error (one line)
    for impossible --workers/--cluster, a model no script builds, or an
    option in set_by_the_sweep(args), which the sweep sets itself."""
    args, training = parser.parse_known_args(argv)
    try:
        check_options(args)
        script = script_for(args.model)
        refuse(training, set_by_the_sweep(args))
    except UsageError as error:
        parser.error(error)
    return args, training, script


def run(parser, runs, args):
    """Run every run (by --workers or --cluster: run_all): whether all ended
    with status 0, else False and a line naming the others on stderr."""
    failed = [f"{name} (exit {status})"
              for name, status in run_all(runs, args.workers, args.cluster).items() if status]
    if failed:
        print(f"{parser.prog}: runs that failed: {', '.join(failed)}", file=sys.stderr)
    return not failed


def run_all(runs, workers=1, cluster=None):
    """Run every run; returns {name: exit status}."""
    if cluster is not None:
        return _on_ray(runs, cluster)
    if workers == 1:  # one after the other, in the foreground
        (slot,) = _slots(1)
        return {run.name: subprocess.run(run.command, env={
            **os.environ, **({} if _asks_for_several_devices(run.command) else slot)}
        ).returncode for run in runs}
    slots = queue.Queue()
    for slot in _slots(workers):
        slots.put(slot)

    def one(run):
        environment = slots.get()
        try:
            return _prefixed(run, {**os.environ, **environment})
        finally:
            slots.put(environment)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip((run.name for run in runs), pool.map(one, runs)))


def _slots(workers):
    """Each local worker's environment: one GPU, round robin, whatever
    --workers is (a run trains on one device, as it would alone), or an
    equal share of the CPU's threads (TensorFlow's and oneDNN's). Workers
    that share a GPU (more workers than GPUs) each take its memory as they
    need it: by default TensorFlow reserves nearly all of a GPU's memory in
    the first process to start, and the others would fail or crawl."""
    gpus = _gpus()
    if gpus:
        shared = {"TF_FORCE_GPU_ALLOW_GROWTH": "true"} if workers > len(gpus) else {}
        return [{"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)], **shared} for i in range(workers)]
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    return [{"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1",
             "OMP_NUM_THREADS": threads}] * workers


def _asks_for_several_devices(command):
    """Whether a run's command asks for several devices (--strategy
    mirrored or multiworker): with one worker it then sees every GPU."""
    words = " ".join(command).replace("--strategy=", "--strategy ")
    return "--strategy mirrored" in words or "--strategy multiworker" in words


def _gpus():
    """This machine's GPUs as CUDA_VISIBLE_DEVICES names them, without
    starting TensorFlow: each GPU's index, or, for a GPU split into MIG
    instances, each instance's UUID (a MIG instance is a device of its own,
    and only its UUID selects it)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [index.strip() for index in visible.split(",")
                if index.strip() not in ("", "-1")]
    if not shutil.which("nvidia-smi"):
        return []
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return [] if listed.returncode else devices_listed(listed.stdout)


def devices_listed(listing):
    """The devices of `nvidia-smi -L`'s output, as _gpus gives them."""
    found = []  # [GPU index, [its MIG UUIDs]]
    for line in listing.splitlines():
        gpu = re.match(r"GPU (\d+):", line.strip())
        mig = re.match(r"MIG .*\(UUID: (MIG-[^)]+)\)", line.strip())
        if gpu:
            found.append([gpu.group(1), []])
        elif mig and found:
            found[-1][1].append(mig.group(1))
    return [device for index, migs in found for device in (migs or [index])]


_print = threading.Lock()


def _prefixed(run, environment):
    """Run one command, each line of its output printed after its name."""
    process = subprocess.Popen(run.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=environment)
    for line in process.stdout:
        with _print:
            print(f"[{run.name}] {line}", end="", flush=True)
    return process.wait()


def _ray():
    try:
        import ray
    except ImportError:
        raise UsageError("--cluster needs Ray, which is not installed: "
                         "pip install -r requirements-cluster.txt") from None
    return ray


def _on_ray(runs, address):
    """One Ray task per run, retried (and so resumed) when its process is
    killed or preempted, up to RETRIES times."""
    ray = _ray()
    # the workers import this module (the task) from the repository's path
    ray.init(address=address, include_dashboard=False, logging_level="warning",
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                 filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}})
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=RETRIES,
                          retry_exceptions=[_Unfinished])(_run_to_the_end)
        futures = [task.remote(run.command) for run in runs]
        statuses = {}
        for run, future in zip(runs, futures):
            try:
                statuses[run.name] = ray.get(future)
            except ray.exceptions.RayError as error:  # gave up after RETRIES
                print(f"[{run.name}] did not finish: {str(error).strip().splitlines()[-1]}",
                      file=sys.stderr)
                statuses[run.name] = 1
        return statuses
    finally:
        ray.shutdown()


class _Unfinished(Exception):
    """A run's process ended before its run did (killed, preempted)."""


def _run_to_the_end(command):
    """A Ray task: the command's exit status, or _Unfinished (so that Ray
    starts the task again, on any worker, and the run resumes)."""
    status = subprocess.run(list(command)).returncode
    if status not in FINAL:
        raise _Unfinished(f"exit status {status}")
    return status
