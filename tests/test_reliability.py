"""What a long run meets, and survives: a loss that becomes NaN, a second
copy of its command, SIGTERM (preemption), a damaged newest checkpoint, a
full disk. Each ends in one line and an exit status, with a run that
resumes (docs/reliability.md)."""
import errno
import json
import math
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import (STOPPED_BATCH, STOPPED_PER_CALL, STOPPED_RUNS, command, environment,
                      free_ports, history, run_script, stopped_run, tree_digest, unavailable,
                      write_mnist)

from common import atomic, feeding, pages
from common import data as data_module
from common.errors import Terminated, UsageError
from common.rundir import RunDir
from gan_keras import train as gan_train
from vae_keras import train as vae_train

GAN_LOSSES = ["g_loss", "d_loss", "d_real", "d_fake"]
VAE_LOSSES = ["loss", "reconstruction", "kl", "test_elbo"]
SCRIPTS = {"dcgan": (gan_train, GAN_LOSSES), "conv_vae": (vae_train, VAE_LOSSES)}


def run(script, data_dir, out, *args):
    """Train in this process on the synthetic set (256 images, batch 64: 4
    steps an epoch, one graph call)."""
    return script.main(["--data-dir", str(data_dir), "--out", str(out), "--batch-size", "64",
                        "--seed", "3", "--metrics-every", "0", *map(str, args)])


def epochs(out, table="history"):
    path = Path(out) / f"{table}.csv"
    return [int(line.split(",")[0]) for line in path.read_text().splitlines()[1:]]


def losses(out, names):
    return np.array([[float(row[c]) for c in names] for row in history(out)])


def checkpoint_numbers(out):
    return sorted(int(p.stem.split("-")[1]) for p in (Path(out) / "checkpoints").glob("*.index"))


def stored(out, name):
    """A variable of the run's latest checkpoint, read from its files."""
    return tf.train.load_variable(tf.train.latest_checkpoint(str(Path(out) / "checkpoints")),
                                  f"{name}/.ATTRIBUTES/VARIABLE_VALUE")


def events(out):
    return RunDir(out).events()


def poison(script, monkeypatch, *, after_step, while_rate_above=0.0):
    """Make `script` build models whose train step returns NaN for every
    scalar once its first optimizer has taken `after_step` steps, while that
    optimizer's learning rate is above `while_rate_above` times the one it
    started with: an injected non-finite value (the weights stay finite)."""
    build = script.build

    def build_poisoned(args, data):
        model = build(args, data)
        step, optimizer = model.step, next(iter(model.optimizers.values()))
        threshold = while_rate_above * float(optimizer.learning_rate)

        @tf.function
        def poisoned(batch):
            outputs = step(batch)
            bad = tf.logical_and(tf.convert_to_tensor(optimizer.iterations) > after_step,
                                 tf.convert_to_tensor(optimizer.learning_rate) > threshold)
            return {name: tf.where(bad, tf.constant(math.nan, value.dtype), value)
                    for name, value in outputs.items()}

        model.step = poisoned
        return model

    monkeypatch.setattr(script, "build", build_poisoned)


def poison_a_weight(script, monkeypatch, *, at_step):
    """Make `script` build models whose train step sets a weight of the
    first network to NaN after optimizer step `at_step`: that step's losses
    are still finite, the next step's are not."""
    build = script.build

    def build_poisoned(args, data):
        model = build(args, data)
        step, optimizer = model.step, next(iter(model.optimizers.values()))
        weight = next(iter(model.networks.values())).trainable_weights[0]

        @tf.function
        def poisoned(batch):
            outputs = step(batch)
            if tf.convert_to_tensor(optimizer.iterations) == at_step:
                weight.assign(tf.fill(weight.shape, math.nan))
            return outputs

        model.step = poisoned
        return model

    monkeypatch.setattr(script, "build", build_poisoned)


# -- non-finite losses ---------------------------------------------------------------------


