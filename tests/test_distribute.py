"""tf.distribute: the CPU split into 2 logical devices (which must happen
before TensorFlow starts, hence a fresh process per check; any GPU hidden,
so that a GPU host tests the same 2 replicas). A mirrored step of the
shared loop takes the single-device step of the global batch, for a linear
model and for the report's DCGAN and conv VAE; every model trains
mirrored; fp16's overflow check sees every replica; a mirrored run tracks
a single-device run; and two processes on this host train one model as
two workers."""
import json
import subprocess
import textwrap

import numpy as np
import pytest
from conftest import command, environment, free_ports, history, run_script

TWO_CPUS = """
import sys
import tensorflow as tf
tf.config.set_visible_devices([], "GPU")
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""

MIRRORED_STEP = TWO_CPUS + """
import json
import keras
import numpy as np
from common import checkpoints, devices, feeding, training
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
    progress = checkpoints.Progress(["loss"])
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
    # measured: 0 (this CPU, and ONEDNN_MAX_CPU_ISA=AVX512_CORE); float32's few ulps
    assert result["mirrored"] == pytest.approx(result["single"], rel=1e-6)
    assert result["single"][1:] != pytest.approx([1, 1, 1, 0], abs=1e-3)  # the step moved


REAL_MODELS = TWO_CPUS + """
import json
import keras
import numpy as np
from common import checkpoints, data, devices, feeding, training
from common.layers import Dropout
from gan_keras.dcgan import DCGAN
from vae_keras.conv_vae import ConvVAE

mnist = data.load("mnist", sys.argv[1]).first(32)
mirrored = devices.make_strategy("mirrored")


def share(values):
    # this replica's rows of a global batch's `values`
    context = tf.distribute.get_replica_context()
    size = values.shape[0] // context.num_replicas_in_sync
    return values[context.replica_id_in_sync_group * size:][:size]


class SameNoise:  # the generator's noise: the same global batch on one device and on two
    def __init__(self, noise):
        self.noise = noise

    def normal(self, shape):
        return share(self.noise)


def same_noise_for_the_gan(model):
    model.rng = SameNoise(tf.random.stateless_normal([32, model.noise_dim], [5, 6]))
    for layer in model.discriminator.layers:  # each replica draws its own masks (below)
        if isinstance(layer, Dropout):
            layer.rate = 0.0


def same_noise_for_the_vae(model):
    eps = tf.random.stateless_normal([32, model.latent_dim], [7, 8])
    model.vae.reparameterize.call = lambda mean, logvar, _=None: (
        mean + tf.exp(0.5 * logvar) * share(eps))


def one_step(build, strategy, same_noise):
    # the weights (each replica's copy) and scalars after one step on 32 images
    keras.utils.set_random_seed(1)
    with strategy.scope() if strategy else tf.device("/CPU:0"):
        model = build()
    same_noise(model)
    before = [w.numpy() for network in model.networks.values() for w in network.weights]
    batches = feeding.feed(mnist, model.prepare, 32, 0, strategy=strategy)
    progress = checkpoints.Progress(model.log_names)
    training._stepper(model.step, strategy, False, progress, [])(batches.epoch(1), 1)
    copies = (lambda w: strategy.experimental_local_results(w.value)) if strategy else (
        lambda w: [w.value])
    weights = [[copy.numpy() for copy in copies(w)]
               for network in model.networks.values() for w in network.weights]
    synchronized = [layer.synchronized for network in model.networks.values()
                    for layer in network.layers if isinstance(layer, keras.layers.BatchNormalization)]
    moved = max(float(np.max(np.abs(w[0] - b))) for w, b in zip(weights, before))
    return weights, {k: float(v) for k, v in progress.sums.items()}, synchronized, moved


result = {}
for name, build, same_noise in (("dcgan", DCGAN, same_noise_for_the_gan),
                                ("conv_vae", lambda: ConvVAE(mnist), same_noise_for_the_vae)):
    one, one_scalars, one_sync, moved = one_step(build, None, same_noise)
    two, two_scalars, two_sync, _ = one_step(build, mirrored, same_noise)
    result[name] = {
        "gap": max(float(np.max(np.abs(b[0] - a[0]) / (np.abs(a[0]) + 1e-3)))
                   for a, b in zip(one, two)),
        "moved": moved, "replicas_agree": all(np.array_equal(*copies) for copies in two),
        "scalars": [one_scalars, two_scalars], "synchronized": [one_sync, two_sync]}

with mirrored.scope():
    dropout = Dropout(0.5, seed=3)
masks = mirrored.experimental_local_results(tf.function(
    lambda: mirrored.run(lambda: dropout(tf.ones([8, 64]), training=True)))())
result["masks_differ"] = not np.array_equal(*[mask.numpy() for mask in masks])
print(json.dumps(result))
"""


