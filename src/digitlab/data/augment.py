"""More training digits from the ones we have.

- :func:`expand_by_shifts` is the book's expansion: every image also shifted one pixel
  up, down, left and right (50,000 images become 250,000), once, before training.
- :func:`random_affine` and :func:`elastic_distortion` warp every training image anew in
  each epoch: a small random rotation, scaling and shift, or Simard et al.'s (2003)
  elastic distortion -- a random displacement field smoothed by a Gaussian.  Both
  resample all images in one vectorised ``map_coordinates`` call and draw their
  randomness from the generator they are given, so a seeded run is repeatable.
  :func:`random_warp` is the affine warp with the ranges a spec chooses (its
  ``rotation``, ``zoom`` and ``translation``); ``random_affine`` is it at fixed ranges.
- :func:`robust_distortion` trains for people's digits rather than MNIST's: a wider warp
  (rotation, slant, size, position) for every image, and for a random share of them a
  different pen (thicker, thinner, broken), an elastic wobble, blur, noise or a washed-out
  contrast, drawn from :mod:`digitlab.data.distortions` -- the same operations the
  robustness benchmark measures, at random rather than fixed strengths.

Images are rows of 784 pixels in [0, 1]; labels never change.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from digitlab.data import distortions
from digitlab.spec import IMAGE_SHAPE

SIDE = IMAGE_SHAPE[0]
MAX_ROTATION_DEGREES = 12.0
ZOOM = 0.1  # scale between 1 - ZOOM and 1 + ZOOM
MAX_SHIFT_PIXELS = 2.0
ELASTIC_ALPHA = 34.0  # displacement scale, in pixels before smoothing (Simard et al.)
ELASTIC_SIGMA = 4.0  # Gaussian smoothing of the displacement field, in pixels


#: The four one-pixel shifts (rows, columns) of the book's expansion: up, down, left, right.
ONE_PIXEL_SHIFTS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def shifted(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Rows of pixels with each image moved ``rows`` pixels down and ``cols`` right
    (negative: up, left), whole pixels only; what moves in from the edge is black."""
    square = images.reshape(-1, SIDE, SIDE)
    moved = np.zeros_like(square)
    moved[:, max(rows, 0) : SIDE + min(rows, 0), max(cols, 0) : SIDE + min(cols, 0)] = square[
        :, max(-rows, 0) : SIDE + min(-rows, 0), max(-cols, 0) : SIDE + min(-cols, 0)
    ]
    return moved.reshape(len(square), -1)


def expand_by_shifts(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The originals followed by their copies shifted one pixel up, down, left and right."""
    copies = [images.reshape(-1, SIDE * SIDE)]
    copies += [shifted(images, rows, cols) for rows, cols in ONE_PIXEL_SHIFTS]
    return np.concatenate(copies), np.tile(labels, len(copies))


def random_affine(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image rotated, scaled and shifted by its own small random amounts."""
    return random_warp(images, rng, MAX_ROTATION_DEGREES, ZOOM, MAX_SHIFT_PIXELS)


def random_warp(
    images: np.ndarray,
    rng: np.random.Generator,
    rotation: float,
    zoom: float,
    translation: float,
) -> np.ndarray:
    """Each image turned by up to ``rotation`` degrees either way, scaled by a factor
    between ``1 - zoom`` and ``1 + zoom`` and shifted by up to ``translation`` pixels
    along each axis, every amount drawn afresh for each image.  All ranges zero give
    back the images unchanged."""
    n = len(images)
    angle = np.deg2rad(rng.uniform(-rotation, rotation, n))
    scale = rng.uniform(1 - zoom, 1 + zoom, n)
    shift = rng.uniform(-translation, translation, (n, 2))
    centre = (SIDE - 1) / 2
    grid_r, grid_c = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) - centre
    cos, sin = (np.cos(angle) / scale)[:, None, None], (np.sin(angle) / scale)[:, None, None]
    # output pixel -> input position: the inverse rotation and scaling, then the shift
    rows = cos * grid_r - sin * grid_c + centre - shift[:, 0, None, None]
    cols = sin * grid_r + cos * grid_c + centre - shift[:, 1, None, None]
    return distortions.resample(images.reshape(n, SIDE, SIDE), rows, cols).reshape(n, -1)


def elastic_distortion(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simard et al.'s elastic distortion: smooth random displacement fields."""
    warped = distortions.elastic(images, rng, ELASTIC_ALPHA, ELASTIC_SIGMA)
    return warped.reshape(len(images), -1)


def robust_distortion(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every image warped (rotation up to 20 degrees, slant, 0.75-1.2x size, a shift of
    up to 3 pixels), then a random share of them drawn with another pen or captured by
    another camera: elastic wobble (30 %), thicker or thinner strokes (15 % each), blur
    (15 %), Gaussian noise (15 %), washed-out contrast (10 %), broken strokes (8 %).
    Motion blur, shot noise and impulse noise are left out on purpose, so the robustness
    benchmark also measures conditions the network never trained on."""
    n = len(images)
    warped = distortions.warp(
        images,
        angle_degrees=rng.uniform(-20, 20, n),
        scale=rng.uniform(0.75, 1.2, n),
        shear=rng.uniform(-0.3, 0.3, n),
        shift=rng.uniform(-3, 3, (n, 2)),
    )
    draws = rng.random((6, n))

    def apply(chosen: np.ndarray, change: Callable[[np.ndarray], np.ndarray]) -> None:
        if chosen.any():
            warped[chosen] = change(warped[chosen])

    apply(draws[0] < 0.3, lambda x: distortions.elastic(x, rng, ELASTIC_ALPHA, ELASTIC_SIGMA))
    apply(draws[1] < 0.15, distortions.thicker)
    apply((draws[1] >= 0.15) & (draws[1] < 0.3), distortions.thinner)
    apply(draws[2] < 0.15, lambda x: distortions.blur(x, sigma=float(rng.uniform(0.5, 1.3))))
    apply(
        draws[3] < 0.15,
        lambda x: distortions.gaussian_noise(x, rng, rng.uniform(0.05, 0.3, len(x))),
    )
    apply(draws[4] < 0.1, lambda x: distortions.low_contrast(x, rng.uniform(0.3, 0.9, len(x))))
    apply(draws[5] < 0.08, lambda x: distortions.broken_strokes(x, period=int(rng.integers(3, 5))))
    return warped.reshape(n, -1)


AUGMENTATIONS = {
    "affine": random_affine,
    "elastic": elastic_distortion,
    "robust": robust_distortion,
}
