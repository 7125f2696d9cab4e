"""tf.distribute: the CPU split into 2 logical devices (which must happen
before TensorFlow starts, hence a fresh process per check). A mirrored step
of the shared loop takes exactly the single-device step of the global batch,
a mirrored run of a model tracks a single-device run, and two processes
on this host train one model as two workers."""
import json
import subprocess
import textwrap

import pytest
from conftest import command, environment, free_ports, history, run_script

TWO_CPUS = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""

MIRRORED_STEP = TWO_CPUS + """
import json
import keras
import numpy as np
from common import devices, feeding, training
from common.model import apply_gradients


def trained_weights(strategy):
    # one SGD step on a linear model, through the loop's stepper and feed
    with strategy.scope() if strategy else tf.device("/CPU:0"):
        layer = keras.layers.Dense(1, kernel_initializer="ones")
        layer.build((None, 3))
        optimizer = keras.optimizers.SGD(0.1)
        optimizer.build(layer.trainable_variables)

    def step(batch):
        x, y = batch
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((layer(x)[:, 0] - tf.cast(y, tf.float32)) ** 2)
        apply_gradients(optimizer, tape, loss, layer.trainable_variables)
        return {"loss": loss}

    class Data:
        train_images = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
        train_labels = np.arange(8)
    batches = feeding.feed(Data, tf.constant, batch_size=8, seed=0, strategy=strategy)
    progress = training._Progress(["loss"])
    run_steps = training._stepper(step, strategy, False, progress, layer.trainable_variables)
    assert bool(run_steps(batches.epoch(1), 1))  # finite
    return [float(progress.sums["loss"])] + [float(w) for w in np.concatenate(
        [v.numpy().ravel() for v in layer.trainable_variables])]


mirrored = devices.make_strategy("mirrored")
print(json.dumps({"replicas": mirrored.num_replicas_in_sync,
                  "single": trained_weights(None), "mirrored": trained_weights(mirrored)}))
"""


@pytest.mark.slow
def test_a_mirrored_step_is_the_single_device_step_of_the_global_batch(tmp_path):
    """Each replica takes 4 of the 8 examples; the optimizer sums the
    replicas' gradients, so each must be scaled by 1/2 for the sum to be the
    gradient of the global mean (SGD: any other scale moves the weights
    elsewhere; the reported loss is the replicas' mean)."""
    script = tmp_path / "mirrored_step.py"
    script.write_text(textwrap.dedent(MIRRORED_STEP))
    done = run_script(script)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["mirrored"] == pytest.approx(result["single"], rel=1e-5)
    assert result["single"][1:] != pytest.approx([1, 1, 1, 0], abs=1e-3)  # the step moved


@pytest.mark.slow
@pytest.mark.dynamics(seed=4)
def test_a_mirrored_run_tracks_a_single_device_run(synthetic_mnist, tmp_path, dynamics_seed,
                                                   margin):
    """The conv VAE on 2 logical CPUs (global batch 64, 32 a replica) and on
    one, from the same weights and the same batches: the replicas draw other
    noise, so the ELBO agrees to a tolerance, not exactly."""
    script = tmp_path / "two_cpus.py"
    script.write_text(TWO_CPUS + "from vae_keras import train\nsys.exit(train.main(sys.argv[1:]))\n")
    common = ["--data-dir", synthetic_mnist, "--epochs", 3, "--batch-size", 64,
              "--seed", dynamics_seed,
              "--precision", "fp32", "--no-data-on-device"]
    mirrored = run_script(script, *common, "--strategy", "mirrored", "--out", tmp_path / "two")
    assert mirrored.returncode == 0, mirrored.stderr[-2000:]
    assert "2 replicas" in mirrored.stdout
    single = run_script("vae_keras/train.py", *common, "--out", tmp_path / "one")
    assert single.returncode == 0, single.stderr[-2000:]

    two, one = history(tmp_path / "two"), history(tmp_path / "one")
    # measured over 5 seeds (--dynamics-seeds 1 2 3 4 5, 2026-12-01): the largest gap 1.1e-5 to 9.5e-5
    # of the loss and 2.4e-6 to 1.6e-5 of the test ELBO; the ELBO's gain 1.42 to 2.06 nats
    for name in ("loss", "test_elbo"):
        margin.below(f"largest relative gap of {name}", max(
            abs(float(a[name]) - float(b[name])) / abs(float(b[name])) for a, b in zip(two, one)),
            0.01)
    margin.above("test_elbo gain, epoch 1 to 3",  # it did learn
                 float(one[-1]["test_elbo"]) - float(one[0]["test_elbo"]), 0)


@pytest.mark.slow
def test_two_workers_on_this_host_train_one_model(synthetic_mnist, tmp_path):
    """--strategy multiworker across 2 processes (TF_CONFIG on localhost):
    they train as 2 replicas of one model (the same losses on both); the
    chief writes --out, the other worker --out-worker1."""
    cluster = [f"localhost:{port}" for port in free_ports(2)]
    worker = command("vae_keras/train.py", "--strategy", "multiworker", "--data-dir",
                     synthetic_mnist, "--epochs", 2, "--batch-size", 64, "--seed", 4,
                     "--metrics-every", 0, "--out", tmp_path / "run")
    workers = [subprocess.Popen(
        worker, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=environment({"TF_CONFIG": json.dumps(
            {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}})}))
        for i in range(2)]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-2000:]
        assert "2 replicas" in output
    chief, other = history(tmp_path / "run"), history(tmp_path / "run-worker1")
    assert [r["loss"] for r in chief] == [r["loss"] for r in other]
    assert len(chief) == 2


def test_multiworker_without_tf_config_is_a_one_line_error(synthetic_mnist, tmp_path):
    done = run_script("vae_keras/train.py", "--strategy", "multiworker", "--data-dir",
                      synthetic_mnist, "--out", tmp_path / "run", env={"TF_CONFIG": ""})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "train.py: error: --strategy multiworker needs TF_CONFIG, JSON with the cluster and "
        "this host's task; it is not set"]
    assert not (tmp_path / "run").exists()