@pytest.mark.parametrize("model", [pytest.param("dcgan", marks=pytest.mark.slow), "conv_vae"])
def test_a_nan_loss_stops_the_run_before_anything_of_its_epoch_is_written(
        model, synthetic_mnist, tmp_path, monkeypatch, capsys):
    """NaN from step 9 on, the first of epoch 3: exit 3 and one line naming
    the epoch, the losses and what to try; no row, picture or checkpoint of
    epoch 3; the same command resumes from epoch 2's checkpoint."""
    script, names = SCRIPTS[model]
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        poison(script, patch, after_step=8)
        assert run(script, synthetic_mnist, out, "--epochs", 4) == 3
    (line,) = capsys.readouterr().err.splitlines()
    assert line.split(": ", 1)[1].startswith(f"diverged in epoch 3: {names[0]} nan, ")
    assert "its checkpoint of epoch 2" in line and "--on-nonfinite rollback" in line
    assert "--lr" in line and "--seed" in line
    assert epochs(out) == [1, 2]
    assert checkpoint_numbers(out) == [1, 2] and stored(out, "epoch") == 2
    assert sorted(p.name for p in (out / "images").glob("image_at_epoch_*.png")) == [
        "image_at_epoch_0001.png", "image_at_epoch_0002.png"]
    assert [(e["epoch"], e["event"]) for e in events(out)] == [("3", "diverged")]
    page = pages._read_data(out / "index-data.js")["summary"]
    assert (page["training"], page["epochs"], page["target"]) == (False, 2, 4)  # "stopped"

    assert run(script, synthetic_mnist, out, "--epochs", 4) == 0  # the step is sane again
    assert "Resuming" in capsys.readouterr().out and epochs(out) == [1, 2, 3, 4]
    assert np.isfinite(losses(out, names)).all()


@pytest.mark.slow
def test_a_weight_gone_nan_in_an_epochs_last_step_is_caught_before_its_checkpoint(
        synthetic_mnist, tmp_path, monkeypatch, capsys):
    """The loss of a step is computed before its update: a NaN update in
    the last step of epoch 2 shows in its weights only. Epoch 2 is not
    written and not checkpointed; the run's checkpoint stays epoch 1's."""
    out = tmp_path / "run"
    poison_a_weight(gan_train, monkeypatch, at_step=8)
    assert run(gan_train, synthetic_mnist, out, "--epochs", 4) == 3
    (line,) = capsys.readouterr().err.splitlines()
    assert "diverged in epoch 2: a weight (the losses still finite)" in line
    assert epochs(out) == [1] and checkpoint_numbers(out) == [1]


@pytest.mark.slow
@pytest.mark.parametrize("model", SCRIPTS)
def test_rollback_goes_back_to_the_checkpoint_at_half_the_learning_rate(
        model, synthetic_mnist, tmp_path, monkeypatch, capsys):
    """A step that diverges at its learning rate and not at half of it:
    rollback goes back to epoch 2 at half the rate and trains to the end,
    every epoch once in history.csv, the event in events.csv."""
    script, names = SCRIPTS[model]
    out = tmp_path / "run"
    poison(script, monkeypatch, after_step=8, while_rate_above=0.75)
    assert run(script, synthetic_mnist, out, "--epochs", 5, "--on-nonfinite", "rollback") == 0
    printed = capsys.readouterr().out
    assert "Epoch 3: " in printed and "rolled back to the checkpoint of epoch 2" in printed
    assert epochs(out) == [1, 2, 3, 4, 5]
    assert np.isfinite(losses(out, names)).all()
    (event,) = events(out)
    assert (event["epoch"], event["event"]) == ("3", "rollback")
    assert "back to epoch 2" in event["detail"]
    optimizers = {"dcgan": ["generator_optimizer", "discriminator_optimizer"],
                  "conv_vae": ["optimizer"]}[model]
    for name in optimizers:  # every optimizer's rate, halved and checkpointed
        assert stored(out, f"{name}/_learning_rate") == pytest.approx(1e-4 / 2)  # the presets'



@pytest.mark.slow
def test_rollback_gives_up_after_three(synthetic_mnist, tmp_path, monkeypatch, capsys):
    """A step that diverges at any learning rate: 3 rollbacks, each at half
    the rate of the one before, then exit 3."""
    out = tmp_path / "run"
    poison(gan_train, monkeypatch, after_step=8)
    assert run(gan_train, synthetic_mnist, out, "--epochs", 5, "--on-nonfinite", "rollback") == 3
    (line,) = capsys.readouterr().err.splitlines()
    assert "diverged in epoch 3" in line and "after 3 rollbacks" in line
    rows = events(out)
    assert [row["event"] for row in rows] == ["rollback"] * 3 + ["diverged"]
    for row, rate in zip(rows, ("5e-05", "2.5e-05", "1.25e-05")):
        assert f"generator_optimizer {rate}" in row["detail"]
    assert epochs(out) == [1, 2] and checkpoint_numbers(out) == [1, 2]


