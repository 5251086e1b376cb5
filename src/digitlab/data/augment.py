"""More training digits from the ones we have.

- :func:`expand_by_shifts` is the book's expansion: every image also shifted one pixel
  up, down, left and right (50,000 images become 250,000), once, before training.
- :func:`random_affine` and :func:`elastic_distortion` warp every training image anew in
  each epoch: a small random rotation, scaling and shift, or Simard et al.'s (2003)
  elastic distortion -- a random displacement field smoothed by a Gaussian.  Both
  resample all images in one vectorised ``map_coordinates`` call and draw their
  randomness from the generator they are given, so a seeded run is repeatable.

Images are rows of 784 pixels in [0, 1]; labels never change.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

SIDE = 28
MAX_ROTATION_DEGREES = 12.0
SCALE_RANGE = (0.9, 1.1)
MAX_SHIFT_PIXELS = 2.0
ELASTIC_ALPHA = 34.0  # displacement scale, in pixels before smoothing (Simard et al.)
ELASTIC_SIGMA = 4.0  # Gaussian smoothing of the displacement field, in pixels


def expand_by_shifts(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The originals followed by their copies shifted one pixel up, down, left and right."""
    square = images.reshape(-1, SIDE, SIDE)
    copies = [square]
    for axis, step in ((1, -1), (1, 1), (2, -1), (2, 1)):
        shifted = np.roll(square, step, axis=axis)
        edge = 0 if step == 1 else -1
        if axis == 1:
            shifted[:, edge, :] = 0
        else:
            shifted[:, :, edge] = 0
        copies.append(shifted)
    return np.concatenate(copies).reshape(-1, SIDE * SIDE), np.tile(labels, len(copies))


def _resample(square: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample each image at its own (rows, cols) positions, bilinearly, zero outside."""
    index = np.broadcast_to(np.arange(len(square))[:, None, None], rows.shape)
    warped = map_coordinates(square, [index, rows, cols], order=1, mode="constant", cval=0.0)
    return np.clip(warped, 0, 1, out=warped).reshape(len(square), SIDE * SIDE)


def random_affine(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image rotated, scaled and shifted by its own small random amounts."""
    n = len(images)
    angle = np.deg2rad(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES, n))
    scale = rng.uniform(*SCALE_RANGE, n)
    shift = rng.uniform(-MAX_SHIFT_PIXELS, MAX_SHIFT_PIXELS, (n, 2))
    centre = (SIDE - 1) / 2
    grid_r, grid_c = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) - centre
    cos, sin = (np.cos(angle) / scale)[:, None, None], (np.sin(angle) / scale)[:, None, None]
    # output pixel -> input position: the inverse rotation and scaling, then the shift
    rows = cos * grid_r - sin * grid_c + centre - shift[:, 0, None, None]
    cols = sin * grid_r + cos * grid_c + centre - shift[:, 1, None, None]
    return _resample(images.reshape(n, SIDE, SIDE), rows, cols)


def elastic_distortion(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simard et al.'s elastic distortion: smooth random displacement fields."""
    n = len(images)
    fields = rng.uniform(-1, 1, (2, n, SIDE, SIDE)).astype(np.float32)
    smooth = gaussian_filter(fields, sigma=(0, 0, ELASTIC_SIGMA, ELASTIC_SIGMA), mode="constant")
    smooth *= ELASTIC_ALPHA
    grid_r, grid_c = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    return _resample(images.reshape(n, SIDE, SIDE), grid_r + smooth[0], grid_c + smooth[1])


AUGMENTATIONS = {"affine": random_affine, "elastic": elastic_distortion}
