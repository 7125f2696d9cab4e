"""Opening a run directory for the commands that read runs (evaluate,
sample, compare): its model rebuilt from config.json by the train.py script
that made it, with the latest checkpoint restored.

`check` needs no TensorFlow, so a command can reject a bad RUN_DIR with one
line before TensorFlow starts; `open_run` then loads it. `expand` and
`names` turn the paths a command is given (runs, or sweeps' directories
of runs) into runs with short unique names."""
import argparse
import dataclasses
import importlib
from pathlib import Path

from common import arguments, quiet
from common import data as data_module
from common.errors import UsageError
from common.rundir import RunDir

# The train.py scripts: each lists its MODELS and builds one with build(args, data).
SCRIPTS = ("gan_keras.train", "vae_keras.train")


@dataclasses.dataclass
class Run:
    run: RunDir
    config: dict
    data: data_module.Data  # the whole data set, whatever --train-size the run used
    model: object
    epoch: int  # of the restored checkpoint


def check(path):
    """The run's config.json, or a UsageError saying why `path` is no run."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise UsageError(f"{run.path} is not a directory")
    config = run.read_config()
    if config is None:
        raise UsageError(f"{run.path} holds no run (no config.json)")
    if not any(run.checkpoints.glob("*.index")):
        raise UsageError(f"{run.path} has no checkpoint yet")
    return config


def script_for(model_name):
    """The train.py module that builds `model_name`."""
    for name in SCRIPTS:
        module = importlib.import_module(name)
        if model_name in module.MODELS:
            return module
    raise UsageError(f"no script builds a model called {model_name!r}")


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


def open_run(path, data_dir=None):
    """Rebuild the run's model and restore its latest checkpoint; read its
    data from `data_dir`, else from where the run read it."""
    config = check(path)
    args = stored_args(config)
    data = data_module.load(args.dataset, data_dir or args.data_dir)

    quiet.start_tensorflow()  # once the run and its data are found
    import keras

    from common import training

    keras.utils.set_random_seed(args.seed)
    model = script_for(config["model"]).build(args, data)
    run = RunDir(path)
    return Run(run, config, data, model, training.restore(model, run))


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


def collect(paths):
    """The runs of `paths` (expand) and their configs, or a UsageError:
    a path holds no run, a run is given twice, or the runs are on
    different data sets (their metrics would not compare)."""
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
