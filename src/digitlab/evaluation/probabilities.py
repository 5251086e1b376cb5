"""A model's outputs as ten probabilities per image, calibrated when the model has been.

One place for it, so the command line, the web page, the benchmarks and the estimator
all read a model's answer the same way.  The reading itself is the model's own
(:meth:`~digitlab.nn.model_file.Model.probabilities`), so ``Model.predict_proba`` gives
the same answer without the engine depending on this package.
"""

from __future__ import annotations

import numpy as np

from digitlab.nn.model_file import LOG_FLOOR, Model, log_probabilities

__all__ = [
    "LOG_FLOOR",
    "class_probabilities",
    "ensemble_probabilities",
    "log_probabilities",
    "raw_probabilities",
]


def class_probabilities(model: Model, rows: np.ndarray) -> np.ndarray:
    """Ten probabilities per row of pixels, calibrated when the model has been (see
    :meth:`~digitlab.nn.model_file.Model.probabilities`)."""
    return model.probabilities(rows)


def raw_probabilities(model: Model, rows: np.ndarray) -> np.ndarray:
    """The network's own ten probabilities per row, before any calibration."""
    return model.raw_probabilities(rows)


def ensemble_probabilities(models: list[Model], rows: np.ndarray) -> np.ndarray:
    """The models' class probabilities, averaged: an ensemble votes with its confidence."""
    return np.mean([class_probabilities(model, rows) for model in models], axis=0)
