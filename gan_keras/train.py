"""Train a GAN of the reports on MNIST. Report 000 trained the TensorFlow
tutorial's DCGAN for 2000 epochs:

    python gan_keras/train.py --epochs 2000

Outputs go to outputs/<model> (see README.md); running the same command
again resumes the run."""
import sys
from pathlib import Path

if not __package__:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402  (after the path is set)

MODELS = ("dcgan",)  # the --model choices; common/runs.py finds a run's script by them


def make_parser():
    parser = cli.make_parser(__doc__, models=MODELS, epochs=2000, batch_size=256)
    parser.add_argument("--noise-dim", type=cli.positive_int, default=100,
                        help="size of the generator's input noise")
    parser.add_argument("--lr", type=cli.positive_float, default=1e-4,
                        help="Adam learning rate of each network")
    return parser


def build(args, data):
    from gan_keras.dcgan import DCGAN  # imports TensorFlow: only once the input is checked

    return DCGAN(noise_dim=args.noise_dim, learning_rate=args.lr, seed=args.seed)


def main(argv=None):
    return cli.main(make_parser(), build, argv)


if __name__ == "__main__":
    sys.exit(main())
