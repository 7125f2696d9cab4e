"""Train a GAN of the reports on MNIST. Report 000 trained the TensorFlow
tutorial's DCGAN for 2000 epochs:

    python gan_keras/train.py --epochs 2000

The other reports' GANs: --model mlp_gan --preset report001|report003|report004,
--model dcgan --preset report001|report004 (the second DCGAN form),
--model infogan, --model vaegan; --loss bce|lsgan|wgan-gp|hinge for any of them.
Outputs go to outputs/<model>[_<preset>][_<loss>] (see docs/outputs.md); running
the same command again resumes the run."""
import sys
from pathlib import Path

if not __package__:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import arguments, cli  # noqa: E402  (after the path is set)
from common.errors import UsageError  # noqa: E402
from gan_keras.presets import LOSSES, PRESETS  # noqa: E402

MODELS = tuple(PRESETS)  # the --model choices; common/runs.py finds a run's script by them
# Report 000's pictures of the DCGAN (section 5), and 2500 for a longer run:
# the epochs whose checkpoints a run keeps for good
KEEP_EPOCHS = (5, 50, 100, 250, 500, 1000, 1250, 1500, 1750, 2000, 2500)


def make_parser():
    # the VAE-GAN's reconstruction is a VAE's: fp32 by default, as the VAEs
    parser = cli.make_parser(__doc__, models=MODELS, epochs=2000, batch_size=256,
                             keep_epochs=KEEP_EPOCHS, presets=PRESETS, fp32_models=("vaegan",),
                             check=check)
    add = parser.add_argument
    add("--loss", choices=LOSSES, default="bce",
        help="bce: cross-entropy (Goodfellow et al. 2014); lsgan: least squares (Mao et al. "
             "2017); wgan-gp: Wasserstein with gradient penalty 10 and 5 critic steps per "
             "generator step, Adam(0, 0.9) (Gulrajani et al. 2017); hinge: the "
             "discriminator's hinge loss (Lim & Ye 2017; Miyato et al. 2018)")
    add("--noise-dim", type=arguments.positive_int, default=None,
        help="size of the generator's noise; the VAE-GAN's latent size (default: the preset's)")
    add("--lr", type=arguments.positive_float, default=None,
        help="Adam learning rate of each network (default: the preset's)")
    add("--g-lr", type=arguments.positive_float, default=None,
        help="infogan: the generator's own learning rate (default: the preset's)")
    add("--beta-1", type=arguments.unit_interval, default=None,
        help="Adam beta_1 (default: the preset's; wgan-gp uses its paper's 0, beta_2 0.9)")
    add("--gamma", type=arguments.positive_float, default=None,
        help="vaegan: weight of the feature reconstruction in the decoder's loss "
             "(default: the preset's)")
    add("--pack", type=arguments.positive_int, default=1,
        help="PacGAN (Lin et al. 2018): the discriminator judges PACK images at once, "
             "concatenated along the channels, real with real and generated with generated; "
             "a step's --batch-size images make batch/PACK packs; 1: no packing")
    return parser


def check(args, data):
    """A UsageError for a --pack the training set's batches cannot fill."""
    last = len(data.train_images) % args.batch_size
    if args.pack > args.batch_size or 0 < last < args.pack:
        raise UsageError(f"--pack {args.pack}: a batch of "
                         f"{min(args.batch_size, last or args.batch_size)} images makes no pack "
                         f"of {args.pack}; choose another --batch-size (or --train-size)")


def build(args, data):
    # the model modules import TensorFlow: only once the input is checked
    from gan_keras.dcgan import DCGAN
    from gan_keras.infogan import InfoGAN
    from gan_keras.mlp_gan import MLPGAN
    from gan_keras.vaegan import VAEGAN

    shared = {"noise_dim": args.noise_dim, "loss": args.loss, "learning_rate": args.lr,
              "beta_1": args.beta_1, "seed": args.seed, "pack": args.pack}
    if args.model == "vaegan":
        return VAEGAN(data, gamma=args.gamma, **shared)
    model = {"dcgan": DCGAN, "mlp_gan": MLPGAN, "infogan": InfoGAN}[args.model]
    return model(args.preset, generator_learning_rate=args.g_lr, channels=data.channels,
                 **shared)


def main(argv=None):
    return cli.main(make_parser(), build, argv)


if __name__ == "__main__":
    sys.exit(main())
