"""The sample-quality metrics on feature vectors with known answers."""
import math

import numpy as np
import pytest

from common.evaluation import metrics


def gaussian(n, mean=0.0, scale=1.0, dim=8, seed=0):
    return np.random.default_rng(seed).normal(mean, scale, (n, dim))


def test_frechet_distance_of_a_set_with_itself_is_zero_and_it_is_symmetric():
    a, b = gaussian(2000, seed=1), gaussian(2000, mean=0.3, scale=1.5, seed=2)
    # measured over four OpenBLAS kernels (OPENBLAS_CORETYPE): at most 1.8e-14, and a
    # relative 7.3e-15; bounds about 10x
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=2e-13)
    assert metrics.frechet_distance(a, b) == pytest.approx(metrics.frechet_distance(b, a),
                                                           rel=1e-13)


def test_frechet_distance_matches_the_closed_form_for_diagonal_covariances():
    """For commuting covariances the formula reduces to
    |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2, with the sample moments."""
    rng = np.random.default_rng(3)
    a = rng.normal(0, [1.0, 2.0, 0.5], (50_000, 3))
    b = rng.normal([1, 0, 0], [2.0, 1.0, 0.5], (50_000, 3))
    sd_a, sd_b = a.std(axis=0, ddof=1), b.std(axis=0, ddof=1)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + ((sd_a - sd_b) ** 2).sum()
    # the sample covariances are only nearly diagonal (off-diagonal ~ 1/sqrt(50,000)):
    # measured a relative gap of 2.2e-5, second order in them; bound 10x
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=2e-4)
    assert expected == pytest.approx(1 + 1 + 1, rel=0.02)


def test_frechet_distance_grows_with_noise():
    a = gaussian(3000, seed=4)
    rng = np.random.default_rng(5)
    distances = [metrics.frechet_distance(a, a + rng.normal(0, noise, a.shape))
                 for noise in (0.1, 0.5, 1.0, 2.0)]
    assert distances == sorted(distances) and distances[0] > 0


def test_kernel_distance_is_about_zero_for_one_distribution_and_not_for_two():
    """10,000 of each, as the default: 10 independent blocks."""
    same = metrics.kernel_distance(gaussian(10_000, seed=6), gaussian(10_000, seed=7))
    shifted = metrics.kernel_distance(gaussian(10_000, seed=6),
                                      gaussian(10_000, mean=0.3, seed=7))
    assert abs(same[0]) < 3 * same[1], same
    assert shifted[0] > 10 * shifted[1] and shifted[0] > 50 * abs(same[0]), (same, shifted)


