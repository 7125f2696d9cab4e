"""The fast path changes how fast a model trains, not what it learns: both
feeds give every image once an epoch in a reproducible order, several steps
per graph call and XLA give the losses of one step per call, mixed precision
trains the same model (and a run may change precision when it resumes), and
the gradient step is the plain one whatever the loss scaling."""
import numpy as np
import pytest
import tensorflow as tf
from conftest import history, run_script

from common import devices
from gan_keras import train as gan_train
from vae_keras import train as vae_train

GAN_LOSSES = ["g_loss", "d_loss", "d_real", "d_fake"]
VAE_LOSSES = ["loss", "reconstruction", "kl", "test_elbo"]


def argv(data_dir, out, *args):
    """A run on the synthetic set (256 images, batch 64: 4 steps an epoch)."""
    return ["--data-dir", str(data_dir), "--out", str(out), "--batch-size", "64", "--seed", "2",
            "--metrics-every", "0", *map(str, args)]


def run(script, data_dir, out, *args):
    """That run in this process."""
    return script.main(argv(data_dir, out, *args))


def losses(out, names=GAN_LOSSES):
    return np.array([[float(row[c]) for c in names] for row in history(out)])


@pytest.mark.parametrize("on_device", [False, True], ids=["pipeline", "on_device"])
def test_feeds_reshuffle_each_epoch_reproducibly(synthetic_mnist, on_device):
    from common import data, feeding

    dataset = data.load("mnist", synthetic_mnist)
    batches = feeding.feed(dataset, lambda x: tf.constant(x), batch_size=100, seed=1,
                           on_device=on_device)
    assert batches.steps == 3

    def order(epoch):
        iterator = batches.epoch(epoch)
        epoch_batches = [next(iterator) for _ in range(batches.steps)]
        assert [len(x) for x, _ in epoch_batches] == [100, 100, 56]  # the last, smaller one kept
        images = np.concatenate([x.numpy() for x, _ in epoch_batches])
        labels = np.concatenate([y.numpy() for _, y in epoch_batches])
        for image, label in zip(images[:20], labels[:20]):  # labels travel with their images
            assert label == dataset.train_labels[np.flatnonzero(
                (dataset.train_images == image).all(axis=(1, 2)))[0]]
        return images

    first = order(1)
    np.testing.assert_array_equal(np.sort(first.reshape(256, -1), axis=0),
                                  np.sort(dataset.train_images.reshape(256, -1), axis=0))
    np.testing.assert_array_equal(order(1), first)  # same epoch, same order
    assert not np.array_equal(order(2), first)                       # next epoch, new order


@pytest.mark.slow
def test_several_steps_per_call_give_the_losses_of_one(synthetic_mnist, tmp_path):
    """4 steps an epoch: calls of 3 + 1 steps, or 4 calls of 1, same numbers."""
    for k in (1, 3):
        assert run(gan_train, synthetic_mnist, tmp_path / f"k{k}", "--epochs", 2,
                   "--precision", "fp32", "--steps-per-call", k) == 0
    # measured: 0 (both CPU kinds); float32's few ulps
    np.testing.assert_allclose(losses(tmp_path / "k3"), losses(tmp_path / "k1"), rtol=1e-6)


@pytest.mark.slow
def test_xla_gives_the_losses_of_the_plain_graph(synthetic_mnist, tmp_path):
    """Each run in a process of its own: XLA's compilations stay in the
    process that made them (0.22 GiB of the suite's peak memory)."""
    for jit in ("--jit", "--no-jit"):
        result = run_script("gan_keras/train.py", *argv(synthetic_mnist, tmp_path / jit,
                                                         "--epochs", 2, "--precision", "fp32", jit))
        assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(losses(tmp_path / "--jit"), losses(tmp_path / "--no-jit"),
                               rtol=5e-3)  # XLA fuses and reorders float arithmetic


# The DCGAN's fp16 only on a GPU: its float16 convolutions on a CPU take about 200x
# fp32's (bench/precisions.py), 150 s of this test for one 256-image epoch; the conv
# VAE's run in fp16 here, and the DCGAN's fp16 step is the next test's.
ON_GPU = bool(tf.config.list_physical_devices("GPU"))


@pytest.mark.slow
@pytest.mark.dynamics(seed=2)
@pytest.mark.usefixtures("mixed_precision_runs")
@pytest.mark.parametrize("script, names, precisions", [
    (gan_train, GAN_LOSSES, ("bf16", "fp16") if ON_GPU else ("bf16",)),
    (vae_train, VAE_LOSSES, ("bf16", "fp16"))], ids=["dcgan", "conv_vae"])
