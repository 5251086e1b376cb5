"""Ways a digit image goes wrong in the world, each one vectorised over a stack of images.

A person's digit differs from MNIST's in how it is drawn (a thicker or thinner pen,
broken strokes, a tilt, a slant, a size), in how it is captured (blur, sensor noise,
washed-out contrast) and in where it sits.  Each function here applies one of these to a
stack of 28x28 images (digit bright on black, values in [0, 1]) with the strength given
per image, so the same code serves two purposes: the robustness benchmark applies each at
a fixed severity (:mod:`digitlab.evaluation.conditions`), and the ``robust`` training
augmentation (:mod:`digitlab.data.augment`) draws random strengths for every image in
every epoch.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, grey_dilation, grey_erosion, map_coordinates

from digitlab.spec import IMAGE_SHAPE

SIDE = IMAGE_SHAPE[0]
CENTRE = (SIDE - 1) / 2


def square(images: np.ndarray) -> np.ndarray:
    """Rows of 784 pixels as a stack of 28x28 float32 images."""
    return np.asarray(images, dtype=np.float32).reshape(-1, SIDE, SIDE)


def warp(
    images: np.ndarray,
    angle_degrees: np.ndarray,
    scale: np.ndarray,
    shear: np.ndarray,
    shift: np.ndarray,
) -> np.ndarray:
    """Rotate, scale, shear (horizontally, as a slant) and shift each image about the centre.

    All arguments but ``images`` hold one value per image (``shift``: rows and columns).
    Resampling is bilinear, zero outside the image, clipped to [0, 1].
    """
    stack = square(images)
    n = len(stack)
    angle = np.deg2rad(np.asarray(angle_degrees, dtype=np.float32))
    cos, sin = np.cos(angle), np.sin(angle)
    # forward map: A = R(angle) @ [[1, 0], [shear, 1]] * scale; sample at A^-1 (out - c) + c
    forward = np.empty((n, 2, 2), dtype=np.float64)
    forward[:, 0, 0] = cos - sin * shear
    forward[:, 0, 1] = -sin
    forward[:, 1, 0] = sin + cos * shear
    forward[:, 1, 1] = cos
    forward *= np.asarray(scale, dtype=np.float64)[:, None, None]
    inverse = np.linalg.inv(forward).astype(np.float32)
    grid_r, grid_c = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) - CENTRE
    shift = np.asarray(shift, dtype=np.float32)
    rel_r = grid_r[None] - shift[:, 0, None, None]
    rel_c = grid_c[None] - shift[:, 1, None, None]
    rows = inverse[:, 0, 0, None, None] * rel_r + inverse[:, 0, 1, None, None] * rel_c + CENTRE
    cols = inverse[:, 1, 0, None, None] * rel_r + inverse[:, 1, 1, None, None] * rel_c + CENTRE
    return resample(stack, rows, cols)


def resample(stack: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample each image at its own (rows, cols) positions, bilinearly, zero outside."""
    index = np.broadcast_to(np.arange(len(stack))[:, None, None], rows.shape)
    warped = map_coordinates(stack, [index, rows, cols], order=1, mode="constant", cval=0.0)
    return np.clip(warped, 0, 1, out=warped).astype(np.float32, copy=False)


def elastic(images: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    """Simard et al.'s (2003) elastic distortion: a random displacement field of strength
    ``alpha`` pixels, smoothed by a Gaussian of ``sigma`` pixels."""
    stack = square(images)
    fields = rng.uniform(-1, 1, (2, *stack.shape)).astype(np.float32)
    smooth = gaussian_filter(fields, sigma=(0, 0, sigma, sigma), mode="constant") * alpha
    grid_r, grid_c = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    return resample(stack, grid_r + smooth[0], grid_c + smooth[1])


def thicker(images: np.ndarray) -> np.ndarray:
    """Strokes one pixel thicker: a grey-level dilation with a 2x2 pen."""
    return grey_dilation(square(images), footprint=np.ones((1, 2, 2), dtype=bool))


def thinner(images: np.ndarray) -> np.ndarray:
    """Strokes one pixel thinner: a grey-level erosion with a 2x2 pen.  Thin strokes fade
    rather than vanish, as a light pen's do."""
    stack = square(images)
    eroded = grey_erosion(stack, footprint=np.ones((1, 2, 2), dtype=bool))
    return np.maximum(eroded, 0.5 * stack).astype(np.float32)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of ``sigma`` pixels (an out-of-focus camera)."""
    return gaussian_filter(square(images), sigma=(0, sigma, sigma)).astype(np.float32)


def motion_blur(images: np.ndarray, length: int) -> np.ndarray:
    """A horizontal motion blur: each pixel the mean of ``length`` neighbours in its row."""
    stack = square(images)
    padded = np.pad(stack, ((0, 0), (0, 0), (length // 2, length - 1 - length // 2)))
    return (
        np.lib.stride_tricks.sliding_window_view(padded, length, axis=2)
        .mean(axis=-1)
        .astype(np.float32)
    )


def gaussian_noise(images: np.ndarray, rng: np.random.Generator, sigma: np.ndarray) -> np.ndarray:
    """Additive Gaussian noise of standard deviation ``sigma`` (one per image), clipped."""
    stack = square(images)
    noise = rng.standard_normal(stack.shape, dtype=np.float32)
    noise *= np.asarray(sigma, dtype=np.float32).reshape(-1, 1, 1)
    return np.clip(stack + noise, 0, 1).astype(np.float32)


def shot_noise(images: np.ndarray, rng: np.random.Generator, photons: float) -> np.ndarray:
    """Poisson (shot) noise: each pixel's brightness counted in ``photons`` units."""
    stack = square(images)
    return np.clip(rng.poisson(stack * photons) / photons, 0, 1).astype(np.float32)


def impulse_noise(images: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """Salt-and-pepper noise: a ``fraction`` of pixels set to black or white at random."""
    stack = square(images).copy()
    hit = rng.random(stack.shape) < fraction
    stack[hit] = rng.integers(0, 2, int(hit.sum())).astype(np.float32)
    return stack


def low_contrast(images: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    """Ink only ``contrast`` as bright as before (one value per image), on a background
    raised so the mid-grey stays put: a washed-out scan."""
    c = np.asarray(contrast, dtype=np.float32).reshape(-1, 1, 1)
    return (square(images) * c + (1 - c) / 2 * 0.5).astype(np.float32)


def broken_strokes(images: np.ndarray, period: int) -> np.ndarray:
    """Dotted, broken strokes: every ``period``-th diagonal line of pixels erased."""
    stack = square(images)
    rows, cols = np.indices((SIDE, SIDE))
    keep = ((rows + cols) % period != 0).astype(np.float32)
    return stack * keep
