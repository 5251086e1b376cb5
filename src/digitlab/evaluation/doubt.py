"""Measuring doubt: does a model say "unsure" for what is not a digit, and only then?

A model's answer is *unsure* when its calibrated top probability falls below the
threshold fitted on validation digits or, for a convolutional network, when the image's
features lie further from every digit's than the distance fitted with it
(:mod:`digitlab.evaluation.calibration`, :mod:`digitlab.nn.novelty`).  Two numbers say
whether that is useful: the share of real test digits flagged (the price: should be
small) and the share of non-digits flagged (the point: should be large).  An AUROC
summarises one judge's trade-off over all its thresholds: the chance that a random
digit gets a higher top probability (or a smaller feature distance) than a random
non-digit (1.0: a perfect separation; 0.5: the judge says nothing).

The non-digits: Fashion-MNIST's test set, which no model here has seen, and images
generated with a seed no training run uses -- letter-like strokes, and blobs, shapes
and specks.  Models trained with outlier exposure have seen *other* images of those
generated kinds, so for them the generated rows are an easier test than Fashion-MNIST;
three more generated kinds (other letters, scribbles, two digits overlaid) are never
used in training, so they show doubt on the unseen without touching Fashion-MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from digitlab.data.outliers import non_digits
from digitlab.nn.model_file import Answers

#: The generated non-digit sets, and the kinds of :mod:`digitlab.data.outliers` in each.
GENERATED: dict[str, tuple[str, ...]] = {
    "generated letters (x, A)": ("crosses", "a-shapes"),
    "generated blobs, shapes and specks": ("blobs", "shapes", "specks"),
    "unseen kinds: letters H K W M T E": ("letters",),
    "unseen kinds: scribbles": ("scribbles",),
    "unseen kinds: two digits overlaid": ("overlays",),
}
#: The seed of the generated test sets (training runs draw from their own spec seed).
GENERATED_SEED = 20_261_125


@dataclass(frozen=True)
class DoubtScore:
    """How one set of images fares against a model's doubt."""

    name: str
    images: int
    flagged: float  # the share called unsure
    auroc: float | None  # top probability against the real digits; None for the digits
    distance_auroc: float | None = None  # feature distance, likewise; None without it


def generated_non_digits(count: int, digits: np.ndarray) -> dict[str, np.ndarray]:
    """The generated test sets of :data:`GENERATED`, ``count`` images each."""
    rng = np.random.default_rng(GENERATED_SEED)
    return {name: non_digits(count, digits, rng, kinds) for name, kinds in GENERATED.items()}


def auroc(digit_confidence: np.ndarray, other_confidence: np.ndarray) -> float:
    """P(a digit's top probability > a non-digit's), ties counting half (Mann-Whitney)."""
    ranks = rankdata(np.concatenate([digit_confidence, other_confidence]))
    n_digits, n_other = len(digit_confidence), len(other_confidence)
    above = ranks[:n_digits].sum() - n_digits * (n_digits + 1) / 2
    return float(above / (n_digits * n_other))


def doubt_scores(digits: Answers, others: dict[str, Answers]) -> list[DoubtScore]:
    """The digits' flagged share, then each non-digit set's flagged share and AUROCs.

    ``digits`` and each value of ``others`` are one calibrated model's answers
    (:meth:`~digitlab.nn.model_file.Model.answers`).
    """
    if digits.unsure is None:
        raise ValueError("doubt needs a calibrated model: its answers carry no doubt")
    rows = [DoubtScore("MNIST test digits", len(digits.probabilities), _share(digits), None)]
    for name, answers in others.items():
        distance_auroc = None
        if digits.distances is not None and answers.distances is not None:
            distance_auroc = auroc(-digits.distances, -answers.distances)
        rows.append(
            DoubtScore(
                name,
                len(answers.probabilities),
                _share(answers),
                auroc(digits.probabilities.max(axis=1), answers.probabilities.max(axis=1)),
                distance_auroc,
            )
        )
    return rows


def _share(answers: Answers) -> float:
    return float(np.mean(answers.unsure))
