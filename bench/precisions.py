"""What each --precision costs the convolutions of the report-000 DCGAN on
this machine: the discriminator's 5x5 stride-2 Conv2D and the generator's
5x5 stride-2 Conv2DTranspose, forward and backward, in float32, bfloat16
and float16, median seconds of a few calls after a warm-up call. A script
that prints figures, not a test:

    python bench/precisions.py [--batch 16] [--repeats 3]

docs/speed.md ("What that chose", --precision) has the figures: on a CPU,
TensorFlow 2.21 has no fast float16 convolution, which is why a run asked
for fp16 there says so."""
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.arguments import Parser, positive_int  # noqa: E402

DTYPES = ("float32", "bfloat16", "float16")


def layers(keras):
    """(name, a function that builds the layer, input shape without the
    batch) of the DCGAN's two heaviest convolutions (SPEC, report 000)."""
    return [("Conv2D 64->128, 14x14",
             lambda: keras.layers.Conv2D(128, 5, strides=2, padding="same"), (14, 14, 64)),
            ("Conv2DTranspose 128->64, 7x7", lambda: keras.layers.Conv2DTranspose(
                64, 5, strides=2, padding="same", use_bias=False), (7, 7, 128))]


def seconds(tf, layer, x, repeats):
    """Median seconds of one forward and backward pass of `layer` on `x`."""
    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(tf.cast(layer(x), tf.float32))
        return tape.gradient(y, [x, *layer.trainable_variables])

    step(x)  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        [g.numpy() for g in step(x)]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_parser():
    parser = Parser(prog="python bench/precisions.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=positive_int, default=16, help="images per call")
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed calls per figure")
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)

    from common import quiet
    tf = quiet.start_tensorflow()  # before common.devices imports TensorFlow
    # each layer and precision is traced once, on purpose: not the retracing
    # TensorFlow warns of when a few calls follow each trace (--repeats 1)
    tf.get_logger().setLevel("ERROR")
    import keras

    from common import devices

    print(f"{devices.describe()}, batch {args.batch}, median of {args.repeats} calls")
    print(f"{'layer':30s}" + "".join(f"{dtype:>12s}" for dtype in DTYPES) + "  float16/float32")
    for name, build, shape in layers(keras):
        row = {}
        for dtype in DTYPES:
            keras.mixed_precision.set_global_policy(dtype)  # the layer built next computes in it
            x = tf.random.stateless_normal((args.batch, *shape), seed=(0, 0), dtype=dtype)
            row[dtype] = seconds(tf, build(), x, args.repeats)
        print(f"{name:30s}" + "".join(f"{row[d]:11.4f}s" for d in DTYPES)
              + f"  {row['float16'] / row['float32']:.0f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
