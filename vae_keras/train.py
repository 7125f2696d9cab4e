"""Train a VAE of the reports on MNIST. Report 000 trained the TensorFlow
tutorial's convolutional VAE for 1000 epochs:

    python vae_keras/train.py --epochs 1000

The other reports' VAEs: --model mlp_vae --preset report001|report003|report004,
--model cvae (conditional on the digit, report 001); the VAE whose likelihood
the literature reports (Rezende & Mohamed 2015, on binarized MNIST):
--model mlp_vae --preset rezende2015. Outputs go to
outputs/<model>[_<preset>] (see docs/outputs.md); running the same command again
resumes the run."""
import sys
from pathlib import Path

if not __package__:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import arguments, cli  # noqa: E402  (after the path is set)
from common.errors import UsageError  # noqa: E402
from vae_keras.presets import PRESETS  # noqa: E402

MODELS = tuple(PRESETS)  # the --model choices; common/runs.py finds a run's script by them
# Report 000's pictures of the conv VAE (section 5): the epochs whose
# checkpoints a run keeps for good
KEEP_EPOCHS = (5, 50, 100, 250, 1000)
CONDITIONAL = ("cvae",)  # conditional on the digit: they take --digit (checked before TensorFlow)


def make_parser():
    # fp32 by default: in bf16 the conv VAE's test ELBO lags (docs/speed.md#same-model-same-curves)
    parser = cli.make_parser(__doc__, models=MODELS, epochs=1000, batch_size=32,
                             keep_epochs=KEEP_EPOCHS, presets=PRESETS, fp32_models=MODELS,
                             check=check)
    add = parser.add_argument
    add("--latent-dim", type=arguments.positive_int, default=None,
        help="size of the latent space; 2 draws the latent figures (default: the preset's)")
    add("--lr", type=arguments.positive_float, default=None,
        help="Adam learning rate (default: the preset's)")
    add("--kl", choices=("mc", "analytic"), default=None,
        help="KL term of the ELBO: one-sample Monte Carlo (the tutorial's) or closed form "
             "(default: the preset's)")
    add("--binarize", choices=("static", "dynamic", "none"), default=None,
        help="static: pixels thresholded at 0.5 once (the tutorial's); dynamic: a fresh "
             "Bernoulli draw of every pixel at every step; none: grey-level targets, as the "
             "reports' PyTorch code (default: the preset's)")
    add("--beta", type=arguments.positive_float, default=1.0,
        help="the KL term's weight in the training loss: above 1 a beta-VAE (Higgins et al. "
             "2017); the test ELBO stays the ELBO (beta 1)")
    add("--lr-milestones", type=arguments.epoch_list, default=(), metavar="LIST",
        help="multiply the learning rate by --lr-decay after each of these epochs (PyTorch's "
             "MultiStepLR): epochs separated by commas, or none (default: the preset's)")
    add("--lr-decay", type=arguments.positive_float, default=0.1,
        help="the factor of --lr-milestones (default: the preset's, else 0.1)")
    add("--eval-every", type=arguments.positive_int, default=1, role=arguments.CONTROLS,
        help="the whole test set's ELBO into history.csv every K epochs (and at the last)")
    return parser


def check(args, data):
    """A UsageError for a conditional model on a data set whose labels are
    not the one digit it draws, and for a rollback that would halve a
    learning rate a schedule sets."""
    if args.model in CONDITIONAL and data.digits is not None:
        raise UsageError(f"--model {args.model} draws the one digit it is given, and a "
                         f"{data.name} image holds three; choose another --model or --dataset")
    if args.lr_milestones and args.on_nonfinite == "rollback":
        raise UsageError("--on-nonfinite rollback halves a constant learning rate, and "
                         "--lr-milestones schedules it: choose one (--lr-milestones none)")


def build(args, data):
    # the model modules import TensorFlow: only once the input is checked
    import tensorflow as tf

    from common.feeding import steps_per_epoch
    from vae_keras.conv_vae import ConvVAE
    from vae_keras.mlp_vae import MLPVAE, ConditionalVAE

    model = {"conv_vae": ConvVAE, "mlp_vae": MLPVAE, "cvae": ConditionalVAE}[args.model]
    return model(data, args.preset, latent_dim=args.latent_dim, learning_rate=args.lr,
                 kl=args.kl, binarize=args.binarize, beta=args.beta, seed=args.seed,
                 lr_milestones=args.lr_milestones, lr_decay=args.lr_decay,
                 # built in the strategy's scope: across replicas the last batch is dropped
                 steps_per_epoch=steps_per_epoch(len(data.train_images), args.batch_size,
                                                 whole=tf.distribute.has_strategy()))


def main(argv=None):
    return cli.main(make_parser(), build, argv)


if __name__ == "__main__":
    sys.exit(main())