@pytest.mark.slow
def test_an_absurd_learning_rate_diverges_with_exit_3(synthetic_mnist, tmp_path):
    """A real NaN, not an injected one: the conv VAE at --lr 1e4."""
    out = tmp_path / "run"
    done = run_script("vae_keras/train.py", "--data-dir", synthetic_mnist, "--out", out,
                      "--epochs", 3, "--lr", 1e4, "--metrics-every", 0, "--seed", 1)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr  # TensorFlow's start-up writes lines before the last
    assert done.stderr.splitlines()[-1:] == [
        "train.py: diverged in epoch 1: loss nan, reconstruction nan, kl nan. Nothing of epoch "
        "1 was written and there is no checkpoint yet; try a fresh start (--fresh) with a "
        "lower --lr or another --seed"]
    assert not (out / "history.csv").exists() and checkpoint_numbers(out) == []


# -- one process per run directory -------------------------------------------------------


def test_the_lock_keeps_a_second_writer_out_until_the_first_ends(tmp_path):
    run_, _ = RunDir.open(tmp_path / "run", "dcgan", {})
    run_.start({"model": "dcgan", "args": {}})
    with pytest.raises(UsageError, match=rf"run is in use by process {os.getpid()} \(.*pytest"):
        RunDir.open(tmp_path / "run", "dcgan", {})
    run_.close()
    other, _ = RunDir.open(tmp_path / "run", "dcgan", {})
    other.start({"model": "dcgan", "args": {}})
    other.close()
    assert {p.name for p in (tmp_path / "run").iterdir()} >= {".lock", "config.json"}

    (tmp_path / "new").mkdir()
    (tmp_path / "new" / ".lock").touch()  # a start killed before config.json: no content
    RunDir.open(tmp_path / "new", "dcgan", {})


