"""Opening a run directory, for the commands that read runs (evaluate,
sample, generate, export, compare) and for Python (docs/python.md): its
model rebuilt from config.json by the train.py script that made it, with its
latest checkpoint restored, or that of a kept epoch.

`check` needs no TensorFlow, so a command (`command`) can reject a bad
RUN_DIR (or an epoch it did not keep) with one line before TensorFlow
starts; `open_run` then loads it. `expand` and `names` turn the paths a
command is given (runs, or sweeps' directories of runs) into runs with
short unique names."""
import argparse
import dataclasses
import functools
import importlib
from pathlib import Path

from common import arguments, quiet
from common import data as data_module
from common.atomic import check_directory
from common.errors import UsageError
from common.rundir import RunDir

# The train.py scripts: each lists its MODELS and builds one with build(args, data).
SCRIPTS = ("gan_keras.train", "vae_keras.train")


@dataclasses.dataclass
class Run:
    """A trained run, opened: what open_run returns."""

    run: RunDir
    config: dict  # config.json: the model, every argument, the command, the versions
    data: data_module.Data  # the whole data set, whatever --train-size the run used
    model: object  # the GenerativeModel (common/model.py), its networks in model.networks
    epoch: int  # of the restored checkpoint

    def sample(self, n, seed=0, digit=None):
        """n images of the model, float32 [n, 28, 28] (or [n, 28, 28, 3],
        stacked) in [0, 1], the same for the same seed; `digit`: a
        conditional model's (default: every digit in turn)."""
        return self.model.sample(n, seed, digit)

    @property
    def history(self):
        """history.csv: one dict per epoch (seconds, losses, memory)."""
        return self.run.read_table("history")

    @property
    def metrics(self):
        """metrics.csv: one dict per scored epoch (FD, KID, ...)."""
        return self.run.read_table("metrics")

    @property
    def epochs(self):
        """The epochs whose checkpoint open_run(..., epoch=) can restore."""
        return self.run.checkpoint_epochs()


def check(path, epoch=None):
    """The run's config.json, or a UsageError saying why `path` is no run,
    or why `epoch` (when given) cannot be opened in it."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise UsageError(f"{run.path} is not a directory")
    config = run.read_config()
    if config is None:
        raise UsageError(f"{run.path} holds no run (no config.json)")
    if not any(run.checkpoints.glob("*.index")):
        raise UsageError(f"{run.path} has no checkpoint yet")
    if epoch is not None and run.checkpoint(epoch) is None:
        kept = run.checkpoint_epochs()
        raise UsageError(f"{run.path} kept no checkpoint of epoch {epoch}; it has epochs "
                         + (", ".join(map(str, kept)) if kept else "none")
                         + " (a run keeps those of --keep-epochs and its last 3)")
    return config


def script_for(model_name):
    """The train.py module that builds `model_name`."""
    for name in SCRIPTS:
        module = importlib.import_module(name)
        if model_name in module.MODELS:
            return module
    raise UsageError(f"no script builds a model called {model_name!r}")


@functools.cache
def run_controls(model_name):
    """The options of `model_name`'s script a resumed run may change, the
    others define the run (Parser.run_controls)."""
    return script_for(model_name).make_parser().run_controls()


def stored_args(config):
    """The run's arguments as its script parses them: config.json's, over
    today's defaults for its model and preset (a run made before an option
    existed has none stored; it trained with what is now its default)."""
    stored = config["args"]
    argv = ["--model", config["model"]]
    if stored.get("preset"):
        argv += ["--preset", stored["preset"]]
    defaults = vars(arguments.parse(script_for(config["model"]).make_parser(), argv))
    return argparse.Namespace(**{**defaults, **stored})


def open_run(path, epoch=None, *, data_dir=None):
    """The run at `path`, its model rebuilt and its latest checkpoint
    restored, or the one at the end of `epoch` (a kept epoch, or one of the
    last 3); its data read from `data_dir`, else from where the run read
    it. A UsageError, with the reason in one line, for a run that cannot be
    opened."""
    config = check(path, epoch)
    args = stored_args(config)
    data = data_module.load(args.dataset, data_dir or args.data_dir)

    quiet.start_tensorflow()  # once the run and its data are found
    import keras

    from common import checkpoints

    keras.utils.set_random_seed(args.seed)
    model = script_for(config["model"]).build(args, data)
    run = RunDir(path)
    return Run(run, config, data, model, checkpoints.restore(model, run, epoch))


def conditional(model_name):
    """Whether the model draws a digit it is given (--digit), known before
    TensorFlow starts."""
    return model_name in getattr(script_for(model_name), "CONDITIONAL", ())


def add_arguments(parser):
    """What a command that draws from one run takes: RUN_DIR, --epoch,
    --seed, --digit and --data-dir (read by `open_from`)."""
    add = parser.add_argument
    add("run_dir", help="a run directory written by a train.py")
    add("--epoch", type=arguments.positive_int, default=None,
        help="the checkpoint at the end of this epoch, one the run kept (--keep-epochs, or one "
             "of its last 3) (default: the latest)")
    add("--seed", type=arguments.seed, default=0, help="seed of the generating noise")
    add("--digit", type=int, choices=range(10), default=None, metavar="DIGIT",
        help="a conditional model (cvae) draws only this digit (default: every digit in turn)")
    add("--data-dir", default=None, help="read the data from here instead of where the run "
                                         "read it")


def open_from(args):
    """The run `add_arguments` named, opened; a UsageError, before
    TensorFlow starts, for a RUN_DIR, --epoch or --digit it cannot take."""
    config = check(args.run_dir, args.epoch)
    if args.digit is not None and not conditional(config["model"]):
        raise UsageError(f"--digit: a {config['model']} is not conditional on the digit")
    return open_run(args.run_dir, args.epoch, data_dir=args.data_dir)


def expand(paths):
    """The run directories of `paths`: each a run, or a sweep's directory
    whose runs (subdirectories, at any depth, with config.json) are taken."""
    found = []
    for path in map(Path, paths):
        if path.is_dir() and not (path / "config.json").exists():
            inside = sorted(config.parent for config in path.rglob("config.json"))
            if inside:
                found += inside
                continue
        found.append(path)
    return found


def collect(paths, out):
    """The runs of `paths` (expand) and their configs, for a command that
    writes into the directory `out` (--out); or a UsageError: `out` cannot
    be written, a path holds no run, a run is given twice, or the runs are
    on different data sets (their metrics would not compare)."""
    check_directory(out, "--out")
    found = expand(paths)
    configs = [check(path) for path in found]
    if len({Path(path).resolve() for path in found}) < len(found):
        raise UsageError("a run is given twice")
    datasets = {config["args"]["dataset"] for config in configs}
    if len(datasets) > 1:
        raise UsageError(f"the runs are on different data sets ({', '.join(sorted(datasets))})")
    return found, configs


def names(paths):
    """A short, unique name per run: its directory's name, with as many of
    its parents as it takes to tell it from the others (seeds_dcgan/seed_1)."""
    parts = [Path(path).resolve().parts for path in paths]
    depth = 1
    while len({part[-depth:] for part in parts}) < len(parts) and depth < max(map(len, parts)):
        depth += 1
    return ["/".join(part[-depth:]) for part in parts]


def command(parser, argv, work):
    """Run a command: `argv` parsed by `parser`, then work(args), whose
    value is the exit status; a UsageError (a RUN_DIR, --epoch or --out it
    cannot take) is the parser's error, one line with exit status 2."""
    args = parser.parse_args(argv)
    try:
        return work(args)
    except UsageError as error:
        parser.error(error)