@pytest.mark.slow
def test_a_mirrored_step_of_the_report_models_is_their_single_device_step(synthetic_mnist,
                                                                           tmp_path):
    """The report-000 DCGAN (BatchNorm, Dropout) and the conv VAE, one step
    on 32 images from the same weights, the same batch and the same noise:
    on 2 replicas the weights (the BatchNorm moving statistics included)
    are those of one device to float rounding, and both replicas hold the
    same copy. BatchNorm normalises over the global batch there (Keras's
    synchronized=True; not on one device, where it would change the bits:
    test_layers.py). What cannot match by construction: each replica draws
    its own dropout masks (here Dropout is off, and the replicas shown to
    differ)."""
    script = tmp_path / "real_models.py"
    script.write_text(textwrap.dedent(REAL_MODELS))
    done = run_script(script, synthetic_mnist)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("dcgan", "conv_vae"):
        # measured: the largest gap |two - one| / (|one| + 1e-3) over every weight
        # 1.8e-5 (DCGAN) and 3.6e-6 (conv VAE), the same under ONEDNN_MAX_CPU_ISA=AVX512_CORE
        # (float32 here on every CPU); with BatchNorm unsynchronized, 0.76 (DCGAN); bound 11x
        assert result[name]["gap"] < 2e-4, result[name]
        assert result[name]["replicas_agree"], name
        assert result[name]["moved"] > 1e-5  # Adam's first step moves each weight by ~lr
        one, two = result[name]["scalars"]
        # measured: 1 ulp of d_loss (1.2e-7, rel 8e-8) and 2.6e-8 of the conv VAE's KL of
        # -0.027 (both CPU kinds); bound about 10x
        assert two == pytest.approx(one, rel=1e-6, abs=3e-7)
    assert result["dcgan"]["synchronized"] == [[False] * 3, [True] * 3]
    assert result["masks_differ"]


FP16_OVERFLOW = TWO_CPUS + """
import json
import keras
import numpy as np
from common import devices
from common.model import apply_gradients

keras.mixed_precision.set_global_policy("mixed_float16")
strategy = devices.make_strategy("mirrored")
with strategy.scope():
    layer = keras.layers.Dense(1, kernel_initializer="ones")
    layer.build((None, 3))
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.1))
    optimizer.build(layer.trainable_variables)


@tf.function
def step(rows):
    def replica(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.cast(layer(x), tf.float32) ** 2)
        apply_gradients(optimizer, tape, loss, layer.trainable_variables)
    strategy.run(replica, args=(strategy.experimental_distribute_values_from_function(
        lambda context: rows[context.replica_id_in_sync_group]),))


def state():
    return {"weights": [w.numpy().ravel().tolist() for w in layer.trainable_variables],
            "scale": float(optimizer.dynamic_scale.value.numpy())}


before = state()
# small inputs: the gradients times the loss scale (2 ** 15) stay within fp16's range
step(tf.constant([[[0.01, 0.02, 0.03]], [[np.inf, 0.01, 0.01]]]))  # replica 1 overflows
overflowed = state()
step(tf.constant([[[0.01, 0.02, 0.03]], [[0.01, 0.01, 0.01]]]))
print(json.dumps({"before": before, "overflowed": overflowed, "finite": state()}))
"""


@pytest.mark.slow
def test_fp16_skips_a_step_that_overflows_on_any_replica(tmp_path):
    """Keras's loss scaling looks at the first replica's gradients only: an
    inf on the second would reach the weights. With the check across
    replicas, no weight changes and the scale halves; a finite step then
    moves the weights."""
    script = tmp_path / "fp16.py"
    script.write_text(textwrap.dedent(FP16_OVERFLOW))
    done = run_script(script)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["overflowed"]["weights"] == result["before"]["weights"]
    assert result["overflowed"]["scale"] == result["before"]["scale"] / 2
    assert result["finite"]["weights"] != result["before"]["weights"]
    assert all(np.isfinite(w) for weights in result["finite"]["weights"] for w in weights)


