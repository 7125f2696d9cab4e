"""The shared training loop, driven through gan_keras/train.py in this
process: every output of a run, resume, reproducibility, refusals."""
import json

import numpy as np
import pytest
from conftest import history, tree_digest
from PIL import Image

from gan_keras import train

LOSSES = ["g_loss", "d_loss", "d_real", "d_fake"]
HISTORY_COLUMNS = ["epoch", "seconds", "train_seconds", "images_per_sec", *LOSSES, "host_mb"]


def run(data_dir, out, *args):
    """Train on the synthetic set (256 images, batch 64: 4 steps an epoch)."""
    return train.main(["--data-dir", str(data_dir), "--out", str(out), "--batch-size", "64",
                       *map(str, args)])


def losses(out):
    return np.array([[float(row[c]) for c in LOSSES] for row in history(out)])


def test_two_epoch_run_writes_every_output(synthetic_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(synthetic_mnist, out, "--epochs", 2, "--seed", 3) == 0
    printed = capsys.readouterr().out
    assert "Training dcgan on CPU" in printed
    assert "Time for epoch 1 is" in printed and "Time for epoch 2 is" in printed

    rows = history(out)
    assert list(rows[0]) == HISTORY_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for r in rows:
        # both written to 7 digits (at most 7e-7 apart); measured: 5.1e-8
        assert float(r["images_per_sec"]) == pytest.approx(256 / float(r["seconds"]), rel=1e-6)
        assert 0 < float(r["train_seconds"]) < float(r["seconds"])
        assert 100 < float(r["host_mb"]) < 100_000
        assert 0 < float(r["d_real"]) < 1 and 0 < float(r["d_fake"]) < 1
        assert np.isfinite([float(r[c]) for c in LOSSES]).all()

    config = json.loads((out / "config.json").read_text())
    assert set(config["args"]) == set(vars(train.make_parser().parse_args([])))
    assert config["args"]["seed"] == 3 and config["model"] == "dcgan"
    assert config["versions"]["tensorflow"].startswith("2.")
    assert config["device"].startswith("CPU") and config["data"] == str(synthetic_mnist)

    for epoch in (1, 2):
        with Image.open(out / "images" / f"image_at_epoch_{epoch:04d}.png") as png:
            assert png.size == (366, 366) and png.mode == "L"
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 2
    for figure in ("losses.png", "timing.png"):
        with Image.open(out / figure) as png:
            png.verify()
    assert {p.name for p in (out / "checkpoints").iterdir()} >= {
        "checkpoint", "ckpt-1.index", "ckpt-2.index"}
    assert not list(out.rglob(".*.tmp-*"))  # no temporary file left behind
    # --metrics-every 10 by default: scored at the last epoch only, the
    # evaluation classifier trained once beside the run
    assert [line.split(",")[0] for line in (out / "metrics.csv").read_text().splitlines()] == [
        "epoch", "2"]
    assert len(list((tmp_path / "classifier").glob("mnist-*/classifier.weights.h5"))) == 1


@pytest.mark.slow
def test_tensorboard_reads_the_logged_scalars_and_pictures(synthetic_mnist, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    out = tmp_path / "run"
    run(synthetic_mnist, out, "--epochs", 2, "--seed", 3, "--save-every", 2)
    events = EventAccumulator(str(out / "logs"), size_guidance={"tensors": 0}).Reload()
    tags = set(events.Tags()["tensors"])
    assert set(HISTORY_COLUMNS[1:]) | {"samples"} <= tags
    d_loss = [float(make_ndarray(e.tensor_proto)) for e in events.Tensors("d_loss")]
    assert [e.step for e in events.Tensors("d_loss")] == [1, 2]
    # float32 against 7 digits (at most 5.6e-7 apart); measured: 2.6e-7 (bf16 CPU), 1.1e-7
    np.testing.assert_allclose(d_loss, [float(r["d_loss"]) for r in history(out)], rtol=1e-6)
    assert [e.step for e in events.Tensors("samples")] == [2]  # --save-every 2


@pytest.mark.slow
def test_save_every_and_checkpoint_every(synthetic_mnist, tmp_path):
    out = tmp_path / "run"
    run(synthetic_mnist, out, "--epochs", 5, "--seed", 1, "--save-every", 2)
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "image_at_epoch_0002.png", "image_at_epoch_0004.png", "image_at_epoch_0005.png"]
    indexes = sorted(p.name for p in (out / "checkpoints").glob("*.index"))
    assert indexes == ["ckpt-3.index", "ckpt-4.index", "ckpt-5.index"]  # the last 3 kept

    out = tmp_path / "sparse"
    run(synthetic_mnist, out, "--epochs", 3, "--seed", 1, "--checkpoint-every", 2)
    indexes = sorted(p.name for p in (out / "checkpoints").glob("*.index"))
    assert indexes == ["ckpt-2.index", "ckpt-3.index"]  # every 2nd, and the last


@pytest.mark.slow
def test_same_seed_same_losses_other_seed_other_losses(synthetic_mnist, tmp_path):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        run(synthetic_mnist, tmp_path / name, "--epochs", 2, "--seed", seed)
    np.testing.assert_allclose(losses(tmp_path / "a"), losses(tmp_path / "b"), rtol=1e-6)
    assert not np.allclose(losses(tmp_path / "a"), losses(tmp_path / "c"), rtol=1e-3)


@pytest.mark.slow
def test_resumed_run_equals_an_uninterrupted_one(synthetic_mnist, tmp_path, capsys):
    """Everything is restored (weights, optimizer moments, batch-norm
    statistics, noise RNG, dropout RNG, data order): the losses after a
    resume are those of a run that never stopped."""
    run(synthetic_mnist, tmp_path / "straight", "--epochs", 3, "--seed", 5)
    run(synthetic_mnist, tmp_path / "resumed", "--epochs", 1, "--seed", 5)
    capsys.readouterr()
    assert run(synthetic_mnist, tmp_path / "resumed", "--epochs", 3) == 0  # seed from config
    assert "Resuming" in capsys.readouterr().out
    assert [int(r["epoch"]) for r in history(tmp_path / "resumed")] == [1, 2, 3]
    np.testing.assert_allclose(losses(tmp_path / "resumed"), losses(tmp_path / "straight"),
                               rtol=1e-6)


@pytest.mark.slow
def test_history_rows_past_the_checkpoint_are_redone_once(synthetic_mnist, tmp_path, capsys):
    """A run killed after writing epoch 3's row but before its checkpoint."""
    out = tmp_path / "run"
    run(synthetic_mnist, out, "--epochs", 2, "--seed", 5)
    with open(out / "history.csv", "a") as f:
        f.write("3,1.0,256.0,9,9,0.5,0.5\n")
    run(synthetic_mnist, out, "--epochs", 3)
    rows = history(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[2]["g_loss"]) != 9.0


@pytest.mark.slow
def test_a_finished_run_has_nothing_to_train(synthetic_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    run(synthetic_mnist, out, "--epochs", 2, "--seed", 5)
    before = history(out)
    capsys.readouterr()
    assert run(synthetic_mnist, out, "--epochs", 2) == 0
    assert "nothing to train" in capsys.readouterr().out
    assert history(out) == before


@pytest.mark.slow
def test_other_configuration_is_refused_and_fresh_replaces(synthetic_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    run(synthetic_mnist, out, "--epochs", 1, "--seed", 5)
    before = tree_digest(out)
    with pytest.raises(SystemExit) as exit_:
        run(synthetic_mnist, out, "--epochs", 2, "--noise-dim", 64)
    assert exit_.value.code == 2
    assert "--noise-dim 100 there, 64 here" in capsys.readouterr().err
    assert tree_digest(out) == before

    assert run(synthetic_mnist, out, "--epochs", 1, "--noise-dim", 64, "--fresh") == 0
    assert json.loads((out / "config.json").read_text())["args"]["noise_dim"] == 64
    assert [int(r["epoch"]) for r in history(out)] == [1]



@pytest.mark.parametrize("script", ["gan", "vae"])
def test_every_option_is_run_defining_or_a_run_control(script, tmp_path):
    """Walk each train.py's parser: an option changed when a run resumes is
    refused, in one line naming it, unless it controls the run (how long,
    how often, where, how fast: its role, Parser.run_controls), and then it
    is accepted. A new option is one or the other by its declared role."""
    from common import arguments
    from common.errors import UsageError
    from common.rundir import RunDir
    from vae_keras import train as vae_train

    parser = (train if script == "gan" else vae_train).make_parser()
    stored = vars(arguments.parse(parser, ["--seed", "1"]))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(
        {"model": stored["model"], "args": stored}))
    options = [action.dest for action in parser._actions
               if action.option_strings and action.dest not in ("help", "model")]
    controls = parser.run_controls()
    assert len(options) > 25 and len(controls) >= 18 and controls < set(options)
    assert {"epochs", "out", "data_dir", "fresh", "precision", "on_nonfinite"} <= controls
    assert not {"seed", "batch_size", "dataset", "lr", "train_size"} & controls
    for dest in options:
        changed = {**stored, dest: "changed"}
        if dest in controls:
            RunDir.open(tmp_path / "run", stored["model"], changed, controls=controls)
        else:
            with pytest.raises(UsageError, match=f"--{dest.replace('_', '-')} .* there, "
                                                 f"changed here"):
                RunDir.open(tmp_path / "run", stored["model"], changed, controls=controls)


def test_a_drawn_seed_is_printed_stored_and_kept_on_resume(synthetic_mnist, tmp_path, capsys):
    """Without --seed a run draws one, says it, stores it in config.json, and
    the same command resumes with it (a resumed run does not draw again)."""
    out = tmp_path / "run"
    assert run(synthetic_mnist, out, "--model", "mlp_gan", "--epochs", 1) == 0
    seed = json.loads((out / "config.json").read_text())["args"]["seed"]
    assert isinstance(seed, int) and f", seed {seed}, into" in capsys.readouterr().out
    assert run(synthetic_mnist, out, "--model", "mlp_gan", "--epochs", 2) == 0
    assert f", seed {seed}, into" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["args"]["seed"] == seed
    assert [row["epoch"] for row in history(out)] == ["1", "2"]
