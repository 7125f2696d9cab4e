"""One configuration trained under several seeds: the spread that tells a
real difference between configurations from a lucky seed (Lucic et al.
2018, "Are GANs Created Equal?").

    python -m common.experiments seeds --model mlp_gan --preset report001 --epochs 30 \\
        --seeds 1 2 3 [--workers N | --cluster ADDRESS]

Every other argument goes to the model's train.py. Each seed is an ordinary
run directory, OUT/seed_<s> (OUT: outputs/seeds_<the run's default name>,
or --out), so running the same command again resumes the unfinished ones;
OUT/seeds.md holds the last scored metrics of every seed with their mean and
standard deviation. python -m common.evaluation.compare OUT A_SECOND_OUT
compares such groups, seed spread included."""
import os
import sys
from pathlib import Path

from common import arguments, cli
from common.arguments import Parser, seed
from common.atomic import atomic_write
from common.evaluation import spread
from common.experiments import sweep
from common.rundir import RunDir


def make_parser():
    parser = Parser(prog="python -m common.experiments seeds", description=__doc__)
    parser.add_argument("--model", required=True, help="the model to train (any train.py's)")
    parser.add_argument("--seeds", type=seed, nargs="+", default=[1, 2, 3],
                        help="one run per seed")
    parser.add_argument("--out", default=None,
                        help="the sweep's directory (default: outputs/seeds_<run name>)")
    sweep.add_options(parser)
    return parser


def set_by_the_sweep(args):
    """The train.py options the sweep sets itself."""
    return ("--seed", "--out")


def main(argv=None):
    parser = make_parser()
    args, training, script = sweep.parse(parser, argv, set_by_the_sweep)
    script_parser = script.make_parser()
    parsed = arguments.parse(script_parser, ["--model", args.model, *training])
    out = Path(args.out or os.path.join(
        "outputs", f"seeds_{Path(cli.default_out(script_parser, parsed)).name}"))
    done = sweep.run(parser, [sweep.training_run(f"seed_{s}", script, args.model, training, s,
                                                 out / f"seed_{s}") for s in args.seeds], args)
    print("\n".join(write_summary(out, args.seeds)))
    return 0 if done else 1


def write_summary(out, seeds):
    """OUT/seeds.md: each seed's last scored metrics, and their spread."""
    tables = {s: RunDir(out / f"seed_{s}").read_table("metrics") for s in seeds}
    scored = {s: rows[-1] for s, rows in tables.items() if rows}
    lines = [f"# {out.name}: {len(seeds)} seeds", ""]
    if not scored:
        lines.append("No seed has metrics.csv yet (train with --metrics-every K).")
    else:
        names = [name for name in spread.LOWER_IS_BETTER if name in next(iter(scored.values()))]
        lines += spread.markdown(["seed", "epoch", *names], [
            [s, row["epoch"], *[f"{row[n]:.4g}" for n in names]] for s, row in scored.items()])
        lines.append("| mean ± sd | | " + " | ".join(
            spread.Spread([row[n] for row in scored.values()]).text(spread.DIGITS.get(n, 3))
            for n in names) + " |")
    lines.append("")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "seeds.md", "w") as f:
        f.write("\n".join(lines))
    return lines


if __name__ == "__main__":
    sys.exit(main())