def test_a_file_system_without_locks_is_a_warning(tmp_path, monkeypatch, capsys):
    def no_locks(file, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr("fcntl.flock", no_locks)
    run_, _ = RunDir.open(tmp_path / "run", "dcgan", {})
    run_.start({"model": "dcgan", "args": {}})
    assert capsys.readouterr().err == (
        f"warning: {tmp_path / 'run'} cannot be locked (No locks available): nothing keeps a "
        f"second process from training into it\n")
    assert (tmp_path / "run" / "config.json").exists()


@pytest.mark.slow
def test_a_second_process_is_refused_and_readers_still_work(synthetic_mnist, tmp_path):
    """The same command twice: the second exits 2 naming the first, which
    trains on; sampling the run works meanwhile; once the first is killed
    (SIGKILL: nothing to clean up), the command resumes the run."""
    out = tmp_path / "run"
    train = command("gan_keras/train.py", "--data-dir", synthetic_mnist, "--out", out,
                    "--batch-size", 64, "--seed", 1, "--metrics-every", 0)
    first = subprocess.Popen([*train, "--epochs", "1000"], env=environment(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list((out / "checkpoints").glob("ckpt-*.index")):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        second = subprocess.run([*train, "--epochs", "1000"], env=environment(),
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert second.stderr.splitlines() == [
            f"train.py: error: {out} is in use by process {first.pid} ({' '.join(map(str, train))}"
            f" --epochs 1000); wait for it to end, or stop it"]
        sample = run_script("-m", "common.evaluation.sample", out, "--n", 16,
                            "--out", tmp_path / "samples.npz")
        assert sample.returncode == 0, sample.stderr
        assert np.load(tmp_path / "samples.npz")["images"].shape == (16, 28, 28)
        assert first.poll() is None  # it trained on throughout
    finally:
        first.kill()
        first.wait()
    done = len(epochs(out))
    again = subprocess.run([*train, "--epochs", str(done + 1)], env=environment(),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "Resuming" in again.stdout


# -- SIGTERM --------------------------------------------------------------------------------


def _hangup(action):
    """A preexec_fn giving the child SIGHUP's `action`: SIG_DFL as a shell on
    a terminal starts a command, even when the tests themselves run under
    nohup (whose ignored SIGHUP a child inherits); SIG_IGN as under nohup."""
    return lambda: signal.signal(signal.SIGHUP, action)


def _signalled_inside_epoch_3(stopped, signum, status, out, size):
    """Hold the run `stopped` (Held) inside epoch 3, send it `signum`, let it
    go: it exits `status` with its checkpoint saved at the step where it was
    held (or, on a machine too slow to hold it at the first call, a later
    step of the epoch). Returns its stderr and that step."""
    shown = stopped.hold(3)
    stopped.send_signal(signum)
    stopped.release()
    assert stopped.wait(timeout=120) == status
    stderr = stopped.stderr.read()
    step = int(stored(out, "progress/step"))
    assert stored(out, "epoch") == 2 and (
        step == STOPPED_PER_CALL if not shown else shown < step < size // STOPPED_BATCH), (
        step, shown)
    return stderr, step


@pytest.mark.slow
@pytest.mark.parametrize("model", ["dcgan", "conv_vae"])
def test_sigterm_saves_inside_the_epoch_and_resumes_as_if_never_stopped(model, tmp_path,
                                                                        uninterrupted, held):
    """SIGTERM inside epoch 3, while the run is held after its first graph
    call (conftest.Held): the run saves at that step boundary, says so in
    one line and exits 143; the same command resumes inside epoch 3, and its
    losses are those of a run never stopped (the conv VAE through tf.data,
    the DCGAN with the set on the device). SIGHUP takes the same path
    (test_a_closed_terminal_saves_and_the_run_resumes)."""
    size, names = STOPPED_RUNS[model][2], SCRIPTS[model][1]
    data_dir = write_mnist(tmp_path / "data", n_train=size)

    def train(out):
        return stopped_run(model, data_dir, out)

    uninterrupted.start(model)
    out = tmp_path / "run"
    stopped = held(train(out), preexec_fn=_hangup(signal.SIG_DFL))
    stderr, step = _signalled_inside_epoch_3(stopped, signal.SIGTERM, 143, out, size)
    steps = size // STOPPED_BATCH
    assert "Traceback" not in stderr and stderr.splitlines()[-1] == (
        f"train.py: terminated (SIGTERM): checkpoint saved {step} steps into epoch 3; run the "
        f"same command again to resume there")
    assert epochs(out) == [1, 2]
    assert [(e["epoch"], e["event"]) for e in events(out)] == [("3", "terminated")]

    resumed = subprocess.run(train(out), env=environment(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"after epoch 2, {step} of {steps} steps into epoch 3" in resumed.stdout
    assert epochs(out) == [1, 2, 3, 4]
    np.testing.assert_allclose(losses(out, names), losses(uninterrupted(model), names),
                               rtol=1e-6)
    assert checkpoint_numbers(out) == [2, 3, 4] and stored(out, "progress/step") == 0
    assert not list(out.rglob(".*.tmp-*"))


@pytest.mark.parametrize("signum, status, said", [
    (signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGHUP, 129, "hung up (SIGHUP)"),
    (signal.SIGINT, 130, "interrupted (Ctrl-C)")])
def test_a_stopped_run_names_the_signal_in_its_line_and_status(signum, status, said):
    """The line and exit status of a run stopped by each signal, as the
    shell would give a process killed by it (128 + the signal's number)."""
    from common import cli

    stopped = Terminated(2, 5, signum)
    assert stopped.status == status
    assert cli._stopped(stopped, None) == (f"{said}: checkpoint saved 5 steps into epoch 3; "
                                           "run the same command again to resume there")
    assert cli._stopped(Terminated(2, 0, signum), None).startswith(
        f"{said}: checkpoint saved after epoch 2;")


@pytest.mark.slow
def test_a_closed_terminal_saves_and_the_run_resumes(tmp_path, uninterrupted, held):
    """The run's terminal closes (a window closed, an ssh session dropped)
    inside epoch 3, while the run is held writing to it after the epoch's
    first graph call: the kernel sends SIGHUP, the run saves at that step
    boundary although nothing can be written to its terminal any more, and
    exits 129; the same command resumes inside epoch 3, to the losses of
    the run never stopped. As a user runs it: on a terminal of its own (all
    three streams, stderr through the filter process, common/quiet.py)."""
    size = STOPPED_RUNS["dcgan"][2]
    uninterrupted.start("dcgan")
    data_dir = write_mnist(tmp_path / "data", n_train=size)
    out = tmp_path / "run"
    train = stopped_run("dcgan", data_dir, out)
    stopped = held(train, terminal=True, env={"TF_CPP_MIN_LOG_LEVEL": None},
                   preexec_fn=_hangup(signal.SIG_DFL))
    shown = stopped.hold(3)  # it was writing to the terminal: its bar and "Time for epoch 2"
    stopped.close()  # the terminal hangs up
    assert stopped.wait(timeout=120) == 129
    step = int(stored(out, "progress/step"))
    assert stored(out, "epoch") == 2 and (
        step == STOPPED_PER_CALL if not shown else shown < step < size // STOPPED_BATCH), (
        step, shown)
    assert [(e["epoch"], e["event"], e["detail"].split(";")[0]) for e in events(out)] == [
        ("3", "terminated", "SIGHUP")]
    resumed = subprocess.run(train, env=environment(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"after epoch 2, {step} of {size // STOPPED_BATCH} steps into epoch 3" in resumed.stdout
    assert epochs(out) == [1, 2, 3, 4]
    np.testing.assert_allclose(losses(out, GAN_LOSSES),
                               losses(uninterrupted("dcgan"), GAN_LOSSES), rtol=1e-6)


@pytest.mark.slow
def test_ctrl_c_saves_at_the_next_step_and_the_run_resumes_inside_the_epoch(
        tmp_path, uninterrupted, held):
    """Ctrl-C (SIGINT) inside epoch 3, while the run is held after the
    epoch's first graph call (conftest.Held): the run saves at that step
    boundary, as on SIGTERM, and stops with exit 130 and one line saying
    where it saved; the same command resumes inside epoch 3, to the losses
    of the run never stopped."""
    size = STOPPED_RUNS["dcgan"][2]
    uninterrupted.start("dcgan")
    data_dir = write_mnist(tmp_path / "data", n_train=size)
    out = tmp_path / "run"
    train = stopped_run("dcgan", data_dir, out)
    stopped = held(train,  # SIGINT's action as a shell on a terminal gives it
                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    stderr, step = _signalled_inside_epoch_3(stopped, signal.SIGINT, 130, out, size)
    assert "Traceback" not in stderr and stderr.splitlines()[-1] == (
        f"train.py: interrupted (Ctrl-C): checkpoint saved {step} steps into epoch 3; run the "
        f"same command again to resume there")
    assert epochs(out) == [1, 2]
    resumed = subprocess.run(train, env=environment(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"after epoch 2, {step} of {size // STOPPED_BATCH} steps into epoch 3" in resumed.stdout
    np.testing.assert_allclose(losses(out, GAN_LOSSES),
                               losses(uninterrupted("dcgan"), GAN_LOSSES), rtol=1e-6)


def test_a_second_ctrl_c_stops_at_once():
    """The first Ctrl-C asks the run to save at its next step (the loop's
    StopRequest), a second raises KeyboardInterrupt there and then: the run
    stops without saving. Ignored, as under `nohup ... &`, it stays ignored;
    the handlers are put back as they were."""
    from common import cli, training

    terminate = training.StopRequest()
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        handlers = cli._catch(terminate)
        ours = signal.getsignal(signal.SIGINT)
        ours(signal.SIGINT, None)
        assert terminate.signum == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            ours(signal.SIGINT, None)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        handlers = cli._catch(training.StopRequest())
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.SIGINT not in handlers
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("skip", [0, 2])
@pytest.mark.parametrize("on_device", [False, True], ids=["pipeline", "on_device"])
def test_a_feed_resumed_inside_an_epoch_gives_the_rest_of_its_batches(synthetic_mnist,
                                                                      on_device, skip):
    dataset = data_module.load("mnist", synthetic_mnist)
    batches = feeding.feed(dataset, tf.constant, batch_size=32, seed=1, on_device=on_device)
    whole = batches.epoch(5)
    expected = [next(whole)[0].numpy() for _ in range(batches.steps)][skip:]
    rest = batches.epoch(5, skip=skip)
    for batch in expected:
        np.testing.assert_array_equal(next(rest)[0].numpy(), batch)


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_every_worker_at_the_same_step(synthetic_mnist, tmp_path):
    """--strategy multiworker: SIGTERM to the chief mid-run; through
    TensorFlow's PreemptionCheckpointHandler both workers save at the same
    step and exit 143; started again, both resume there and finish."""
    cluster = [f"localhost:{port}" for port in free_ports(2)]

    def workers(epochs_):
        worker = command("vae_keras/train.py", "--strategy", "multiworker", "--data-dir",
                         synthetic_mnist, "--epochs", epochs_, "--batch-size", 8, "--seed", 4,
                         "--metrics-every", 0, "--steps-per-call", 2, "--out", tmp_path / "run")
        return [subprocess.Popen(
            worker, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=environment({"TF_CONFIG": json.dumps(
                {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}})}))
            for i in range(2)]

    started = workers(200)
    deadline = time.monotonic() + 300
    while not (tmp_path / "run" / "history.csv").exists():
        assert all(p.poll() is None for p in started) and time.monotonic() < deadline
        time.sleep(0.1)
    started[0].send_signal(signal.SIGTERM)
    outputs = [p.communicate(timeout=300)[0] for p in started]
    assert [p.returncode for p in started] == [143, 143], outputs
    saved = [(stored(tmp_path / name, "epoch"), stored(tmp_path / name, "progress/step"))
             for name in ("run", "run-worker1")]
    assert saved[0] == saved[1]
    assert "terminated (SIGTERM): checkpoint saved" in outputs[0]

    epoch = int(saved[0][0]) + 2
    resumed = workers(epoch)
    outputs = [p.communicate(timeout=300)[0] for p in resumed]
    assert [p.returncode for p in resumed] == [0, 0], outputs
    assert all("Resuming" in output for output in outputs)
    chief, other = history(tmp_path / "run"), history(tmp_path / "run-worker1")
    assert [int(r["epoch"]) for r in chief] == list(range(1, epoch + 1))
    assert [r["loss"] for r in chief] == [r["loss"] for r in other]


# -- a damaged checkpoint ---------------------------------------------------------------------


def truncate(path):
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def garble(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2:len(raw) // 2 + 64] = bytes(b ^ 0xFF for b in raw[len(raw) // 2:][:64])
    path.write_bytes(bytes(raw))


SCORING = ["--metrics-every", 1, "--metrics-samples", 64]


@pytest.fixture(scope="module")
def scored_runs(synthetic_mnist, tmp_path_factory):
    """A DCGAN run of 3 epochs and one of 4, scored every epoch."""
    root = tmp_path_factory.mktemp("scored")
    for epochs_ in (3, 4):
        assert run(gan_train, synthetic_mnist, root / f"epochs{epochs_}", "--epochs", epochs_,
                   *SCORING, "--classifier-dir", root / "classifier") == 0
    return root


@pytest.mark.slow
@pytest.mark.parametrize("damage", [truncate, garble])
def test_a_damaged_newest_checkpoint_is_passed_over_for_the_one_before(
        damage, synthetic_mnist, scored_runs, tmp_path, capsys):
    """The newest checkpoint's data file cut short or garbled: resume says
    so in one line, goes on from the checkpoint before (history.csv and
    metrics.csv trimmed to it) and trains what an undamaged run trains."""
    out = tmp_path / "run"
    shutil.copytree(scored_runs / "epochs3", out)
    damage(out / "checkpoints" / "ckpt-3.data-00000-of-00001")
    capsys.readouterr()

    assert run(gan_train, synthetic_mnist, out, "--epochs", 4, *SCORING,
               "--classifier-dir", scored_runs / "classifier") == 0
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith(f"{out / 'checkpoints'}: cannot restore ckpt-3 (")
    assert line.endswith("; resuming from ckpt-2 (epoch 2)")
    assert "from its checkpoint after epoch 2 " in captured.out
    assert epochs(out) == [1, 2, 3, 4] and epochs(out, "metrics") == [1, 2, 3, 4]
    np.testing.assert_allclose(losses(out, GAN_LOSSES),
                               losses(scored_runs / "epochs4", GAN_LOSSES), rtol=1e-6)
    assert [e["event"] for e in events(out)] == ["fallback"]


@pytest.mark.slow
def test_a_reader_passes_over_a_damaged_newest_checkpoint_and_changes_nothing(
        scored_runs, tmp_path, capfd):
    """sample (as evaluate, generate and export: common.runs.open_run) of a
    run whose newest checkpoint is garbled: one line on stderr, the samples
    of the checkpoint before, identical to that run's, and not a file of the
    run changed (no trimmed table, no events.csv row: only training owns
    the run)."""
    from common.evaluation import sample

    out = tmp_path / "run"
    shutil.copytree(scored_runs / "epochs3", out)
    garble(out / "checkpoints" / "ckpt-3.data-00000-of-00001")
    before = tree_digest(out)
    capfd.readouterr()
    assert sample.main([str(out), "--n", "16", "--out", str(tmp_path / "damaged.npz")]) == 0
    (line,) = [line for line in capfd.readouterr().err.splitlines() if "ckpt" in line]
    assert line.startswith(f"{out / 'checkpoints'}: cannot restore ckpt-3 (")
    assert line.endswith("; reading ckpt-2 (epoch 2)")
    assert tree_digest(out) == before
    assert sample.main([str(scored_runs / "epochs3"), "--epoch", "2", "--n", "16",
                        "--out", str(tmp_path / "epoch2.npz")]) == 0
    assert np.array_equal(np.load(tmp_path / "damaged.npz")["images"],
                          np.load(tmp_path / "epoch2.npz")["images"])


@pytest.mark.slow
def test_no_checkpoint_that_restores_is_exit_2_and_deletes_nothing(synthetic_mnist, tmp_path):
    out = tmp_path / "run"
    assert run(gan_train, synthetic_mnist, out, "--epochs", 3) == 0
    for data_file in (out / "checkpoints").glob("*.data-*"):
        truncate(data_file)
    kept = {name: digest for name, digest in tree_digest(out).items()
            if name != "config.json" and not name.startswith("logs/")}
    done = run_script("gan_keras/train.py", "--data-dir", synthetic_mnist, "--out", out,
                      "--batch-size", 64, "--epochs", 4, "--metrics-every", 0)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    line = done.stderr.splitlines()[-1]
    assert line.startswith(f"train.py: error: no checkpoint in {out / 'checkpoints'} can be "
                           f"restored: ckpt-3 (")
    assert "ckpt-2 (" in line and "ckpt-1 (" in line
    assert {name: digest for name, digest in tree_digest(out).items() if name in kept} == kept


# -- a full disk ------------------------------------------------------------------------------


def test_a_write_that_fills_the_disk_names_the_file_and_keeps_the_old_one(tmp_path,
                                                                        monkeypatch):
    target = tmp_path / "history.csv"
    target.write_text("old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as raised:
        with atomic.atomic_write(target, "w") as f:
            f.write("new\n")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == [
        "history.csv"]


@pytest.mark.slow
def test_a_full_disk_mid_run_is_one_line_and_the_run_resumes(synthetic_mnist, tmp_path,
                                                             monkeypatch, capsys):
    """No space left for epoch 3's picture (the writers see ENOSPC): exit 2,
    one line naming the file and the space a checkpoint needs; the run
    resumes from epoch 2 once there is space again."""
    out = tmp_path / "run"
    write = atomic.atomic_write

    def full_at_epoch_3(path, mode="wb"):
        if Path(path).name == "image_at_epoch_0003.png":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write(path, mode)

    with monkeypatch.context() as patch:
        patch.setattr("common.images.atomic_write", full_at_epoch_3)
        assert run(gan_train, synthetic_mnist, out, "--epochs", 4) == 2
    (line,) = capsys.readouterr().err.splitlines()
    size = sum(p.stat().st_size for p in (out / "checkpoints").glob("ckpt-2.*"))
    assert line.split(": ", 1)[1].startswith(
        f"error: no space left on the device for {out / 'images' / 'image_at_epoch_0003.png'} (")
    assert f"a checkpoint of this run needs {size / 1e6:.1f} MB" in line
    assert line.endswith("run the same command again to resume from the last checkpoint")
    assert checkpoint_numbers(out) == [1, 2]
    assert run(gan_train, synthetic_mnist, out, "--epochs", 4) == 0
    assert "from its checkpoint after epoch 2 " in capsys.readouterr().out
    assert epochs(out) == [1, 2, 3, 4]


@pytest.mark.parametrize("failure, status, message", [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "{cache}"), 2,
     "error: no space left on the device for {cache} ("),
    (KeyboardInterrupt(), 130, "interrupted; the run had not begun: nothing was written"),
], ids=["full disk", "ctrl-c"])
def test_stopped_before_a_new_run_began_is_one_line_that_promises_no_resume(
        failure, status, message, synthetic_mnist, tmp_path, monkeypatch, capsys):
    """A full disk or Ctrl-C while the evaluation classifier trains, before
    a new run has a directory."""
    from common.evaluation import classifier

    cache = tmp_path / "classifier" / "classifier.weights.h5"
    if isinstance(failure, OSError):
        failure.filename = str(cache)

    def fails(*args, **kwargs):
        raise failure

    monkeypatch.setattr(classifier, "load_or_train", fails)
    out = tmp_path / "run"
    assert run(gan_train, synthetic_mnist, out, "--epochs", 1, "--metrics-every", 1) == status
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line]
    assert message.format(cache=cache) in line and "resume" not in line, line
    assert not out.exists()


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 80 MB (root only; skipped where mounting is not allowed),
    and a function that gives it more room."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not shutil.which("mount"):
        unavailable("tmpfs", "no mount command here")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=80m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode:
        unavailable("tmpfs", f"cannot mount a tmpfs here: {done.stderr.strip()}")

    def grow():
        subprocess.run(["mount", "-o", "remount,size=400m", str(mount)], check=True)

    yield mount, grow
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.slow
def test_a_really_full_disk_keeps_the_last_checkpoint_and_the_run_resumes(
        synthetic_mnist, small_disk, tmp_path):
    """A DCGAN checkpoint takes about 30 MB; 80 MB hold two, not the third:
    its save fails with ENOSPC inside TensorFlow. One line, exit 2; the
    two checkpoints are intact, and after the disk grows the same command
    resumes from epoch 2 and finishes."""
    disk, grow = small_disk
    out = disk / "run"
    train = ["gan_keras/train.py", "--data-dir", synthetic_mnist, "--out", out,
             "--batch-size", 64, "--epochs", 4, "--seed", 1, "--metrics-every", 0]
    full = run_script(*train)
    assert full.returncode == 2, full.stderr
    assert "Traceback" not in full.stderr
    line = full.stderr.splitlines()[-1]
    assert line.startswith(f"train.py: error: no space left on the device for "
                           f"{out / 'checkpoints' / 'ckpt-3'} ("), line
    size = sum(p.stat().st_size for p in (out / "checkpoints").glob("ckpt-2.*"))
    assert f"a checkpoint of this run needs {size / 1e6:.1f} MB" in line
    assert checkpoint_numbers(out) == [1, 2] and stored(out, "epoch") == 2

    grow()
    resumed = run_script(*train)
    assert resumed.returncode == 0, resumed.stderr
    assert "from its checkpoint after epoch 2 " in resumed.stdout
    assert epochs(out) == [1, 2, 3, 4] and checkpoint_numbers(out) == [2, 3, 4]
    assert not list((out / "checkpoints").glob("*_temp"))


@pytest.mark.slow
def test_under_nohup_a_hangup_leaves_the_run_training(tmp_path, uninterrupted, held):
    """nohup ignores SIGHUP so that a run outlives its terminal, and the run
    keeps it ignored: a hang-up inside epoch 2 (the run held after the
    epoch's first graph call) changes nothing, every epoch is trained to the
    losses of a run never hung up, and nothing was stopped
    (docs/reliability.md)."""
    uninterrupted.start("dcgan")
    data_dir = write_mnist(tmp_path / "data", n_train=STOPPED_RUNS["dcgan"][2])
    out = tmp_path / "run"
    hung_up = held(stopped_run("dcgan", data_dir, out), preexec_fn=_hangup(signal.SIG_IGN))
    hung_up.hold(2)
    hung_up.send_signal(signal.SIGHUP)
    hung_up.release()
    assert hung_up.wait(timeout=300) == 0, hung_up.stderr.read()[-2000:]
    assert epochs(out) == [1, 2, 3, 4] and events(out) == []
    np.testing.assert_allclose(losses(out, GAN_LOSSES),
                               losses(uninterrupted("dcgan"), GAN_LOSSES), rtol=1e-6)


def test_deterministic_ops_are_said_recorded_and_kept_on_resume(synthetic_mnist, tmp_path):
    """--deterministic turns on TensorFlow's op determinism for the process
    (a process of its own: it cannot be turned off again), says so, and
    config.json records it, in the command that resumes the run too; the
    run trains (every op of a step has a deterministic kernel on the CPU)."""
    done = run_script("gan_keras/train.py", "--model", "mlp_gan", "--deterministic",
                      "--data-dir", synthetic_mnist, "--epochs", 1, "--metrics-every", 0,
                      "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr[-2000:]
    assert ", deterministic ops, seed" in done.stdout
    config = RunDir(tmp_path / "run").read_config()
    assert config["args"]["deterministic"] is True
    assert "--deterministic" in config["command"].split()
