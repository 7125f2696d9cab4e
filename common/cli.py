"""What the train.py scripts share: the arguments every model takes, and
main(), which checks the arguments, the run directory and the data before
TensorFlow starts (its start-up takes seconds and writes to stderr), errors
as one line with exit status 2, then wires the model, the evaluator and the
run into the training loop. A run that stops early says why in one line
too, with its exit status: 2 bad input or a full disk, 3 diverged, 130
interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP: the
terminal closed, the ssh session dropped) (docs/reliability.md)."""
import argparse
import contextlib
import datetime
import errno
import json
import os
import random
import shlex
import shutil
import signal
import sys
from pathlib import Path

from common import arguments, data, devices, quiet
from common.arguments import (CONTROLS, ONCE, PATH, SPEED, Parser, non_negative_int,
                              positive_int, seed)
from common.atomic import nearest_existing
from common.errors import Diverged, Terminated, UsageError
from common.rundir import RunDir


def make_parser(description, *, models, epochs, batch_size, keep_epochs, presets=None,
                fp32_models=(), check=None):
    """The arguments every model takes; a train.py adds its model's own.
    `models` are the --model choices (the first is the default); `epochs`
    and `batch_size` are the report's values for that script, `keep_epochs`
    the epochs whose checkpoints a run keeps for good. `presets`,
    {model: {preset: {argument: default}}}, adds --preset: the chosen
    preset's values become the defaults (see `parse`). `fp32_models` compute
    in fp32 unless told otherwise, on every device: mixed precision
    measurably changes what they learn. `check(args, data)` is a train.py's
    own check of its arguments and data (a UsageError). Each option's role
    (common/arguments.py) says what it is to a run."""
    parser = Parser(description=description)
    parser.presets, parser.fp32_models = presets, fp32_models
    parser.check = check or (lambda args, data: None)
    add = parser.add_argument
    add("--model", choices=models, default=models[0], help="the model to train")
    if presets:
        add("--preset", default=None,
            help="the report whose model and hyperparameters to use; "
                 + "; ".join(f"{model}: {', '.join(names)}" for model, names in presets.items())
                 + " (default: the first)")
    add("--epochs", type=positive_int, default=epochs, role=CONTROLS,
        help="total epochs; a resumed run trains up to this number")
    add("--batch-size", type=positive_int, default=batch_size,
        help="images per training step")
    add("--seed", type=seed, default=None,
        help="fixes weights, noise and data order (default: drawn at random and stored in "
             "config.json; a resumed run keeps its seed)")
    add("--dataset", choices=data.DATASETS, default="mnist",
        help="the data set to train on; stacked_mnist: three MNIST digits as the colour "
             "channels of each image, 1000 modes; binarized_mnist: one fixed Bernoulli draw "
             "of MNIST's pixels, 50,000 training images, the likelihood literature's "
             "(docs/data.md)")
    add("--data-dir", default=None, role=PATH,
        help="read the data offline from this directory: the four IDX files (.gz or not) or "
             "<dataset>.npz, MNIST's for stacked_mnist and binarized_mnist (default: $MNIST_DATA_DIR or "
             "$FASHION_MNIST_DATA_DIR if set, else tensorflow-datasets)")
    add("--train-size", type=positive_int, default=None,
        help="train on the first N training images only (smoke runs)")
    add("--out", default=None, role=PATH, help="run directory (default: outputs/<model>, with the preset, "
                                    "loss and dataset appended when not the defaults)")
    add("--fresh", action="store_true", role=ONCE,
        help="replace the run already in --out instead of resuming it")
    add("--save-every", type=positive_int, default=1, role=CONTROLS,
        help="write the sample picture every K epochs (and always at the last)")
    add("--checkpoint-every", type=positive_int, default=1, role=CONTROLS,
        help="checkpoint every K epochs (and always at the last and at those of "
             "--keep-epochs); the last 3 are kept")
    add("--keep-epochs", type=arguments.epoch_list, default=keep_epochs, metavar="LIST",
        role=CONTROLS,
        help="keep the checkpoints of these epochs for good, beside the last 3, for evaluate, "
             "sample, generate and export --epoch N later: epochs separated by commas, or "
             "none (default: the report's milestones, "
             + ",".join(map(str, keep_epochs)) + ")")
    add("--on-nonfinite", choices=("stop", "rollback"), default="stop", role=CONTROLS,
        help="when a loss or a weight becomes NaN or infinite: stop with exit status 3, the "
             "last checkpoints kept; or go back to the last checkpoint at half the learning "
             "rate and train on (3 times at most, then stop)")
    add("--metrics-every", type=non_negative_int, default=10, role=CONTROLS,
        help="score 'metrics-samples' generated images (Frechet and kernel distance, "
             "classifier score, coverage, precision, recall) into metrics.csv every K epochs "
             "and at the last; 0: never")
    add("--metrics-samples", type=positive_int, default=None, role=CONTROLS,
        help="generated images per metrics evaluation, scored against as many test images "
             "(default: 10,000; on stacked_mnist 26,000, as the mode counts of the literature)")
    add("--classifier-dir", default=None, role=PATH,
        help="where the evaluation classifier is cached (default: 'classifier' beside the "
             "run directory, so outputs/classifier)")
    add("--strategy", choices=("auto", "none", "mirrored", "multiworker"), default="auto",
        role=CONTROLS,
        help="tf.distribute: mirrored over this host's GPUs, multiworker across the hosts "
             "of TF_CONFIG, auto = mirrored on several GPUs; --batch-size is the global batch")
    add("--precision", choices=("fp32", "bf16", "fp16"), default=None, role=SPEED,
        help="compute in float32, or in bfloat16 / float16 with float32 weights and losses "
             "(fp16 with loss scaling) (default: the fastest measured on the device type)")
    add("--jit", action=argparse.BooleanOptionalAction, default=None, role=SPEED,
        help="compile the train step with XLA (default: as measured fastest on the device type)")
    add("--steps-per-call", type=positive_int, default=None, role=SPEED,
        help="train steps per graph call (default: as measured fastest on the device type)")
    add("--deterministic", action="store_true", role=CONTROLS,
        help="TensorFlow's op determinism: a step computes the same bits every time, on a GPU "
             "too (no cuDNN autotuning, no atomic reductions), so that a resumed run is bit "
             "for bit the uninterrupted one there; slower (docs/reliability.md)")
    add("--profile-epoch", type=non_negative_int, default=0, role=ONCE,
        help="record a TensorFlow profile of this epoch's train steps in the run's logs/ "
             "(TensorBoard's Profile tab, with tensorboard-plugin-profile); 0: none")
    add("--data-on-device", action=argparse.BooleanOptionalAction, default=None, role=SPEED,
        help="keep the training set on the training device, shuffled and batched in the graph, "
             "rather than a tf.data pipeline from host memory (default: as measured fastest; "
             "never under a --strategy)")
    parser.set_defaults(eval_every=1)  # a model with its own evaluation adds --eval-every
    return parser


