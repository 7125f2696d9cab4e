"""Sample-quality metrics on feature vectors (one row per image) of real and
generated images, in float64 numpy. Each function cites the paper whose
definition it follows; common/evaluation/evaluator.py applies them in the evaluation
classifier's feature space."""
import numpy as np

# What an evaluation reports, in order, and each in words; and the
# likelihoods a VAE's evaluation adds.
METRICS = ("fd", "kid", "kid_se", "classifier_score", "coverage", "label_kl", "precision",
           "recall")
MODE_METRICS = ("modes", "mode_kl")  # Stacked MNIST's, after METRICS
LABELS = {"fd": "Frechet distance", "kid": "kernel distance (KID)",
          "kid_se": "  its standard error", "classifier_score": "classifier score",
          "coverage": "classes covered (>= 1%)", "label_kl": "label KL from uniform",
          "precision": "precision (k=3)", "recall": "recall (k=3)",
          "test_elbo": "test-set ELBO (nats)", "nll_iw": "NLL bound (nats)",
          "modes": "modes hit (of 1000)", "mode_kl": "mode KL from uniform"}
KID_BLOCK = 1000  # images per block of the kernel distance, as the usual subset size
COVERAGE_SHARE = 0.01  # a class is covered if at least 1% of the samples fall in it


def frechet_distance(real, fake):
    """Frechet distance between Gaussians fitted to two feature sets
    (Heusel et al. 2017, eq. 6, "FID"):

        |mu_r - mu_f|^2 + Tr(C_r) + Tr(C_f) - 2 Tr((C_r^1/2 C_f C_r^1/2)^1/2)

    Both square roots are of symmetric positive semi-definite matrices, taken
    by eigendecomposition with round-off negative eigenvalues set to 0: stable
    where the usual sqrtm(C_r C_f) of a non-symmetric product can turn
    complex. Compare values only between equal sample sizes: the estimate is
    biased upwards, more so for fewer samples."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    c_r, c_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root_r = _psd_sqrt(c_r)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_r @ c_f @ root_r), 0, None)).sum()
    mean_gap = ((real.mean(axis=0) - fake.mean(axis=0)) ** 2).sum()
    return float(mean_gap + np.trace(c_r) + np.trace(c_f) - 2 * cross)


def _psd_sqrt(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def kernel_distance(real, fake, block=KID_BLOCK, seed=0):
    """Kernel distance ("KID", Binkowski et al. 2018, section 3 and
    appendix D): the unbiased estimate of the squared MMD with the cubic
    polynomial kernel k(x, y) = (x.y / d + 1)^3, about 0 (possibly negative)
    for two samples of one distribution whatever their size.

    Returns (mean, standard error) over disjoint random blocks of `block`
    images of each set (at least two blocks): 10 for the default 10,000
    samples; with fewer blocks the error is itself rough (mean/error follows
    a t distribution with blocks - 1 degrees of freedom). Not the usual 100
    overlapping subsets: their estimates are correlated, and std/sqrt(100)
    understates the error."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    n = min(len(real), len(fake))
    m = min(block, n // 2)
    rng = np.random.default_rng(seed)
    real, fake = real[rng.permutation(len(real))[:n]], fake[rng.permutation(len(fake))[:n]]
    kernel = lambda a, b: (a @ b.T / real.shape[1] + 1.0) ** 3  # noqa: E731
    estimates = []
    for start in range(0, n - m + 1, m):
        x, y = real[start:start + m], fake[start:start + m]
        k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates.append(within - 2 * k_xy.mean())
    estimates = np.array(estimates)
    return float(estimates.mean()), float(estimates.std(ddof=1) / np.sqrt(len(estimates)))


def classifier_score(probabilities):
    """exp(E_x KL(p(y|x) || p(y))), p(y) the mean prediction: the Inception
    Score of Salimans et al. 2016 (section 4) with the evaluation classifier.
    1 for identical predictions, at most the number of classes (10) for
    confident predictions spread evenly over the classes."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    marginal = p.mean(axis=0, keepdims=True)
    return float(np.exp((p * (np.log(p) - np.log(marginal))).sum(axis=1).mean()))


def label_histogram(probabilities, classes=10):
    """The share of samples the classifier puts in each class."""
    predicted = np.argmax(probabilities, axis=1)
    return np.bincount(predicted, minlength=classes) / len(predicted)


def class_coverage(probabilities):
    """How many classes hold at least 1% of the samples (10 = all digits)."""
    return int((label_histogram(probabilities) >= COVERAGE_SHARE).sum())


def label_kl_from_uniform(probabilities):
    """KL(predicted-label histogram || uniform) in nats: 0 when every class
    is equally frequent, log 10 = 2.30 when all samples are one class."""
    share = label_histogram(probabilities)
    present = share > 0
    return float((share[present] * np.log(share[present] * len(share))).sum())


def modes_hit(modes):
    """How many distinct modes the samples fall in: Stacked MNIST's count of
    mode collapse (Metz et al. 2017, section 3.3.2; Srivastava et al. 2017,
    section 5.2), each sample's mode the digits the classifier reads in its
    three channels."""
    return int(len(np.unique(modes)))


def mode_kl(modes, count=1000):
    """KL(the samples' mode histogram || uniform over `count` modes) in
    nats, as PacGAN's code computes it (Lin et al. 2018; fjxmlzn/PacGAN,
    VEEGAN_experiment/model.py): sum of p log(p / (1 / count)) over the
    modes hit, empty modes adding nothing; 0 when every mode is equally
    frequent, log 1000 = 6.91 when every sample is one mode."""
    share = np.bincount(np.asarray(modes), minlength=count) / len(modes)
    share = share[share > 0]
    return float((share * np.log(share * count)).sum())


def precision_recall(real, fake, k=3, chunk=1000):
    """Improved precision and recall (Kynkaanniemi et al. 2019, section 3):
    each set's manifold is the union of balls around its points reaching
    their k-th nearest neighbour in the same set. Precision is the share of
    generated points inside the real manifold (fidelity), recall the share
    of real points inside the generated one (diversity). Squared distances
    in float32: only their order matters, and they are most of the cost.

    Caveat (Naeem et al. 2020): a few real outliers have balls so large
    that they cover empty regions, where blank samples land (an untrained
    DCGAN scores precision 1.0: docs/evaluation.md#the-metrics). Read
    precision together with the Frechet distance and the classifier score."""
    real, fake = np.asarray(real, np.float32), np.asarray(fake, np.float32)
    real_radii, fake_radii = _knn_radii(real, k, chunk), _knn_radii(fake, k, chunk)
    precision = np.concatenate([(_squared_distances(fake[i:i + chunk], real) <= real_radii)
                                .any(axis=1) for i in range(0, len(fake), chunk)]).mean()
    recall = np.concatenate([(_squared_distances(real[i:i + chunk], fake) <= fake_radii)
                             .any(axis=1) for i in range(0, len(real), chunk)]).mean()
    return float(precision), float(recall)


def _knn_radii(points, k, chunk):
    """Squared distance from each point to its k-th nearest other point."""
    # position 0 of each sorted row is the point itself, at distance 0
    return np.concatenate([np.partition(_squared_distances(points[i:i + chunk], points), k,
                                        axis=1)[:, k] for i in range(0, len(points), chunk)])


def _squared_distances(a, b):
    return np.clip((a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2 * a @ b.T,
                   0, None)
