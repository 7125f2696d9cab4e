"""python -m common.experiments NAME ...: run the experiment NAME."""
import importlib
import sys

from common.experiments import EXPERIMENTS, __doc__ as USAGE


def main(argv):
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if not argv or argv[0] not in EXPERIMENTS:
        unknown = f"unknown experiment {argv[0]!r}; " if argv else ""
        print(f"python -m common.experiments: error: {unknown}choose one of "
              f"{', '.join(EXPERIMENTS)}", file=sys.stderr)
        return 2
    return importlib.import_module(EXPERIMENTS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
