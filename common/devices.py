"""Which device trains and how fast: the device in words, the tf.distribute
strategy of --strategy, the precisions of --precision, and the speed
settings each device type uses by default (measured with
bench/speed.py; docs/speed.md). TensorFlow is imported by the functions that
ask it, so that a command checks GAN_VAE_DEVICE_TYPE (forced_type) before
TensorFlow starts."""
import functools
import os
import platform

from common.errors import UsageError

PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}

# The fastest settings measured per device type that learn what the
# tutorial's loop learns; the figures and the runs behind each are in
# docs/speed.md#what-that-chose and docs/evaluation.md#parity-with-the-tutorials-loop.
# - bf16 for the GANs on CPUs with bfloat16 instructions: faster, and no
#   quality lost at equal epochs; fp32 without them (emulated bf16 is slower).
# - fp32 for the VAEs and the VAE-GAN everywhere (fp32_models in their
#   train.py): in bf16 the conv VAE's test ELBO lags
#   (docs/speed.md#same-model-same-curves).
# - 25 steps a graph call and the data on the device: they change which
#   batches and noise a run draws, not what a step computes (tested).
# - no XLA: 2x slower on the CPU. The GPU's are not measured yet.
#
# Set to CPU, CPU-bf16 or GPU, the device type whose speed defaults (and
# likelihood budget) a command takes, whatever the machine has: the fp32
# path of a CPU without bfloat16 on one that has it, or the other way
# round (emulated, slow). It does not move training off a GPU.
DEVICE_TYPE_VARIABLE = "GAN_VAE_DEVICE_TYPE"
SPEED_DEFAULTS = {
    "CPU": {"precision": "fp32", "jit": False, "steps_per_call": 25, "data_on_device": True},
    "CPU-bf16": {"precision": "bf16", "jit": False, "steps_per_call": 25, "data_on_device": True},
    "GPU": {"precision": "fp32", "jit": False, "steps_per_call": 25, "data_on_device": True},
}


def describe(strategy=None):
    """The devices TensorFlow trains on, in words, for the log and
    config.json: the CPU, GPU:0, or the GPUs a `strategy` spans, and how
    many GPUs this process leaves unused."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    notes = (f"; oneDNN held to {isa_cap()} by {ISA_VARIABLE}" if isa_cap() else "") + (
        f"; speed defaults of {forced_type()}, from {DEVICE_TYPE_VARIABLE}" if forced_type() else "")
    if not gpus:
        return f"CPU (TensorFlow {tf.__version__} sees no GPU{notes})"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    used = 1 if strategy is None else sum(
        "GPU" in device.upper() for device in strategy.extended.worker_devices)
    unused = f", {len(gpus) - used} more unused" if len(gpus) > used else ""
    where = f"GPU:0 {name}" if used == 1 else f"{used} GPUs, {name}"
    return f"{where} ({len(gpus)} GPU{'s' if len(gpus) > 1 else ''} seen{unused}{notes})"


def device_type():
    """GPU, CPU-bf16 (a CPU with bfloat16 instructions) or CPU: the
    machine's, or the one DEVICE_TYPE_VARIABLE names (forced_type)."""
    forced = forced_type()
    if forced:
        return forced
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "GPU"
    return "CPU-bf16" if cpu_has_bf16() else "CPU"


# oneDNN, which runs TensorFlow's convolutions and matrix products on x86,
# uses no instructions beyond the set ONEDNN_MAX_CPU_ISA names: AVX2 makes
# any recent x86 CPU compute as a laptop's does, AVX512_CORE_VNNI as a
# server's without bfloat16 (docs/speed.md, "Other CPUs, emulated"). The sets
# with bfloat16 instructions name BF16, FP16 (which implies it), AMX or
# AVX10; those below AVX-512 have no kernels for bf16 or fp16 at all.
ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
BF16_ISAS = ("BF16", "FP16", "AMX", "AVX10")
BELOW_AVX512 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2")


def isa_cap():
    """The instruction set ISA_VARIABLE caps oneDNN to, in capitals ("": none)."""
    cap = os.environ.get(ISA_VARIABLE, "").upper()
    return "" if cap in ("ALL", "DEFAULT") else cap


