"""A trained run's generative networks in files that outlive this project:
plain Keras files, a TensorFlow SavedModel to serve, and a model card.

    python -m common.export RUN_DIR [--epoch N] [--out DIR]

writes into DIR (default RUN_DIR/export/epoch_N, N the latest checkpoint's
epoch or --epoch, a kept one):
- NAME.keras for each network the model exports (a GAN's generator; a VAE's
  or the VAE-GAN's decoder and encoder), which keras.saving.load_model
  loads with nothing of this project: the networks are plain Keras layers;
- saved_model/, a TensorFlow SavedModel whose serving signature takes the
  generator's inputs (the noise or latent code; InfoGAN's codes, the
  conditional VAE's digit) and returns `images`, uint8 [n, 28, 28,
  channels], 0 = black, the images `sample` makes of the same inputs
  (tf.saved_model.load, TensorFlow Serving);
- export.json: the model, preset, epoch, data set, every input's shape,
  dtype and distribution, each network's input and output, the metrics of
  that epoch where it was scored, the library versions, and the commands
  that trained and exported it;
- README.md, the model card: the same in words, and three lines of Python
  that load the generator and sample it.
It is written into a temporary folder beside DIR and renamed into place:
whole or not at all, an export already in DIR replaced only at the end."""
import datetime
import json
import math
import shlex
import shutil
import sys
from pathlib import Path

from common import data, devices, runs
from common.arguments import Parser, positive_int
from common.atomic import TEMPORARY, check_directory
from common.errors import UsageError

FORMAT = 1  # of export.json


def make_parser():
    parser = Parser(prog="python -m common.export", description=__doc__)
    parser.add_argument("run_dir", help="a run directory written by a train.py")
    parser.add_argument("--epoch", type=positive_int, default=None,
                        help="export the checkpoint at the end of this epoch, one the run kept "
                             "(--keep-epochs, or one of its last 3) (default: the latest)")
    parser.add_argument("--out", default=None,
                        help="the folder to write (default: RUN_DIR/export/epoch_N): a new or "
                             "empty one, or an earlier export, which is replaced")
    parser.add_argument("--data-dir", default=None,
                        help="read the data from here instead of where the run read it")
    return parser