EVERY_MODEL = TWO_CPUS + """
import json
import keras
from gan_keras import train as gan_train
from vae_keras import train as vae_train

SCRIPTS = {"gan": gan_train, "vae": vae_train}
statuses = []
for script, options in json.loads(sys.argv[2]):
    statuses.append(SCRIPTS[script].main(["--data-dir", sys.argv[1], "--epochs", "1",
                                          "--metrics-every", "0", "--strategy", "mirrored",
                                          "--seed", "1", *options]))
    keras.backend.clear_session(free_memory=True)  # the last model's graphs, before the next
print(json.dumps(statuses))
"""

# Every GAN (each loss, packing, InfoGAN, the VAE-GAN) and every VAE
MIRRORED_MODELS = [
    ("gan", ["--loss", "wgan-gp", "--batch-size", "16", "--train-size", "80"]),
    ("gan", ["--loss", "lsgan", "--pack", "2"]),
    ("gan", ["--model", "mlp_gan"]),
    ("gan", ["--model", "mlp_gan", "--loss", "hinge"]),
    ("gan", ["--model", "infogan", "--pack", "2"]),
    ("gan", ["--model", "vaegan", "--noise-dim", "16", "--train-size", "32"]),
    ("vae", ["--model", "conv_vae"]),
    ("vae", ["--model", "mlp_vae"]),
    ("vae", ["--model", "cvae"]),
]


@pytest.mark.slow
def test_every_model_trains_mirrored_in_fp32_and_bf16(synthetic_mnist, tmp_path,
                                                      mixed_precision_runs):
    """A few steps of each on 2 replicas, one process per precision, both
    at once (one MirroredStrategy serves a process's models:
    devices.make_strategy; sixteen in one process took 3.7 GiB);
    WGAN-GP's critic steps and its generator step among them (no optimizer
    step inside TensorFlow's control flow, which cannot reach the other
    replica). --jit across CPU replicas is one line, exit 2."""
    script = tmp_path / "every_model.py"
    script.write_text(textwrap.dedent(EVERY_MODEL))
    # each model's own --batch-size and --train-size, after the common ones, win
    runs = {precision: [(kind, ["--precision", precision, "--out",
                                str(tmp_path / f"{i}-{precision}"), "--batch-size", "16",
                                "--train-size", "64", "--steps-per-call", "2", *options])
                        for i, (kind, options) in enumerate(MIRRORED_MODELS)]
            for precision in ("fp32", "bf16")}
    runs["fp32"].append(("gan", ["--jit", "--out", str(tmp_path / "jit")]))
    processes = {precision: subprocess.Popen(
        command(script, synthetic_mnist, json.dumps(runs[precision])), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=environment()) for precision in runs}
    outputs = {precision: process.communicate(timeout=600)
               for precision, process in processes.items()}
    for precision, (stdout, stderr) in outputs.items():
        assert processes[precision].returncode == 0, stderr[-3000:]
        statuses = json.loads(stdout.strip().splitlines()[-1])
        assert statuses == [0] * len(MIRRORED_MODELS) + ([2] if precision == "fp32" else [])
    for kind, options in runs["fp32"][:-1] + runs["bf16"]:
        rows = history(options[options.index("--out") + 1])
        assert [row["epoch"] for row in rows] == ["1"], options
    assert outputs["fp32"][1].strip().splitlines()[-1].endswith(
        "error: --jit cannot compile a step that runs on several CPU replicas (TensorFlow sums "
        "their gradients outside XLA only on GPUs): use --no-jit, or --strategy none")
    assert not (tmp_path / "jit").exists()


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
    # measured over 5 seeds (--dynamics-seeds 1 2 3 4 5): the largest gap 1.1e-5 to 9.5e-5
    # of the loss and 2.4e-6 to 1.6e-5 of the test ELBO; the ELBO's gain 1.42 to 2.06 nats
    for name in ("loss", "test_elbo"):
        margin.below(f"largest relative gap of {name}", max(
            abs(float(a[name]) - float(b[name])) / abs(float(b[name])) for a, b in zip(two, one)),
            1e-3)
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
    workers = [subprocess.Popen(  # on the CPU: two processes would not share one GPU
        worker, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=environment({"CUDA_VISIBLE_DEVICES": "", "TF_CONFIG": json.dumps(
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
