"""Are the differences real? Runs that differ only by their seed form a
group; a metric is reported per group as its mean, standard deviation and
every seed's value, and one group is called better than another only when
a Welch t-test says the difference holds beyond the seeds' spread.

Lucic et al. 2018 ("Are GANs Created Equal?", section 5) found the spread
between seeds of one GAN on MNIST as large as the differences between GAN
variants: one run per configuration cannot tell a real difference from a
lucky seed, and these sentences say so instead of naming a winner. The
reports' Markdown tables (`markdown`) are made here too."""
import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from common.evaluation.metrics import LABELS
from common.runs import run_controls

ALPHA = 0.05  # two-sided significance level of the Welch t-test
RULE = (f"A is called better than B only when Welch's t-test (unequal variances, two-sided) "
        f"gives p < {ALPHA} for the difference of their means over seeds; otherwise they "
        f"cannot be told apart. With one run in a group there is no spread to test against.")
# Significant digits a metric's mean is shown with: the likelihoods' nats
# need their decimals (-156.2, not -156).
DIGITS = {"test_elbo": 4, "nll_iw": 4, "modes": 4}
# The direction of each metric: True where lower is better.
LOWER_IS_BETTER = {"fd": True, "kid": True, "label_kl": True, "nll_iw": True,
                   "classifier_score": False, "coverage": False, "precision": False,
                   "recall": False, "test_elbo": False, "modes": False, "mode_kl": True}


def title(metric):
    """A metric in words, as a figure's panel names it."""
    return LABELS[metric] + (" (lower is better)" if LOWER_IS_BETTER[metric] else "")


def markdown(header, rows):
    """A Markdown table's lines: `header`, then each of `rows` (cells as text)."""
    return [_cells(header), "|" + " --- |" * len(header), *map(_cells, rows)]


def _cells(row):
    return "| " + " | ".join(map(str, row)) + " |"


def group_table(header, groups, cell):
    """Markdown, when some group has several seeds: per group of runs that
    differ only by their seed ({group: its members}), its number of seeds
    and cell(members, i) for the i-th column of `header`."""
    if all(len(members) == 1 for members in groups.values()):
        return []
    return ["", "Per group of runs that differ only by their seed, the mean ± standard "
            "deviation over its seeds:", "",
            *markdown(["group", "seeds", *header],
                      [[group, len(members), *[cell(members, i) for i in range(len(header))]]
                       for group, members in groups.items()])]


def configuration(config):
    """What defines a run but its seed: its model and run-defining arguments
    (config.json), as a hashable key. Runs with equal keys are seeds of one
    configuration."""
    args = config.get("args", {})
    return (config.get("model"),) + tuple(sorted(
        (key, repr(value)) for key, value in args.items()
        if key not in run_controls(config.get("model")) and key != "seed"))


def groups(paths, configs, names):
    """{group name: indexes of its runs}: runs whose configurations are
    equal, in the order first given. A group of several seeds is named
    after its runs' common directory when they share one that no other
    group's runs are in, else after its first run's name."""
    by_key = {}
    for index, config in enumerate(configs):
        by_key.setdefault(configuration(config), []).append(index)
    named = {}
    for members in by_key.values():
        parents = {Path(paths[i]).resolve().parent for i in members}
        others = {Path(paths[i]).resolve().parent for i in range(len(paths)) if i not in members}
        shared = len(members) > 1 and len(parents) == 1 and not parents & others
        named[next(iter(parents)).name if shared else names[members[0]]] = members
    return named


@dataclasses.dataclass
class Spread:
    """One metric over a group's seeds."""

    values: list  # one per seed, in the group's order

    @property
    def n(self):
        return len(self.values)

    @property
    def mean(self):
        return float(np.mean(self.values))

    @property
    def std(self):
        """The sample standard deviation (0 for a single seed)."""
        return float(np.std(self.values, ddof=1)) if self.n > 1 else 0.0

    def text(self, digits=3):
        """mean ± std (or the value, for one seed)."""
        if self.n == 1:
            return f"{self.mean:.{digits}g}"
        return f"{self.mean:.{digits}g} ± {self.std:.2g}"


def welch(a, b):
    """(t, p) of Welch's two-sided t-test between two Spreads; None when a
    group has a single seed. Equal constant values give p = 1 (no
    difference); different constants, p = 0."""
    if a.n < 2 or b.n < 2:
        return None
    if a.std == 0 and b.std == 0:
        return (0.0, 1.0) if a.mean == b.mean else (math.copysign(math.inf, a.mean - b.mean), 0.0)
    with warnings.catch_warnings():  # values equal but for their last bits: scipy's
        warnings.simplefilter("ignore", RuntimeWarning)  # warning of lost precision says nothing
        result = stats.ttest_ind(a.values, b.values, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def ranking(groups, metric, label):
    """Sentences comparing the best group by `metric` with each other, by
    RULE: {group name: Spread}; `label` names the metric."""
    ordered = sorted(groups.items(), key=lambda item: item[1].mean,
                     reverse=not LOWER_IS_BETTER[metric])
    (best, top), rest = ordered[0], ordered[1:]
    sentences = []
    for name, other in rest:
        tested = welch(top, other)
        digits = DIGITS.get(metric, 3)
        numbers = f"{top.text(digits)} against {other.text(digits)}"
        if tested is None:
            sentences.append(
                f"{best} and {name} cannot be told apart by {label} ({numbers}): "
                + ("one run of a configuration gives" if min(top.n, other.n) == 1
                   else "runs of a configuration give")
                + " no spread to test the difference against; train several seeds.")
        elif tested[1] < ALPHA and top.mean != other.mean:
            sentences.append(f"{best} is better than {name} by {label}: {numbers} over "
                             f"{top.n} and {other.n} seeds (Welch t = {tested[0]:.2f}, "
                             f"p = {tested[1]:.2g}).")
        else:
            sentences.append(f"{best} and {name} cannot be told apart by {label}: {numbers} "
                             f"over {top.n} and {other.n} seeds (Welch p = {tested[1]:.2g}).")
    return sentences
