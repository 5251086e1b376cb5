"""The robustness benchmark's conditions: MNIST's test digits as the world distorts them.

In the spirit of MNIST-C (Mu & Gilmer, 2019), each condition changes the test images in
one way, at one fixed severity, with its own seed -- so every model meets exactly the
same distorted images and the scores are comparable across models and runs.  Most
conditions change the 28x28 image the network sees directly.  Three start from an image
a person would give: a digit off-centre in a larger field, a digit dark on white, and a
photograph of a digit on unevenly lit paper; those go through
:func:`~digitlab.data.images.to_mnist`, as ``digitlab predict`` and the web page would
send them, so they measure the preprocessing as much as the network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from digitlab.data import distortions
from digitlab.data.images import to_mnist

#: The photograph's size, the digit's height in it and the paper's light at each edge.
PHOTO_SIDE = 320
PHOTO_DIGIT = 140
PAPER_LIGHT = (240 / 255, 160 / 255)


@dataclass(frozen=True)
class Condition:
    """One way of distorting the test set: a name for tables, what it does, and the
    function taking (rows of 784 pixels, a seeded generator) to the network's inputs."""

    name: str
    description: str
    apply: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    through_to_mnist: bool = False


def _per_image(
    make: Callable[[np.ndarray, np.random.Generator], np.ndarray],
) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """A condition that builds a user's image for each digit and sends it through
    :func:`to_mnist` (a digit that comes out blank stays an all-black field)."""

    def apply(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        fields = np.zeros((len(rows), distortions.SIDE * distortions.SIDE), dtype=np.float32)
        for i, digit in enumerate(distortions.square(rows)):
            picture = make(digit, rng)
            if picture.max() - picture.min() > 0:
                fields[i] = to_mnist(picture).reshape(-1)
        return fields

    return apply


def _off_centre(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit anywhere in a 56x56 field (up to 14 pixels from the centre each way)."""
    field = np.zeros((56, 56), dtype=np.float32)
    top, left = rng.integers(0, 29, 2)
    field[top : top + 28, left : left + 28] = digit
    return field


def _dark_on_white(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit as ink on paper: black on white."""
    return 1 - digit


def _photo(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A photograph of the digit on paper: dark ink PHOTO_DIGIT pixels tall on a
    PHOTO_SIDE-pixel picture, the light falling from 240 to 160 (of 255) across it in a
    random direction, with mild sensor noise."""
    zoom = PHOTO_DIGIT / 20  # MNIST's digits fit a 20-pixel box
    side = round(28 * zoom)
    ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR))
    canvas = np.zeros((PHOTO_SIDE, PHOTO_SIDE), dtype=np.float32)
    top, left = rng.integers(0, PHOTO_SIDE - side + 1, 2)
    canvas[top : top + side, left : left + side] = np.clip(ink, 0, 1)
    angle = rng.uniform(0, 2 * np.pi)
    rows, cols = np.indices(canvas.shape, dtype=np.float32) / (PHOTO_SIDE - 1) - 0.5
    along = np.cos(angle) * rows + np.sin(angle) * cols  # -0.71 .. 0.71
    light = PAPER_LIGHT[0] + (PAPER_LIGHT[1] - PAPER_LIGHT[0]) * (along / 1.42 + 0.5)
    photo = light * (1 - 0.85 * canvas) + rng.normal(0, 0.02, canvas.shape)
    return np.clip(photo, 0, 1).astype(np.float32)


def _uniform_warp(rows: np.ndarray, rng: np.random.Generator, **ranges: float) -> np.ndarray:
    """Each image warped by its own draw from +-``ranges`` (angle, shear) or a
    (low, high) scale range; the rest left as they are."""
    n = len(rows)
    low, high = ranges.get("scale_low", 1.0), ranges.get("scale_high", 1.0)
    return distortions.warp(
        rows,
        angle_degrees=rng.uniform(-1, 1, n) * ranges.get("angle", 0.0),
        scale=rng.uniform(low, high, n),
        shear=rng.uniform(-1, 1, n) * ranges.get("shear", 0.0),
        shift=np.zeros((n, 2)),
    )


CONDITIONS: list[Condition] = [
    Condition("clean", "the test set as it is", lambda x, rng: distortions.square(x)),
    Condition(
        "shot noise",
        "photon noise: each pixel counted in 6 photons",
        lambda x, rng: distortions.shot_noise(x, rng, photons=6),
    ),
    Condition(
        "impulse noise",
        "salt and pepper: 8 % of pixels black or white",
        lambda x, rng: distortions.impulse_noise(x, rng, fraction=0.08),
    ),
    Condition(
        "gaussian blur",
        "out of focus: Gaussian blur of 1.2 pixels",
        lambda x, rng: distortions.blur(x, sigma=1.2),
    ),
    Condition(
        "motion blur",
        "a shaken camera: 7-pixel horizontal motion blur",
        lambda x, rng: distortions.motion_blur(x, length=7),
    ),
    Condition(
        "rotation",
        "turned by up to 30 degrees either way",
        lambda x, rng: _uniform_warp(x, rng, angle=30),
    ),
    Condition(
        "shear",
        "slanted: horizontal shear of up to 0.5 either way",
        lambda x, rng: _uniform_warp(x, rng, shear=0.5),
    ),
    Condition(
        "scale",
        "0.6x to 1.4x the size, about the centre",
        lambda x, rng: _uniform_warp(x, rng, scale_low=0.6, scale_high=1.4),
    ),
    Condition("thick strokes", "a pen one pixel wider", lambda x, rng: distortions.thicker(x)),
    Condition("thin strokes", "a pen one pixel narrower", lambda x, rng: distortions.thinner(x)),
    Condition(
        "low contrast",
        "washed out: ink at 30 % on a grey background",
        lambda x, rng: distortions.low_contrast(x, np.full(len(x), 0.3)),
    ),
    Condition(
        "broken strokes",
        "dotted: every third diagonal of pixels erased",
        lambda x, rng: distortions.broken_strokes(x, period=3),
    ),
    Condition(
        "translation",
        "anywhere in a 56x56 field, through to_mnist",
        _per_image(_off_centre),
        through_to_mnist=True,
    ),
    Condition(
        "inverted",
        "black ink on white, through to_mnist",
        _per_image(_dark_on_white),
        through_to_mnist=True,
    ),
    Condition(
        "photo",
        "dark ink 140 px tall on unevenly lit 320x320 paper (240 to 160), noise, through to_mnist",
        _per_image(_photo),
        through_to_mnist=True,
    ),
]


def by_name(name: str) -> Condition:
    """The condition called ``name``."""
    return next(condition for condition in CONDITIONS if condition.name == name)


def distort(condition: Condition, rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """The network's inputs (rows of 784 pixels) for ``rows`` under ``condition``; the
    same seed gives the same images."""
    rng = np.random.default_rng([seed, CONDITIONS.index(condition)])
    return condition.apply(rows, rng).reshape(len(rows), -1).astype(np.float32)
