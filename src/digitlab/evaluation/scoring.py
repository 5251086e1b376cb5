"""Scoring a model, or an ensemble of models, on a labelled set of images.

What ``digitlab evaluate`` prints and ``--json`` emits comes from :func:`evaluate`:
accuracy, accuracy per digit, the confusion matrix, each ensemble member's accuracy, and
how honest the confidence is (NLL and ECE of the network's own probabilities and, for
calibrated models, of the calibrated ones, with the share of images called unsure).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitlab.data.mnist import Split
from digitlab.evaluation.calibration import CalibrationScores
from digitlab.nn.model_file import Answers, Model
from digitlab.train.metrics import confusion_matrix, per_class_accuracy


@dataclass(frozen=True)
class Evaluation:
    """A model's (or an ensemble's) scores on one labelled set of images."""

    images: int
    accuracy: float
    per_digit: np.ndarray  # accuracy on each digit's images; NaN for a digit with none
    confusion: np.ndarray
    members: list[float]  # each member's accuracy, for an ensemble (else empty)
    uncalibrated: CalibrationScores
    calibrated: CalibrationScores | None  # when every model is calibrated
    unsure: float | None  # share called unsure (one calibrated model)
    probabilities: np.ndarray  # the probabilities behind the answers, one row per image
    predicted: np.ndarray

    def misclassified(self, labels: np.ndarray) -> np.ndarray:
        """Indices of the wrongly classified images, most confident mistakes first."""
        wrong = np.flatnonzero(self.predicted != labels)
        return wrong[np.argsort(-self.probabilities[wrong].max(axis=1), kind="stable")]


@dataclass(frozen=True)
class Vote:
    """One member's say on some images: the network's own probabilities, and its
    answers (tempered probabilities and doubt) when the model is calibrated."""

    raw: np.ndarray
    answers: Answers | None

    @classmethod
    def of(cls, model: Model, images: np.ndarray) -> Vote:
        reading = model.raw_reading(images)
        answers = model.judged(reading) if model.calibration is not None else None
        return cls(reading.probabilities, answers)


def counted(votes: list[Vote]) -> list[np.ndarray]:
    """Each member's probabilities as an ensemble averages them: tempered by each
    member's fitted temperature when every member is calibrated, else the networks' own
    (a mix of the two would weigh the members unevenly)."""
    if all(vote.answers is not None for vote in votes):
        return [vote.answers.probabilities for vote in votes]
    return [vote.raw for vote in votes]


def evaluate(models: list[Model], split: Split) -> Evaluation:
    """Score ``models`` (several: an ensemble averaging their probabilities) on ``split``."""
    votes = [Vote.of(model, split.images) for model in models]
    calibrated_all = all(vote.answers is not None for vote in votes)
    each = counted(votes)
    probabilities = np.mean(each, axis=0)
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(split.labels, predicted)
    unsure = None
    if len(votes) == 1 and calibrated_all:
        unsure = float(votes[0].answers.unsure.mean())
    return Evaluation(
        images=len(split),
        accuracy=float(np.trace(matrix) / max(matrix.sum(), 1)),
        per_digit=per_class_accuracy(matrix),
        confusion=matrix,
        members=[float((p.argmax(axis=1) == split.labels).mean()) for p in each]
        if len(votes) > 1
        else [],
        uncalibrated=CalibrationScores.of(np.mean([v.raw for v in votes], axis=0), split.labels),
        calibrated=CalibrationScores.of(probabilities, split.labels) if calibrated_all else None,
        unsure=unsure,
        probabilities=probabilities,
        predicted=predicted,
    )
