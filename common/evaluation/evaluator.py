"""The Evaluator: generated images scored against the test set in the
feature space of the evaluation classifier (common/evaluation/classifier.py),
with the metrics of common/evaluation/metrics.py. Training scores with it
into metrics.csv (common/cli.py), python -m common.evaluation.evaluate into
evaluation.json, the parity experiment the tutorial's exported samples.

On Stacked MNIST each of an image's three channels is a digit for the MNIST
classifier, scored as docs/evaluation.md#stacked-mnist-modes-counted says."""
import numpy as np

from common.data import mode_of
from common.evaluation import metrics
from common.evaluation.metrics import METRICS, MODE_METRICS
from common.images import to_uint8

SAMPLE_SEED = 0  # every evaluation of every run scores the samples of the same noise
# Images scored per evaluation unless told: 10,000; on Stacked MNIST the
# 26,000 that VEEGAN and PacGAN count the modes of.
SAMPLES, STACKED_SAMPLES = 10_000, 26_000


def sample_count(data, samples=None):
    """The images an evaluation scores: `samples` (default SAMPLES, on
    Stacked MNIST STACKED_SAMPLES), at most the test set's size."""
    return min(samples or (STACKED_SAMPLES if data.digits is not None else SAMPLES),
               len(data.test_images))


class Evaluator:
    """Scores N generated images against the first N test images."""

    columns = ("epoch", "seconds", "samples", *METRICS)  # of metrics.csv (stacked: + modes)

    def __init__(self, classifier, data, samples=None):
        self.classifier = classifier
        if data.digits is not None:
            self.columns = (*self.columns, *MODE_METRICS)
        self.n = sample_count(data, samples)  # as many as the test images: FD's bias depends on it
        self.real = self.features(data.test_images[:self.n])

    def features(self, images):
        """(features [n, 128] float64, class probabilities [n, 10]) of
        images (uint8, or floats in [0, 1]); for stacked images [n, 28, 28,
        3], the channels' side by side: ([n, 384], [n, 3, 10])."""
        if np.ndim(images) == 3:
            return self.classifier.features_and_probabilities(images)
        parts = [self.classifier.features_and_probabilities(images[..., c])
                 for c in range(images.shape[-1])]
        return (np.concatenate([f for f, _ in parts], axis=1),
                np.stack([p for _, p in parts], axis=1))

    def score(self, model):
        """The metrics of the model's samples (see `compare`)."""
        return self.scoring(model)()

    def scoring(self, model):
        """Score the model's samples in two halves: the device's (sampling
        and the classifier's features) now, while the weights are the ones to
        score; the host's (the statistics, numpy only) returned as a function
        to call later, from another thread if one likes."""
        outputs = self.features(to_uint8(model.sample(self.n, SAMPLE_SEED)))
        return lambda: {"samples": self.n, **self.statistics(*outputs)}

    def compare(self, images):
        """The metrics of `images` (uint8, or floats in [0, 1]) against the
        test images."""
        return self.statistics(*self.features(images[:self.n]))

    def statistics(self, features, probabilities):
        """The metrics of generated images' classifier features and class
        probabilities (`features`) against the test images'."""
        real_features, _ = self.real
        kid, kid_se = metrics.kernel_distance(real_features, features)
        precision, recall = metrics.precision_recall(real_features, features)
        digits = probabilities.reshape(-1, probabilities.shape[-1])  # every channel's
        scores = {"fd": metrics.frechet_distance(real_features, features),
                  "kid": kid, "kid_se": kid_se,
                  "classifier_score": metrics.classifier_score(_joint(probabilities)),
                  "coverage": metrics.class_coverage(digits),
                  "label_kl": metrics.label_kl_from_uniform(digits),
                  "precision": precision, "recall": recall}
        scores.update(mode_scores(probabilities))
        return scores

    def labels(self, images, asked=None):
        """Report 003's label predictor, as numbers: the share of `images`
        the classifier puts in each class, its mean confidence (top
        probability), and, when the images were asked to be given digits
        (`asked`, a conditional model), how often the classifier agrees."""
        _, probabilities = self.features(images[:self.n])
        digits = probabilities.reshape(-1, probabilities.shape[-1])  # stacked: every channel's
        report = {"label_histogram": metrics.label_histogram(digits).tolist(),
                  "confidence": float(digits.max(axis=1).mean())}
        if asked is not None:
            report["conditional_accuracy"] = float(
                (probabilities.argmax(axis=1) == asked[:self.n]).mean())
        return report

    def real_classifier_score(self):
        """The classifier score of the test images scored against."""
        return metrics.classifier_score(_joint(self.real[1]))

    def real_modes(self):
        """On Stacked MNIST the floor of the mode metrics: the modes hit and
        the mode KL of the test images scored against, as the classifier
        reads them (about 1000, and near 0); {} on other data."""
        return mode_scores(self.real[1])

    def floor(self, data):
        """The same metrics for real training images: the best a model can
        expect at this sample size."""
        return self.compare(data.train_images[:self.n])


def mode_scores(probabilities):
    """On Stacked MNIST (probabilities per channel: n x 3 x 10) the modes
    hit and the mode KL of the images; {} on other data."""
    if probabilities.ndim != 3:
        return {}
    modes = modes_of(probabilities)
    return {"modes": metrics.modes_hit(modes), "mode_kl": metrics.mode_kl(modes)}


def modes_of(probabilities):
    """The mode of each stacked image, [n], from its channels' class
    probabilities [n, 3, 10]: 100 d0 + 10 d1 + d2 for the digits the
    classifier reads, as common.data labels the stacked images."""
    return mode_of(probabilities.argmax(axis=2))


def _joint(probabilities):
    """Class probabilities [n, 10], or for stacked images [n, 3, 10] the
    probabilities of their 1000 modes, [n, 1000] (the channels read
    independently: the product of theirs)."""
    if probabilities.ndim == 2:
        return probabilities
    joint = probabilities[:, 0]
    for channel in range(1, probabilities.shape[1]):
        joint = (joint[:, :, None] * probabilities[:, channel, None, :]).reshape(len(joint), -1)
    return joint