def cpu_has_bf16():
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX) that
    oneDNN may use: False under an ISA_VARIABLE cap that leaves them out."""
    cap = isa_cap()
    if cap and not any(name in cap for name in BF16_ISAS):
        return False
    flags = cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_precision(precision):
    """A UsageError for a mixed precision this process cannot run: on an
    AVX-512 CPU capped below it, TensorFlow still hands bf16 and fp16 to the
    oneDNN kernels it picks by the CPU's own flags, which the cap forbids,
    and oneDNN aborts the whole process (seen with TensorFlow 2.21)."""
    import tensorflow as tf

    if (precision != "fp32" and isa_cap() in BELOW_AVX512 and "avx512f" in cpu_flags()
            and not tf.config.list_physical_devices("GPU")):
        raise UsageError(f"--precision {precision} cannot run under {ISA_VARIABLE}="
                         f"{os.environ[ISA_VARIABLE]} on this AVX-512 CPU (oneDNN has no "
                         f"{precision} kernels below AVX-512 and would abort): use --precision "
                         f"fp32, or lift the cap")


def check_jit(jit, strategy):
    """A UsageError for XLA across replicas that are not all GPUs: Keras
    sums the replicas' gradients with a merge_call, which TensorFlow allows
    in an XLA-compiled step only on GPUs (docs/distributed.md)."""
    if jit and strategy is not None and not all(
            "GPU" in device.upper() for device in strategy.extended.worker_devices):
        raise UsageError("--jit cannot compile a step that runs on several CPU replicas "
                         "(TensorFlow sums their gradients outside XLA only on GPUs): use "
                         "--no-jit, or --strategy none")


def cpu_flags():
    """The CPU's flags as /proc/cpuinfo lists them ("" where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:  # not Linux: no way to tell, assume none
        return ""


def forced_type():
    """The device type DEVICE_TYPE_VARIABLE names, None when it is unset or
    empty; a UsageError for a name that is not a device type."""
    forced = os.environ.get(DEVICE_TYPE_VARIABLE) or None
    if forced is not None and forced not in SPEED_DEFAULTS:
        raise UsageError(f"{DEVICE_TYPE_VARIABLE}={forced}: expected one of "
                         f"{', '.join(SPEED_DEFAULTS)} (or unset, to read the machine's)")
    return forced


def speed_defaults(kind=None, *, fp32=False):
    """The --precision, --jit, --steps-per-call and --data-on-device to use
    when not given, for device type `kind` (this one by default); fp32 for
    a model that trains in fp32 everywhere (a train.py's fp32_models)."""
    defaults = dict(SPEED_DEFAULTS[kind or device_type()])
    if fp32:
        defaults["precision"] = "fp32"
    return defaults


def precision_note(precision):
    """A line for the user when `precision` is one this machine does badly,
    else None: fp16 without a GPU (TensorFlow 2.21 has no fast float16
    convolution on a CPU; bench/precisions.py), bf16 on a CPU without
    bfloat16 instructions (emulated: docs/speed.md, "A CPU without AVX-512")."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return None
    if precision == "fp16":
        return ("fp16 on a CPU is slow: TensorFlow's float16 convolutions there take about 200x "
                "the time of fp32's (docs/speed.md); fp16 is for GPUs")
    if precision == "bf16" and not cpu_has_bf16():
        return ("this CPU has no bfloat16 instructions, so bf16 is emulated, slowly (a DCGAN "
                "epoch took 12x fp32's on an AVX2 CPU: docs/speed.md); fp32 is its default")
    return None


def make_strategy(name):
    """The tf.distribute strategy of --strategy. none: TensorFlow's default,
    one device. mirrored: MirroredStrategy over this host's GPUs (or its
    logical CPUs when it has none). multiworker: MultiWorkerMirroredStrategy
    across the hosts TF_CONFIG names. auto: mirrored on several GPUs, else
    none (returned as None: the loop then calls the step directly). Call it
    before anything else runs in TensorFlow: a multi-worker strategy must
    configure the runtime's collective operations first."""
    import tensorflow as tf

    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "none"
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return _mirrored(tuple(device.name for device in devices))
    return None


@functools.cache
def _mirrored(devices):
    """One MirroredStrategy per set of devices and process: the collective
    operations of a second would reuse the first's keys, and TensorFlow
    aborts when the tensors behind a key change shape (a second model
    trained in the same process)."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(list(devices))


def versions(*packages):
    """{"python": its version, package: its version (None if not installed)}."""
    from importlib import metadata

    found = {"python": platform.python_version()}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def memory_mb():
    """{"host_mb": resident memory of this process now, "device_mb": peak
    memory of GPU:0 since the last call (GPU only)}, for history.csv: a long
    run's memory must stay flat from epoch to epoch."""
    import tensorflow as tf

    try:
        with open("/proc/self/statm") as f:
            host = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: the peak instead
        import resource
        host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # bytes on macOS
    usage = {"host_mb": host}
    if tf.config.list_physical_devices("GPU"):
        usage["device_mb"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        tf.config.experimental.reset_memory_stats("GPU:0")
    return usage

