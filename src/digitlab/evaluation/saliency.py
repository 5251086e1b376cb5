"""Where the network looked: which ink its answer depends on, measured by occlusion.

Erase one small square of the 28x28 image at a time and ask the network again: where the
answer's probability falls most, the ink there mattered most (Zeiler & Fergus, 2014).
Every square of :data:`PATCH` pixels at a stride of :data:`STRIDE` is tried, all in one
batch through the model's ordinary forward pass; each pixel's score is the mean fall over
the squares that covered it, and only pixels with ink keep their score.  Erasing paints
the square the colour of MNIST's background, so the map shows the strokes that carried
the decision; it cannot show where missing ink would have changed the answer.
"""

from __future__ import annotations

import numpy as np

from digitlab.evaluation.probabilities import ensemble_probabilities
from digitlab.nn.model_file import Model
from digitlab.spec import IMAGE_SHAPE

SIDE = IMAGE_SHAPE[0]
PATCH = 6
STRIDE = 2
#: Pixels at least this bright are ink (MNIST's antialiased edges included).
INK = 0.1


def occlusion_map(models: Model | list[Model], pixels: np.ndarray, digit: int) -> np.ndarray:
    """28x28 scores in [0, 1], on the ink only: how much erasing the ink around each
    pixel lowers the probability of ``digit`` (1 where it falls most; all 0 if no square
    lowers it)."""
    models = models if isinstance(models, list) else [models]
    field = np.asarray(pixels, dtype=np.float32).reshape(SIDE, SIDE)
    corners = range(0, SIDE - PATCH + 1, STRIDE)
    squares = [(r, c) for r in corners for c in corners]
    occluded = np.repeat(field[None], len(squares), axis=0)
    for image, (r, c) in zip(occluded, squares, strict=True):
        image[r : r + PATCH, c : c + PATCH] = 0
    batch = np.concatenate([field[None], occluded]).reshape(len(squares) + 1, -1)
    probability = ensemble_probabilities(models, batch)[:, digit]
    falls = np.maximum(probability[0] - probability[1:], 0)
    total, covered = np.zeros((SIDE, SIDE)), np.zeros((SIDE, SIDE))
    for fall, (r, c) in zip(falls, squares, strict=True):
        total[r : r + PATCH, c : c + PATCH] += fall
        covered[r : r + PATCH, c : c + PATCH] += 1
    scores = total / np.maximum(covered, 1) * (field > INK)
    peak = scores.max()
    return (scores / peak if peak > 0 else scores).astype(np.float32)