def default_out(parser, args):
    """outputs/<model>, with the preset, loss and data set appended when
    they are not the defaults (outputs/mlp_gan_report003_lsgan)."""
    defaults = {"preset": next(iter(parser.presets[args.model])) if parser.presets else None,
                "loss": parser.get_default("loss"), "dataset": "mnist"}
    parts = [args.model] + [getattr(args, key) for key, default in defaults.items()
                            if getattr(args, key, default) != default]
    return os.path.join("outputs", "_".join(parts))


def worker_out(out, tf_config):
    """The run directory of this worker of a multi-worker run. Every worker
    saves the checkpoints (a collective operation), so each needs a
    directory of its own: the chief's is --out (the one to read), another
    worker's --out-<type><index>, as TF_CONFIG's task names it."""
    if not tf_config:
        raise UsageError("--strategy multiworker needs TF_CONFIG, JSON with the cluster and "
                         "this host's task; it is not set")
    try:
        config = json.loads(tf_config)
        task, cluster = config["task"], config["cluster"]
        kind, index = task["type"], int(task["index"])
    except (TypeError, ValueError, KeyError) as error:
        raise UsageError("--strategy multiworker needs TF_CONFIG, JSON with the cluster and "
                         f"this host's task ({type(error).__name__}: {error})") from None
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return out if chief else f"{out}-{kind}{index}"