def test_mixed_precision_trains_the_same_model_and_resumes_in_another(
        synthetic_mnist, tmp_path, capsys, script, names, precisions, dynamics_seed, margin):
    """bf16 and fp16 (loss-scaled) losses track fp32's, each within 0.02 +
    5% of fp32's; weights stay float32; a run started in one precision
    resumes in another. fp16 on a CPU, and bf16 on a CPU without bfloat16
    instructions, say in one line that they are slow."""
    seeded = ("--seed", dynamics_seed)
    reference = tmp_path / "fp32"
    assert run(script, synthetic_mnist, reference, "--epochs", 2, "--precision", "fp32",
               *seeded) == 0
    for precision in precisions:
        out = tmp_path / precision
        capsys.readouterr()
        assert run(script, synthetic_mnist, out, "--epochs", 1, "--precision", precision,
                   *seeded) == 0
        said = capsys.readouterr().err
        assert ("note: fp16 on a CPU is slow" in said) == (precision == "fp16" and not ON_GPU)
        assert ("bf16 is emulated, slowly" in said) == (
            precision == "bf16" and not ON_GPU and not devices.cpu_has_bf16())
        assert run(script, synthetic_mnist, out, "--epochs", 2, "--precision", "fp32",
                   *seeded) == 0
        assert [int(r["epoch"]) for r in history(out)] == [1, 2]
        ours, fp32 = losses(out, names), losses(reference, names)
        # measured over 5 seeds (--dynamics-seeds 1 2 3 4 5, 2026-12-01): the largest gap
        # 0.03 to 0.11 of the tolerance (DCGAN, bf16 and fp16), 0.002 to 0.10 (conv VAE)
        margin.below(f"{script.__name__.split('.')[0]} {precision}: largest gap to fp32 in "
                     "units of 0.02 + 5% of fp32's", (abs(ours - fp32) / (0.02 + 0.05 * abs(fp32))).max(), 1)