def export(loaded, out):
    """Write the export of `loaded` (a runs.Run) into `out`, whole or not
    at all; returns export.json's contents."""
    import keras

    out = Path(out)
    partial = out.with_name(f".{out.name}{TEMPORARY}export")
    shutil.rmtree(partial, ignore_errors=True)  # an export killed before its rename
    partial.mkdir(parents=True)
    try:
        model = loaded.model
        for name, network in model.exported.items():
            network.save(partial / f"{name}.keras")
        serving_archive(model).write_out(str(partial / "saved_model"), verbose=False)
        card = describe(loaded, out)
        (partial / "export.json").write_text(json.dumps(card, indent=2, allow_nan=False) + "\n")
        (partial / "README.md").write_text(model_card(card))
        if out.exists():  # the old export goes only once the new one is whole
            old = out.with_name(f".{out.name}{TEMPORARY}old")
            shutil.rmtree(old, ignore_errors=True)
            out.replace(old)
            partial.replace(out)
            shutil.rmtree(old)
        else:
            partial.replace(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    keras.backend.clear_session()
    return card


def serving_archive(model):
    """A Keras ExportArchive of the model's networks with one endpoint,
    `serve`, also the SavedModel's default serving signature: the
    generator's inputs by name in, {"images": uint8 [n, 28, 28, channels]}
    out, computed as model.generate computes them."""
    import keras
    import tensorflow as tf

    from common.images import to_uint8_tensor

    archive = keras.export.ExportArchive()
    for network in model.exported.values():
        archive.track(network)
    specs = {name: tf.TensorSpec([None, *spec.shape], spec.dtype, name=name)
             for name, spec in model.inputs.items()}

    @tf.function(input_signature=[specs])
    def serve(inputs):
        return {"images": to_uint8_tensor(model.generate(inputs))}

    archive.add_endpoint("serve", serve)
    return archive


def describe(loaded, out):
    """export.json's contents."""
    model, config, epoch = loaded.model, loaded.config, loaded.epoch
    card = model.export_card()
    channels = loaded.data.channels
    scored = [row for row in loaded.metrics if row["epoch"] == epoch]
    evaluation = loaded.run.evaluation_path(epoch)
    if not evaluation.exists():
        evaluation = loaded.run.evaluation_path()
    evaluated = json.loads(evaluation.read_text()) if evaluation.exists() else None
    return {
        "format": FORMAT,
        "model": config["model"],
        "preset": config["args"].get("preset"),
        "epoch": epoch,
        "dataset": config["args"]["dataset"],
        "data": config.get("data"),
        "test_data": data.test_data(config["args"]),  # what its numbers were computed on
        "seed": config["args"]["seed"],
        "inputs": {name: {"shape": [None, *spec.shape], "dtype": spec.dtype,
                          "distribution": spec.distribution}
                   for name, spec in model.inputs.items()},
        "networks": {name: {"file": f"{name}.keras", **card["networks"][name]}
                     for name in model.exported},
        "computes_in": next(iter(model.exported.values())).dtype_policy.name,
        "serving": {"saved_model": "saved_model", "signature": "serving_default",
                    "endpoint": "serve", "inputs": list(model.inputs),
                    "output": {"images": {"shape": [None, 28, 28, channels], "dtype": "uint8",
                                          "range": "0 (black) to 255"}}},
        "python": card["python"],
        "metrics": ({k: v for k, v in scored[-1].items() if k != "epoch" and math.isfinite(v)}
                    if scored else None),  # a blank cell (not measured that epoch) left out
        "evaluation": ({"settings": evaluated["settings"], "metrics": evaluated["metrics"],
                        "likelihood": evaluated["likelihood"]}
                       if evaluated and evaluated["settings"]["epoch"] == epoch else None),
        "trained": {"command": config.get("command"), "device": config.get("device"),
                    "precision": config["args"].get("precision"),
                    "versions": config.get("versions"), "started": config.get("started")},
        "exported": {"command": shlex.join(["python", "-m", "common.export",
                                            str(loaded.run.path), "--epoch", str(epoch),
                                            "--out", str(out)]),
                     "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                     "versions": devices.versions("tensorflow", "keras", "numpy")},
    }


def model_card(card):
    """README.md: export.json in words."""
    inputs = "\n".join(f"- `{name}`: {', '.join(map(str, spec['shape'][1:])) or 'one value'} "
                       f"per image, {spec['dtype']}, {spec['distribution']}"
                       for name, spec in card["inputs"].items())
    networks = "\n".join(f"- `{spec['file']}`: input {spec['input']}; output {spec['output']}"
                         for spec in card["networks"].values())
    metrics = card["evaluation"]["metrics"] if card["evaluation"] else card["metrics"]
    scored = ("\n".join(f"- {name}: {value:.4g}" for name, value in metrics.items()
                        if isinstance(value, (int, float)))
              if metrics else "- not scored at this epoch (see common.evaluation.evaluate)")
    first = next(iter(card["networks"]))
    serve_inputs = ", ".join(f"{name}=..." for name in card["inputs"])  # keyword arguments
    preset = f", preset {card['preset']}" if card["preset"] else ""
    return f"""# {card['model']}{preset}, epoch {card['epoch']}, trained on {card['dataset']}

Exported by `{card['exported']['command']}` on {card['exported']['date'][:10]}, from a run
trained with `{card['trained']['command']}` (seed {card['seed']}, data: {card['data']},
precision {card['trained']['precision']}). The files compute in {card['computes_in']}.

## Inputs

{inputs}

## Files

{networks}
- `saved_model/`: a TensorFlow SavedModel; its signature `serving_default` (and its
  function `serve`) takes {', '.join(f'`{name}`' for name in card['inputs'])} and returns
  `images`, uint8 [n, 28, 28, {card['serving']['output']['images']['shape'][-1]}], 0 = black.

## Use

With Keras and numpy alone, 16 images in [0, 1] from `{first}.keras`:

```python
{card['python']}
```

Served, with TensorFlow alone:
`tf.saved_model.load("saved_model").signatures["serving_default"]({serve_inputs})["images"]`.

## Metrics at this epoch

On the test data: {card['test_data']}.

{scored}

## Versions

Trained with {_words(card['trained']['versions'])}; exported with
{_words(card['exported']['versions'])}.
"""


def _words(versions):
    return ", ".join(f"{name} {version}" for name, version in (versions or {}).items()
                     if version) or "unknown versions"


def check_replaceable(out):
    """A UsageError unless `out` is new, an empty folder or an earlier
    export (it has export.json): export replaces what is there, and must
    never take a run, or any other folder, with it."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory")
    if any(out.iterdir()) and not (out / "export.json").is_file():
        raise UsageError(f"--out {out} holds files but no earlier export (no export.json): "
                         f"choose a new or empty folder")


def main(argv=None):
    return runs.command(make_parser(), argv, export_run)


def export_run(args):
    """The command: RUN_DIR and --out checked, then the run opened and exported."""
    runs.check(args.run_dir, args.epoch)
    if args.out is not None:
        check_replaceable(Path(args.out))
        check_directory(Path(args.out).parent, "the folder of --out")
    else:
        check_directory(runs.RunDir(args.run_dir).path, "RUN_DIR")
    loaded = runs.open_run(args.run_dir, args.epoch, data_dir=args.data_dir)
    out = Path(args.out or loaded.run.exports / f"epoch_{loaded.epoch:04d}")
    out.parent.mkdir(parents=True, exist_ok=True)
    card = export(loaded, out)
    print(f"Exported {card['model']} at epoch {card['epoch']} to {out}: "
          + ", ".join(f"{name}.keras" for name in card["networks"])
          + ", saved_model/, export.json, README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
