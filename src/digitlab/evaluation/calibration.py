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
so that a small, fixed share of them (:data:`UNSURE_SHARE`) falls below it.  How well it
then separates digits from things that are not digits is measured on images no model
has seen (:mod:`digitlab.evaluation.doubt`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from digitlab.data.mnist import Split
from digitlab.evaluation.probabilities import log_probabilities, raw_probabilities
from digitlab.nn.model_file import Calibration, Model

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
        true = log_probabilities(probabilities)[np.arange(len(labels)), labels]
        return cls(
            float(-true.mean()),
            expected_calibration_error(probabilities, labels),
            reliability(probabilities, labels),
        )


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


def calibrate(logits: np.ndarray, labels: np.ndarray) -> Calibration:
    """Fit a temperature and the unsure threshold on held-out digits (the validation set)."""
    temperature = fit_temperature(logits, labels)
    before = CalibrationScores.of(tempered(logits, 1.0), labels)
    after = CalibrationScores.of(tempered(logits, temperature), labels)
    return Calibration(
        temperature=temperature,
        unsure_below=unsure_threshold(tempered(logits, temperature).max(axis=1)),
        validation_nll=(before.nll, after.nll),
        validation_ece=(before.ece, after.ece),
    )


def calibrated(model: Model, validation: Split) -> Model:
    """``model`` with a temperature and unsure threshold fitted on ``validation`` (as it
    is, uncalibrated, if its outputs are not finite: there is nothing honest to fit)."""
    logits = log_probabilities(raw_probabilities(model, validation.images))
    if not np.isfinite(logits).all():
        return model
    return replace(model, calibration=calibrate(logits, validation.labels))