def main(parser, build, argv=None):
    """Parse and check everything, then train. `build(args, data)` returns
    the model; it imports TensorFlow, so it runs only once the input is
    known to be good. Returns the exit status."""
    args = arguments.parse(parser, argv)
    if args.out is None:
        args.out = default_out(parser, args)
    if args.strategy == "multiworker":
        try:
            args.out = worker_out(args.out, os.environ.get("TF_CONFIG"))
        except UsageError as error:
            parser.error(error)
    if args.data_dir is None:  # a stacked or binarized set's: that of the set it is made from
        source = data.MADE_FROM.get(args.dataset, args.dataset)
        args.data_dir = os.environ.get(f"{source.upper()}_DATA_DIR") or None
    try:
        devices.forced_type()  # a bad GAN_VAE_DEVICE_TYPE: one line, before TensorFlow starts
        run, stored = RunDir.open(args.out, args.model, vars(args), fresh=args.fresh,
                                  controls=parser.run_controls())
        everything = data.load(args.dataset, args.data_dir)
        dataset = everything.first(args.train_size) if args.train_size else everything
        if args.batch_size > len(dataset.train_images):
            raise UsageError(f"--batch-size {args.batch_size} is larger than the training set "
                             f"({len(dataset.train_images)} images)")
        parser.check(args, dataset)
    except UsageError as error:
        parser.error(error)
    if args.seed is None:
        args.seed = stored["args"]["seed"] if stored else random.randrange(2**31)

    quiet.start_tensorflow()
    import keras

    from common import training

    # the run's precision is for this run only: an in-process caller (the
    # tests) gets the policy back as it was
    policy = keras.mixed_precision.global_policy()
    terminate = training.StopRequest()  # SIGTERM, SIGHUP: save at the next step and stop
    handlers = {}  # the signal handlers to put back, once ours are in
    try:
        strategy = devices.make_strategy(args.strategy)  # first: it may configure the runtime
        for name, value in devices.speed_defaults(
                fp32=args.model in parser.fp32_models).items():
            if getattr(args, name) is None:
                setattr(args, name, value)
        devices.check_precision(args.precision)
        devices.check_jit(args.jit, strategy)
        if args.deterministic:  # for this process: TensorFlow has no public way back
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        evaluator = None
        if args.metrics_every:  # first: training the classifier reseeds Keras
            from common.evaluation import classifier
            from common.evaluation.evaluator import Evaluator

            trained = classifier.load_or_train(everything, classifier.cache_dir(
                run.path, args.classifier_dir))
            evaluator = Evaluator(trained, everything, args.metrics_samples)
        device = devices.describe(strategy)
        keras.mixed_precision.set_global_policy(devices.PRECISIONS[args.precision])
        if note := devices.precision_note(args.precision):
            print(f"{parser.prog}: note: {note}", file=sys.stderr)
        # until here SIGTERM and SIGHUP kill at once (nothing to lose); from here they save
        handlers = _catch(terminate, interrupt=args.strategy != "multiworker")
        keras.utils.set_random_seed(args.seed)
        with strategy.scope() if strategy else contextlib.nullcontext():
            model = build(args, dataset)
        if args.batch_size * model.batches_per_step > len(dataset.train_images):
            raise UsageError(f"a train step takes {model.batches_per_step} batches of "
                             f"{args.batch_size} images, more than the training set's "
                             f"{len(dataset.train_images)}: choose a smaller --batch-size")
        run.start({"model": args.model, "args": vars(args), "data": dataset.source,
                   "test_data": data.test_data(vars(args)),  # what its numbers are on
                   "command": resume_command(parser, vars(args),
                                             sys.modules[build.__module__].__file__),
                   "device": device,
                   "versions": devices.versions("tensorflow", "keras", "tensorflow-datasets",
                                                "numpy"),
                   "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")},
                  fresh=args.fresh)
        replicas = f", {strategy.num_replicas_in_sync} replicas" if strategy else ""
        print(f"Training {args.model} on {device}{replicas}: {len(dataset.train_images)} "
              f"{args.dataset} training images, batch {args.batch_size}, {args.precision}"
              f"{', deterministic ops' if args.deterministic else ''}, seed "
              f"{args.seed}, into {run.path}", flush=True)
        training.train(model, dataset, run, args, evaluator=evaluator, strategy=strategy,
                       stop=terminate)
    except KeyboardInterrupt:
        print(f"\n{parser.prog}: interrupted; " + (
            f"run the same command again to resume from the last checkpoint in {run.path}"
            if _resumable(run, stored) else "the run had not begun: nothing was written"),
            file=sys.stderr)
        return 130
    except UsageError as error:  # found once TensorFlow runs: the lock, the checkpoints, a
        # --classifier-dir that cannot be written
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except (Diverged, Terminated) as stopped:
        print(f"{parser.prog}: {_stopped(stopped, args)}", file=sys.stderr)
        return stopped.status
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"{parser.prog}: error: {_disk_full(error, run, _resumable(run, stored))}", file=sys.stderr)
        return 2
    finally:
        keras.mixed_precision.set_global_policy(policy)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        run.close()
    return 0