@pytest.mark.slow
def test_fp16_policy_builds_float16_layers_with_float32_weights(synthetic_mnist):
    """One DCGAN step in mixed_float16, on 8 images (a float16 step on a CPU
    is slow: above)."""
    import keras

    from common import data
    from gan_keras.dcgan import DCGAN

    keras.mixed_precision.set_global_policy("mixed_float16")
    model = DCGAN("report000", noise_dim=100, loss="bce", learning_rate=1e-4, beta_1=0.9,
                  seed=0)
    generator = model.networks["generator"]
    assert generator.layers[0].compute_dtype == "float16"
    assert {w.dtype for w in generator.weights} == {"float32"}
    assert isinstance(model.optimizers["generator_optimizer"], keras.optimizers.LossScaleOptimizer)
    images, labels = data.load("mnist", synthetic_mnist).train_images[:8], np.zeros(8)
    out = model.step((model.prepare(images), tf.constant(labels, tf.int32)))
    assert all(v.dtype == tf.float32 and np.isfinite(v.numpy()) for v in out.values())


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_apply_gradients_takes_the_plain_gradient_step(policy):
    """SGD(0.5) on a mean squared error: w <- w - 0.5 * dL/dw exactly, with
    or without fp16's loss scaling (scaled up for the backward pass, down
    before the update)."""
    import keras

    from common.model import apply_gradients

    keras.mixed_precision.set_global_policy(policy)
    layer = keras.layers.Dense(1, kernel_initializer="ones", dtype="float32")
    x = tf.constant([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    y = tf.constant([[1.0], [0.0], [2.0]])
    layer(x)
    optimizer = keras.optimizers.SGD(0.5)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(layer.trainable_variables)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((layer(x) - y) ** 2)
    apply_gradients(optimizer, tape, loss, layer.trainable_variables)

    residual = x.numpy() @ np.ones((2, 1)) - y.numpy()  # w = 1, b = 0 before the step
    expected_kernel = 1 - 0.5 * 2 * x.numpy().T @ residual / 3
    expected_bias = -0.5 * 2 * residual.mean(axis=0)
    np.testing.assert_allclose(layer.kernel.numpy(), expected_kernel, rtol=1e-6)
    np.testing.assert_allclose(layer.bias.numpy(), expected_bias, rtol=1e-6)


def test_profile_epoch_records_a_trace_of_that_epoch_only(synthetic_mnist, tmp_path):
    out = tmp_path / "run"
    assert run(gan_train, synthetic_mnist, out, "--epochs", 2, "--profile-epoch", 2) == 0
    traces = list((out / "logs" / "plugins" / "profile").glob("*/*.xplane.pb"))
    assert len(traces) == 1 and traces[0].stat().st_size > 1000


@pytest.mark.parametrize("kind", ["CPU-bf16", pytest.param("CPU", marks=pytest.mark.slow)])
def test_the_device_type_can_be_forced_and_a_vae_trains_in_fp32_on_either(
        kind, synthetic_mnist, tmp_path, monkeypatch, request):
    """GAN_VAE_DEVICE_TYPE makes any CPU read as either kind: the GANs then
    take that kind's precision, the VAEs (fp32_models) fp32 on both, and
    config.json's device says where its defaults came from."""
    from common import devices
    from common.rundir import RunDir

    if kind == "CPU-bf16":
        request.getfixturevalue("mixed_precision_runs")
    monkeypatch.setenv("GAN_VAE_DEVICE_TYPE", kind)
    assert devices.device_type() == kind
    for script, model in ((gan_train, "mlp_gan"), (vae_train, "mlp_vae")):
        out = tmp_path / model
        assert run(script, synthetic_mnist, out, "--model", model, "--epochs", 1,
                   "--train-size", 64) == 0  # one step: bf16 may be emulated, slowly
        config = RunDir(out).read_config()
        expected = {**devices.SPEED_DEFAULTS[kind],
                    "precision": "fp32" if model == "mlp_vae" or kind == "CPU" else "bf16"}
        assert {name: config["args"][name] for name in expected} == expected
        assert config["device"].endswith(f"speed defaults of {kind}, from GAN_VAE_DEVICE_TYPE)")


@pytest.mark.parametrize("cap, kind", [("AVX2", "CPU"), ("avx512_core_vnni", "CPU"),
                                       ("AVX512_CORE_BF16", "CPU-bf16"),
                                       ("AVX512_CORE_AMX", "CPU-bf16"), ("", "CPU-bf16")])
def test_a_cap_on_onednn_s_instructions_below_bfloat16_reads_as_a_cpu_without_it(
        cap, kind, monkeypatch):
    """ONEDNN_MAX_CPU_ISA, oneDNN's own switch, makes a bfloat16 CPU compute
    as one without (AVX2: a laptop's): its speed defaults follow it, and
    GAN_VAE_DEVICE_TYPE still wins."""
    from common import devices

    monkeypatch.setattr(devices, "cpu_flags", lambda: "flags : avx512f avx512_bf16 amx_bf16")
    monkeypatch.delenv(devices.DEVICE_TYPE_VARIABLE, raising=False)
    monkeypatch.setenv(devices.ISA_VARIABLE, cap)
    assert devices.device_type() == kind
    assert (f"oneDNN held to {cap.upper()} by ONEDNN_MAX_CPU_ISA" in devices.describe()) == bool(cap)
    monkeypatch.setenv(devices.DEVICE_TYPE_VARIABLE, "CPU-bf16")
    assert devices.device_type() == "CPU-bf16"


@pytest.mark.skipif(ON_GPU, reason="a GPU runs bf16 and fp16 whatever the CPU's cap")
def test_mixed_precision_on_a_cpu_capped_below_avx512_is_one_line_exit_2(
        synthetic_mnist, tmp_path, monkeypatch, capsys):
    """Under ONEDNN_MAX_CPU_ISA=AVX2 an AVX-512 CPU has no oneDNN kernels for
    bf16 or fp16, and TensorFlow would abort the process in its first step:
    asked for either, train.py says so in one line, before the evaluation's
    classifier trains, and writes nothing; its defaults there are fp32 (the
    test above)."""
    from common import devices

    monkeypatch.setattr(devices, "cpu_flags", lambda: "flags : avx512f")
    monkeypatch.setenv(devices.ISA_VARIABLE, "avx2")
    monkeypatch.delenv(devices.DEVICE_TYPE_VARIABLE, raising=False)
    for precision in ("bf16", "fp16"):
        assert run(gan_train, synthetic_mnist, tmp_path / "run", "--precision", precision,
                   "--metrics-every", 1, "--classifier-dir", tmp_path / "classifier") == 2
        (line,) = capsys.readouterr().err.splitlines()  # prog: __main__.py, in this process
        assert line.endswith(
            f": error: --precision {precision} cannot run under ONEDNN_MAX_CPU_ISA=avx2 on this "
            f"AVX-512 CPU (oneDNN has no {precision} kernels below AVX-512 and would abort): use "
            f"--precision fp32, or lift the cap")
        assert not (tmp_path / "run").exists() and not (tmp_path / "classifier").exists()


def test_an_unknown_device_type_is_one_line_exit_2(synthetic_mnist, tmp_path):
    from conftest import run_script

    result = run_script("gan_keras/train.py", "--data-dir", synthetic_mnist, "--out",
                        tmp_path / "run", env={"GAN_VAE_DEVICE_TYPE": "TPU",
                                               "TF_CPP_MIN_LOG_LEVEL": None})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "train.py: error: GAN_VAE_DEVICE_TYPE=TPU: expected one of CPU, CPU-bf16, GPU (or "
        "unset, to read the machine's)"]
    assert not (tmp_path / "run").exists()


def test_the_device_line_says_how_many_gpus_a_run_uses(monkeypatch):
    """On a host of 4 GPUs: a run on GPU:0 leaves 3 unused, a mirrored run
    over 2 names both."""
    import types

    from common import devices

    gpus = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(4)]
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda device: {"device_name": "NVIDIA H100"})
    monkeypatch.delenv(devices.ISA_VARIABLE, raising=False)
    monkeypatch.delenv(devices.DEVICE_TYPE_VARIABLE, raising=False)
    two = types.SimpleNamespace(extended=types.SimpleNamespace(
        worker_devices=["/job:localhost/replica:0/task:0/device:GPU:0",
                        "/job:localhost/replica:0/task:0/device:GPU:1"]))
    assert devices.describe() == "GPU:0 NVIDIA H100 (4 GPUs seen, 3 more unused)"
    assert devices.describe(two) == "2 GPUs, NVIDIA H100 (4 GPUs seen, 2 more unused)"