def unbiased_mmd2(x, y):
    """The unbiased estimate of the squared MMD with KID's kernel
    k(a, b) = (a.b / d + 1)^3, pair by pair (Gretton et al. 2012, eq. 3)."""
    k = lambda a, b: (np.dot(a, b) / len(a) + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    within_x = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    within_y = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    across = sum(k(a, b) for a in x for b in y) / (m * n)
    return within_x + within_y - 2 * across


def test_kernel_distance_is_the_unbiased_mmd_of_each_block():
    """12 images of each set, blocks of 4: the sets are shuffled by
    default_rng(seed) and cut into 3 disjoint blocks; KID is the mean of the
    blocks' unbiased MMD estimates, its error their standard error."""
    real, fake = gaussian(12, seed=11), gaussian(12, mean=0.5, seed=12)
    rng = np.random.default_rng(0)
    real_order, fake_order = rng.permutation(12), rng.permutation(12)
    blocks = [unbiased_mmd2(real[real_order[i:i + 4]], fake[fake_order[i:i + 4]])
              for i in (0, 4, 8)]
    kid, se = metrics.kernel_distance(real, fake, block=4, seed=0)
    # measured: relative gaps of at most 1.1e-15 and 1.3e-15 (four OpenBLAS kernels)
    assert kid == pytest.approx(np.mean(blocks), rel=1.5e-14)
    assert se == pytest.approx(np.std(blocks, ddof=1) / math.sqrt(3), rel=1.5e-14)
    assert kid > 0


def test_kernel_distance_needs_at_least_two_blocks():
    kid, se = metrics.kernel_distance(gaussian(10, seed=1), gaussian(10, seed=2))
    assert math.isfinite(kid) and math.isfinite(se)  # two blocks of 5


def test_classifier_score_bounds():
    one_hot = np.eye(10)[np.arange(1000) % 10]
    # measured: 2.4e-10, from clipping probabilities at 1e-12; bound about 10x
    assert metrics.classifier_score(one_hot) == pytest.approx(10.0, rel=3e-9)
    assert metrics.classifier_score(np.tile(np.eye(10)[3], (100, 1))) == pytest.approx(1.0)
    assert metrics.classifier_score(np.full((100, 10), 0.1)) == pytest.approx(1.0)


def test_coverage_and_label_kl():
    one_class = np.tile(np.eye(10)[7], (500, 1))
    assert metrics.class_coverage(one_class) == 1
    assert metrics.label_kl_from_uniform(one_class) == pytest.approx(math.log(10))
    balanced = np.eye(10)[np.arange(1000) % 10]
    assert metrics.class_coverage(balanced) == 10
    assert metrics.label_kl_from_uniform(balanced) == pytest.approx(0.0, abs=1e-12)
    rare = np.eye(10)[np.r_[np.zeros(995, int), np.arange(1, 6)]]  # 0.1% each: not covered
    assert metrics.class_coverage(rare) == 1


def test_precision_and_recall():
    real = gaussian(1500, seed=8)
    assert metrics.precision_recall(real, real.copy()) == (1.0, 1.0)
    near = metrics.precision_recall(real, gaussian(1500, seed=9))
    assert min(near) > 0.6  # another sample of the same distribution
    shifted = metrics.precision_recall(real, gaussian(1500, mean=1.5, seed=9))
    assert max(shifted) < min(near) / 2
    # a generator that only ever draws the centre: faithful, not diverse
    collapsed = metrics.precision_recall(real, gaussian(1500, scale=0.2, seed=10))
    assert collapsed[0] > 0.9 and collapsed[1] < 0.2


def test_frechet_distance_is_the_closed_form_with_full_rotated_covariances():
    """Heusel et al.'s formula computed independently, with scipy's sqrtm of
    the product, on the sample moments of two sets whose covariances are
    full and rotated against each other (an FD that ignored correlations,
    or took the trace of each root, would be off by far more than 1e-8)."""
    from scipy import linalg

    rng = np.random.default_rng(13)
    rotation = linalg.qr(rng.normal(size=(5, 5)))[0]
    a = rng.normal(size=(4000, 5)) @ np.diag([3.0, 1.0, 0.5, 2.0, 0.2]) @ rotation
    b = rng.normal(1.0, 1.0, (4000, 5)) @ rng.normal(size=(5, 5))
    c_a, c_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = (((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(c_a) + np.trace(c_b)
                - 2 * np.trace(linalg.sqrtm(c_a @ c_b).real))
    # measured: a relative gap of at most 1.9e-15 (four OpenBLAS kernels); bound 10x
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=2e-14)
    # the correlations matter here: with the diagonals alone the answer is another
    diagonal = (((a.mean(0) - b.mean(0)) ** 2).sum()
                + ((np.sqrt(np.diag(c_a)) - np.sqrt(np.diag(c_b))) ** 2).sum())
    assert abs(diagonal - expected) > 0.1 * expected


def brute_force_precision_recall(real, fake, k=3):
    """Kynkaanniemi et al.'s definition, point by point in float64: a point
    is inside a set's manifold if it is within some member's distance to
    that member's k-th nearest other member."""
    def radii(points):
        return [sorted(np.linalg.norm(points - p, axis=1))[k] for p in points]

    def inside(points, members, member_radii):
        return np.mean([any(np.linalg.norm(p - m) <= r for m, r in zip(members, member_radii))
                        for p in points])

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


def test_precision_and_recall_are_a_brute_force_k_nearest_neighbour_count():
    """Exactly, on sets where no distance ties within float32's rounding."""
    real, fake = gaussian(60, dim=4, seed=14), gaussian(50, mean=0.4, scale=1.3, dim=4, seed=15)
    expected = brute_force_precision_recall(real, fake)
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1  # a case that can go wrong both ways
    assert metrics.precision_recall(real, fake, chunk=7) == expected
    assert metrics.precision_recall(real, fake, k=5) == brute_force_precision_recall(
        real, fake, k=5)


def test_classifier_score_is_the_exponentiated_mean_kl_of_scipy_s_entropy():
    """An intermediate case, neither extreme: scipy.stats.entropy(p, q) is
    KL(p || q)."""
    from scipy import stats

    p = np.random.default_rng(16).dirichlet(np.full(10, 0.3), size=200)
    marginal = p.mean(axis=0)
    expected = math.exp(np.mean([stats.entropy(row, marginal) for row in p]))
    assert 2 < expected < 9
    # measured: a relative gap of 1.3e-13 (every OpenBLAS kernel); bound about 10x
    assert metrics.classifier_score(p) == pytest.approx(expected, rel=1.5e-12)


def test_coverage_counts_a_class_at_exactly_one_percent_and_not_below():
    """1000 samples: a class of 10 (1%) is covered, one of 9 is not."""
    for count, covered in ((10, 2), (9, 1)):
        labels = np.r_[np.zeros(1000 - count, int), np.full(count, 3)]
        assert metrics.class_coverage(np.eye(10)[labels]) == covered
