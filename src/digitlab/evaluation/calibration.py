"""Honest confidence: temperature scaling, calibration error, and when to say "unsure".

A network trained to minimise the log-likelihood is usually *over*-confident on digits
it gets wrong: its top probability says 0.99 more often than it is right 99 % of the
time.  Guo et al. (2017) showed that one number fixes most of it: divide the logits by a
temperature T > 1 fitted on held-out data.  T changes no prediction (the order of the
logits stays), only how sure each one claims to be -- so it is fitted on the validation
set, never the test set, and stored in the model file.

How well confidence matches accuracy is measured two ways: the negative log-likelihood
(NLL) of the true digit, and the expected calibration error (ECE): the images are put
into 15 equal-width bins by confidence, and the gaps between each bin's accuracy and its
mean confidence are averaged, weighted by how many images each bin holds.

"Unsure" is a threshold on the calibrated top probability, chosen on validation digits
so that a small, fixed share of them (:data:`UNSURE_SHARE`) falls below it.  A
convolutional network has a second judge: how far an image's features lie from every
digit's (:mod:`digitlab.nn.novelty`), fitted on training digits.  Then the two
thresholds are fitted together, each flagging the same share of validation digits, so
that together -- an answer is unsure when either judge says so -- they flag
:data:`UNSURE_SHARE` of them.  The second judge was chosen, and the share split evenly,
on generated kinds of non-digit no model trains on; how well doubt then separates
digits from things that are not digits is measured on images no model has seen
(:mod:`digitlab.evaluation.doubt`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from digitlab.data.mnist import Split
from digitlab.nn.model_file import Calibration, Model, Reading, log_probabilities
from digitlab.nn.novelty import FIT_IMAGES, DigitFeatures
from digitlab.spec import DIGITS

BINS = 15
#: The share of validation digits the "unsure" threshold is allowed to flag.
UNSURE_SHARE = 0.01


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin: its mean confidence, its accuracy and how many images it holds."""

    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


@dataclass(frozen=True)
class CalibrationScores:
    """How well a model's confidence matches its accuracy on one set of images."""

    nll: float
    ece: float
    reliability: Reliability

    @classmethod
    def of(cls, probabilities: np.ndarray, labels: np.ndarray) -> CalibrationScores:
        """NLL, ECE and the reliability table of these probabilities for ``labels``."""
        return cls(
            probabilities_nll(probabilities, labels),
            expected_calibration_error(probabilities, labels),
            reliability(probabilities, labels),
        )


def probabilities_nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true digit) of probabilities (the NLL of :class:`CalibrationScores`)."""
    true = log_probabilities(probabilities)[np.arange(len(labels)), labels]
    return float(-true.mean())


def tempered(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Class probabilities from logits divided by ``temperature``."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def negative_log_likelihood(
    logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0
) -> float:
    """Mean -log p(true digit) after dividing the logits by ``temperature``."""
    scaled = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-scaled[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature (between 0.05 and 20) that minimises the NLL of ``labels``."""
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, labels, float(np.exp(log_t))),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
    )
    return float(np.exp(result.x))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> Reliability:
    """Mean confidence, accuracy and size of each equal-width confidence bin."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    filled = np.maximum(count, 1)
    return Reliability(
        np.bincount(which, confidence, bins) / filled,
        np.bincount(which, correct, bins) / filled,
        count,
    )


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The ECE over :data:`BINS` bins: the count-weighted mean |accuracy - confidence|."""
    table = reliability(probabilities, labels)
    gaps = np.abs(table.accuracy - table.confidence) * table.count
    return float(gaps.sum() / len(labels))


def unsure_threshold(confidences: np.ndarray, share: float = UNSURE_SHARE) -> float:
    """The top-probability level below which ``share`` of these (validation) digits fall."""
    return float(np.quantile(confidences, share))


@dataclass(frozen=True)
class Thresholds:
    """Where each judge starts to doubt: a top probability below ``unsure_below``, a
    distance from the digits' features above ``unlike_above``."""

    unsure_below: float
    unlike_above: float


def joint_thresholds(
    confidences: np.ndarray, distances: np.ndarray, share: float = UNSURE_SHARE
) -> Thresholds:
    """Thresholds that each flag the same share of these (validation) digits, chosen so
    that together (either one flagging) they flag ``share`` of them."""

    def at(each: float) -> Thresholds:
        return Thresholds(
            float(np.quantile(confidences, each)), float(np.quantile(distances, 1 - each))
        )

    def flagged(found: Thresholds) -> float:
        return float(((confidences < found.unsure_below) | (distances > found.unlike_above)).mean())

    low, high = share / 2, share  # each judge alone flags between half and all of it
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if flagged(at(middle)) <= share else (low, middle)
    return at(low)


def calibrate(
    logits: np.ndarray,
    labels: np.ndarray,
    distances: np.ndarray | None = None,
    digit_features: DigitFeatures | None = None,
) -> Calibration:
    """Fit a temperature and the unsure threshold on held-out digits (the validation
    set); with ``digit_features`` and the held-out digits' ``distances`` from them, the
    distance threshold too."""
    temperature = fit_temperature(logits, labels)
    before = CalibrationScores.of(tempered(logits, 1.0), labels)
    calibrated_probabilities = tempered(logits, temperature)
    after = CalibrationScores.of(calibrated_probabilities, labels)
    confidences = calibrated_probabilities.max(axis=1)
    found = Calibration(
        temperature=temperature,
        unsure_below=unsure_threshold(confidences),
        validation_nll=(before.nll, after.nll),
        validation_ece=(before.ece, after.ece),
    )
    if digit_features is None or distances is None:
        return found
    thresholds = joint_thresholds(confidences, distances)
    return replace(
        found,
        unsure_below=thresholds.unsure_below,
        digit_features=digit_features,
        unlike_above=thresholds.unlike_above,
        alone_unsure_below=found.unsure_below,
    )


def calibrated(model: Model, validation: Split, train: Split | None = None) -> Model:
    """``model`` with a temperature and unsure threshold fitted on ``validation`` (as it
    is, uncalibrated, if its outputs are not finite: there is nothing honest to fit).
    Given the ``train`` split, a convolutional model also learns its digits' features
    from (at most :data:`~digitlab.nn.novelty.FIT_IMAGES` of) it, and the distance
    beyond which an image is unlike them."""
    reading = model.raw_reading(validation.images)
    logits = log_probabilities(reading.probabilities)
    if not np.isfinite(logits).all():
        return model
    digit_features = None if train is None else _digit_features(model, reading, train)
    if digit_features is None:
        return replace(model, calibration=calibrate(logits, validation.labels))
    distances = digit_features.distances(reading.features)
    return replace(
        model,
        calibration=calibrate(logits, validation.labels, distances, digit_features),
    )


def _digit_features(model: Model, validation: Reading, train: Split) -> DigitFeatures | None:
    """The digits' features fitted on (the first FIT_IMAGES of) ``train``, or None where
    they cannot be: a network without convolutions, features that are not finite, or
    too few images to hold every digit."""
    fitting = train.head(FIT_IMAGES)
    if (
        validation.features is None
        or not np.isfinite(validation.features).all()
        or len(np.unique(fitting.labels)) < DIGITS
    ):
        return None
    features = model.raw_reading(fitting.images).features
    if features is None or not np.isfinite(features).all():
        return None
    return DigitFeatures.fit(features, fitting.labels)