def _catch(terminate, interrupt=True):
    """SIGTERM and SIGHUP call `terminate` from now on (SIGHUP unless it is
    ignored, as under nohup), and with `interrupt` so does a first Ctrl-C
    (SIGINT, unless it is ignored), a second one stopping at once
    (KeyboardInterrupt); returns the handlers they had. Once the terminal
    is gone, writing to it fails: SIGHUP also points the standard streams
    that are a terminal at /dev/null, so that the run saves and its line
    reaches stderr where stderr is a file. (A multi-worker run saves on
    TensorFlow's preemption notice, not on `terminate`: Ctrl-C stops it at
    once.)"""
    terminals = [fd for fd in (1, 2) if os.isatty(fd)]  # asked now: a hung-up one says no

    def hung_up(signum, frame):
        with open(os.devnull, "w") as devnull:
            for fd in terminals:
                os.dup2(devnull.fileno(), fd)
        terminate(signum, frame)

    def interrupted(signum, frame):
        if terminate.is_set():  # asked again: stop now, the epoch in progress lost
            raise KeyboardInterrupt
        print(" Ctrl-C: saving at the next step, then stopping (again: at once)",
              file=sys.stderr, flush=True)
        terminate(signum, frame)

    handlers = {signal.SIGTERM: signal.signal(signal.SIGTERM, terminate)}
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        handlers[signal.SIGHUP] = signal.signal(signal.SIGHUP, hung_up)
    if interrupt and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        handlers[signal.SIGINT] = signal.signal(signal.SIGINT, interrupted)
    return handlers


STOPPED = {signal.SIGTERM: "terminated (SIGTERM)", signal.SIGHUP: "hung up (SIGHUP)",
           signal.SIGINT: "interrupted (Ctrl-C)"}


def _stopped(stopped, args):
    """The line that says why a run stopped early, and what to do."""
    if isinstance(stopped, Terminated):
        where = (f"{stopped.step} steps into epoch {stopped.epoch + 1}" if stopped.step
                 else f"after epoch {stopped.epoch}")
        return (f"{STOPPED[stopped.signal]}: checkpoint saved {where}; run the same command "
                f"again to resume there")
    tries = ["--precision fp32"] if args.precision != "fp32" else []
    if not stopped.checkpoint:
        resume = "there is no checkpoint yet"
    elif args.on_nonfinite == "stop":
        resume = f"the same command resumes from its checkpoint of epoch {stopped.checkpoint}"
        tries.insert(0, "--on-nonfinite rollback (from there at half the learning rate)")
    else:
        resume = (f"after {stopped.rollbacks} rollbacks at half the learning rate, its "
                  f"checkpoints end at epoch {stopped.checkpoint}")
    tries.append("a fresh start (--fresh) with a lower --lr or another --seed")
    return (f"diverged in epoch {stopped.epoch}: {stopped.what}. Nothing of epoch "
            f"{stopped.epoch} was written and {resume}; try {', or '.join(tries)}")


def _resumable(run, stored):
    """Whether the same command would resume something: a run found in the
    directory, or this one once started (start takes the run's lock)."""
    return stored is not None or run.lock is not None


def _disk_full(error, run, resumable):
    """The line for a full disk: the file, the space free and needed."""
    needed = run.checkpoint_bytes()
    free = shutil.disk_usage(nearest_existing(error.filename or run.path)).free
    return (f"no space left on the device for {error.filename} ({_mb(free)} free"
            + (f"; a checkpoint of this run needs {_mb(needed)}" if needed else "")
            + "); free some space, then run the same command again"
            + (" to resume from the last checkpoint" if resumable else ""))


def _mb(size):
    return f"{size / 1e6:.1f} MB"


ROOT = Path(__file__).resolve().parents[1]  # the repository's, where the commands are run


def resume_command(parser, args, script):
    """The command, from the repository root, that resumes a run of the
    train.py file `script` with `args`: each argument that differs from
    its default for the run's model and preset, paths made relative to the
    repository, or absolute (config.json's "command"; a run's page shows it)."""
    argv, paths = [], parser.options(PATH)
    if args["model"] != parser.get_default("model"):
        argv += ["--model", args["model"]]
    if args.get("preset") and args["preset"] != next(iter(parser.presets[args["model"]])):
        argv += ["--preset", args["preset"]]
    for key, default in vars(arguments.parse(parser, argv)).items():
        value = args.get(key)
        if (key not in ("model", "preset", *parser.options(SPEED, ONCE)) and value is not None
                and value != default):
            argv += [f"--{key.replace('_', '-')}", _from_root(value) if key in paths
                     else _text(value)]
    return shlex.join(["python", _from_root(script), *argv])


def _text(value):
    """An argument's value as its option takes it (--keep-epochs: 5,50)."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) or "none"
    return str(value)


def _from_root(path):
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
