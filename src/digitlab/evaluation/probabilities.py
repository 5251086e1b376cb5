"""An ensemble's answer: its members' probabilities, averaged.

A single model's probabilities are its own (:meth:`~digitlab.nn.model_file.Model.probabilities`,
calibrated when the model has been); several models vote with their confidence, each
member's probabilities weighing the same, so the command line, the web page and the
benchmarks read an ensemble's answer the same way.
"""

from __future__ import annotations

import numpy as np

from digitlab.nn.model_file import Model


def ensemble_probabilities(models: list[Model], rows: np.ndarray) -> np.ndarray:
    """The models' class probabilities, averaged: an ensemble votes with its confidence."""
    return np.mean([model.probabilities(rows) for model in models], axis=0)
