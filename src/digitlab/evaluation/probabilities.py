"""A model's outputs as ten probabilities per image, calibrated when the model has been.

One place for it, so the command line, the web page, the benchmarks and the estimator
all read a model's answer the same way.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from digitlab.nn.model_file import Model

#: log-probabilities are floored here, so a probability of exactly 0 stays finite.
LOG_FLOOR = -80.0


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Logarithms of class probabilities, floored so zeros stay finite.  They serve as
    logits: softmax(log p / T) is the temperature-scaled distribution for any T."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(np.asarray(probabilities, dtype=np.float64)), LOG_FLOOR)


def class_probabilities(model: Model, rows: np.ndarray) -> np.ndarray:
    """Ten probabilities per row of pixels, calibrated when the model has been.

    Softmax outputs already are probabilities.  Other outputs (the book's sigmoid
    neurons) are clipped at zero and normalised to sum to one, which keeps their order
    and makes them comparable on one scale.  A calibrated model's probabilities are then
    tempered by its fitted temperature (:mod:`digitlab.evaluation.calibration`).
    """
    probabilities = raw_probabilities(model, rows)
    if model.calibration is None:
        return probabilities
    logits = log_probabilities(probabilities) / model.calibration.temperature
    return softmax(logits, axis=1).astype(np.float32)


def raw_probabilities(model: Model, rows: np.ndarray) -> np.ndarray:
    """The network's own ten probabilities per row, before any calibration."""
    outputs = model.network.probabilities(np.asarray(rows, dtype=np.float32))
    if model.spec.resolved_output_activation == "softmax":
        return outputs
    positive = np.maximum(outputs, 0)
    totals = positive.sum(axis=1, keepdims=True)
    uniform = np.full_like(positive, 1 / positive.shape[1])
    return np.divide(positive, totals, out=uniform, where=totals > 0)


def ensemble_probabilities(models: list[Model], rows: np.ndarray) -> np.ndarray:
    """The models' class probabilities, averaged: an ensemble votes with its confidence."""
    return np.mean([class_probabilities(model, rows) for model in models], axis=0)
