"""Train a VAE of the reports on MNIST. Report 000 trained the TensorFlow
tutorial's convolutional VAE for 1000 epochs:

    python vae_keras/train.py --epochs 1000

Outputs go to outputs/<model> (see README.md); running the same command
again resumes the run."""
import sys
from pathlib import Path

if not __package__:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402  (after the path is set)

MODELS = ("conv_vae",)  # the --model choices; common/runs.py finds a run's script by them


def make_parser():
    parser = cli.make_parser(__doc__, models=MODELS, epochs=1000, batch_size=32)
    parser.add_argument("--latent-dim", type=cli.positive_int, default=2,
                        help="size of the latent space (2 draws the latent figures)")
    parser.add_argument("--lr", type=cli.positive_float, default=1e-4, help="Adam learning rate")
    parser.add_argument("--kl", choices=("mc", "analytic"), default="mc",
                        help="KL term of the ELBO: one-sample Monte Carlo (the tutorial's) or "
                             "closed form")
    parser.add_argument("--eval-every", type=cli.positive_int, default=1,
                        help="the whole test set's ELBO into history.csv every K epochs (and "
                             "at the last)")
    parser.add_argument("--binarize", choices=("static", "dynamic"), default="static",
                        help="static: pixels thresholded at 0.5 once (the tutorial's); dynamic: "
                             "a fresh Bernoulli draw of every pixel at every step")
    return parser


def build(args, data):
    from vae_keras.conv_vae import ConvVAE  # imports TensorFlow: only once the input is checked

    return ConvVAE(data, latent_dim=args.latent_dim, learning_rate=args.lr, kl=args.kl,
                   binarize=args.binarize, seed=args.seed)


def main(argv=None):
    return cli.main(make_parser(), build, argv)


if __name__ == "__main__":
    sys.exit(main())
