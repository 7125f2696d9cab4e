"""The Evaluator: generated images scored against the test set in the
feature space of the evaluation classifier (common/evaluation/classifier.py),
with the metrics of common/evaluation/metrics.py. Training scores with it
into metrics.csv (common/cli.py), python -m common.evaluation.evaluate into
evaluation.json, the parity experiment the tutorial's exported samples."""
from common.evaluation import metrics
from common.evaluation.metrics import METRICS
from common.images import to_uint8

SAMPLE_SEED = 0  # every evaluation of every run scores the samples of the same noise


class Evaluator:
    """Scores N generated images against the first N test images."""

    columns = ("epoch", "seconds", "samples", *METRICS)  # of metrics.csv

    def __init__(self, classifier, data, samples=10_000):
        self.classifier = classifier
        self.n = min(samples, len(data.test_images))  # equal sizes: FD's bias depends on it
        self.real = classifier.features_and_probabilities(data.test_images[:self.n])

    def score(self, model):
        """The metrics of the model's samples (see `compare`)."""
        return self.scoring(model)()

    def scoring(self, model):
        """Score the model's samples in two halves: the device's (sampling
        and the classifier's features) now, while the weights are the ones to
        score; the host's (the statistics, numpy only) returned as a function
        to call later, from another thread if one likes."""
        outputs = self.classifier.features_and_probabilities(
            to_uint8(model.sample(self.n, SAMPLE_SEED)))
        return lambda: {"samples": self.n, **self.statistics(*outputs)}

    def compare(self, images):
        """The metrics of `images` (uint8, or floats in [0, 1]) against the
        test images."""
        return self.statistics(*self.classifier.features_and_probabilities(images[:self.n]))

    def statistics(self, features, probabilities):
        """The metrics of generated images' classifier features and class
        probabilities against the test images'."""
        real_features, _ = self.real
        kid, kid_se = metrics.kernel_distance(real_features, features)
        precision, recall = metrics.precision_recall(real_features, features)
        return {"fd": metrics.frechet_distance(real_features, features),
                "kid": kid, "kid_se": kid_se,
                "classifier_score": metrics.classifier_score(probabilities),
                "coverage": metrics.class_coverage(probabilities),
                "label_kl": metrics.label_kl_from_uniform(probabilities),
                "precision": precision, "recall": recall}

    def labels(self, images, asked=None):
        """Report 003's label predictor, as numbers: the share of `images`
        the classifier puts in each class, its mean confidence (top
        probability), and, when the images were asked to be given digits
        (`asked`, a conditional model), how often the classifier agrees."""
        _, probabilities = self.classifier.features_and_probabilities(images[:self.n])
        report = {"label_histogram": metrics.label_histogram(probabilities).tolist(),
                  "confidence": float(probabilities.max(axis=1).mean())}
        if asked is not None:
            report["conditional_accuracy"] = float(
                (probabilities.argmax(axis=1) == asked[:self.n]).mean())
        return report

    def floor(self, data):
        """The same metrics for real training images: the best a model can
        expect at this sample size."""
        return self.compare(data.train_images[:self.n])
