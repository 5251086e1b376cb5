"""Classification metrics for an evaluated model."""

from __future__ import annotations

import numpy as np

from digitlab.data.mnist import NUM_CLASSES


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Counts with true digits as rows and predicted digits as columns."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """For each true digit, the fraction of its images classified correctly; NaN for a
    digit with no images, whose accuracy is not 0 but unknown."""
    totals = matrix.sum(axis=1)
    return np.divide(np.diag(matrix), totals, out=np.full(len(matrix), np.nan), where=totals > 0)
