"""Images that are not digits, generated, to teach a network to say it does not know.

A network trained only on digits has never been asked about anything else, and its
softmax answers every input with some digit -- often confidently: a letter, a cross, a
smudge.  *Outlier exposure* (Hendrycks et al., 2019) adds non-digits to training with
the target "every digit equally likely", so that low confidence comes to mean "not a
digit".  The non-digits here are generated, never taken from another dataset (the
Fashion-MNIST test set measures doubt and must stay unseen):

- blobs and textures: smoothed random noise cut at a random level (large filled shapes,
  speckled surfaces);
- filled shapes: ellipses and rotated rectangles covering much of the field;
- scrambled digits: real training digits cut into 7x7 tiles and shuffled -- strokes of
  the right width and darkness in no digit's arrangement;
- letter-like strokes: crosses (x), and A-shapes, drawn with a pen as thick as MNIST's;
- specks and noise: a lone dot, salt-and-pepper, an empty or grey field.

Every image is 28x28 (rows of 784 pixels in [0, 1], bright on black) and drawn from the
generator given, so a seeded training run stays repeatable.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.ndimage import gaussian_filter

from digitlab.data.distortions import SIDE, square

TILE = 7
PEN = 1.6  # stroke half-width in pixels (MNIST's strokes are about 3 pixels wide)


def non_digits(
    count: int, digits: np.ndarray, rng: np.random.Generator, kinds: tuple[str, ...] = ()
) -> np.ndarray:
    """``count`` generated non-digit images (rows of 784 pixels), the ``kinds`` named
    (the :data:`TRAINING_KINDS` by default) in equal shares, in random order.

    ``digits`` are training images; the scrambled kind cuts some of them into tiles.
    """
    chosen = kinds or TRAINING_KINDS
    shares = np.bincount(np.arange(count) % len(chosen), minlength=len(chosen))
    images = np.concatenate(
        [KINDS[kind](int(k), digits, rng) for kind, k in zip(chosen, shares, strict=True)]
    )
    return images[rng.permutation(count)].reshape(count, SIDE * SIDE)


def _blobs(count: int, rng: np.random.Generator) -> np.ndarray:
    """Smoothed noise above a random level: filled regions with soft edges, or textures."""
    noise = rng.random((count, SIDE, SIDE)).astype(np.float32)
    smooth = np.stack(
        [
            gaussian_filter(image, sigma=s)
            for image, s in zip(noise, rng.uniform(1, 4, count), strict=True)
        ]
    )
    low = smooth.min(axis=(1, 2), keepdims=True)
    span = np.maximum(smooth.max(axis=(1, 2), keepdims=True) - low, 1e-6)
    level = rng.uniform(0.3, 0.7, (count, 1, 1))
    return np.clip(3 * ((smooth - low) / span - level), 0, 1).astype(np.float32)


def _shapes(count: int, rng: np.random.Generator) -> np.ndarray:
    """Filled ellipses and rotated rectangles, 10 to 24 pixels across, of varied brightness."""
    rows, cols = np.indices((SIDE, SIDE), dtype=np.float32) - (SIDE - 1) / 2
    angle = rng.uniform(0, np.pi, (count, 1, 1))
    u = np.cos(angle) * rows + np.sin(angle) * cols
    v = -np.sin(angle) * rows + np.cos(angle) * cols
    half = rng.uniform(5, 12, (2, count, 1, 1))
    ellipse = (u / half[0]) ** 2 + (v / half[1]) ** 2 <= 1
    rectangle = (np.abs(u) <= half[0]) & (np.abs(v) <= half[1])
    pick = rng.random((count, 1, 1)) < 0.5
    inside = np.where(pick, ellipse, rectangle).astype(np.float32)
    return inside * rng.uniform(0.5, 1.0, (count, 1, 1)).astype(np.float32)


def _scrambled(count: int, digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Training digits cut into 16 tiles of 7x7 pixels each, shuffled."""
    digits = digits[rng.integers(0, len(digits), count)]
    per_side = SIDE // TILE
    tiles = (
        square(digits)
        .reshape(count, per_side, TILE, per_side, TILE)
        .transpose(0, 1, 3, 2, 4)
        .reshape(count, per_side * per_side, TILE, TILE)
    )
    order = np.argsort(rng.random((count, per_side * per_side)), axis=1)
    shuffled = np.take_along_axis(tiles, order[:, :, None, None], axis=1)
    return (
        shuffled.reshape(count, per_side, per_side, TILE, TILE)
        .transpose(0, 1, 3, 2, 4)
        .reshape(count, SIDE, SIDE)
    )


def _strokes(segments: np.ndarray) -> np.ndarray:
    """Draw line segments with MNIST's pen: ``segments`` is (count, lines, 2 ends, row/col)."""
    points = np.indices((SIDE, SIDE), dtype=np.float32).reshape(2, -1).T  # (784, 2)
    start, end = segments[:, :, 0], segments[:, :, 1]  # (count, lines, 2)
    direction = end - start
    length2 = np.maximum((direction**2).sum(-1), 1e-6)  # (count, lines)
    offset = points[None, None] - start[:, :, None]  # (count, lines, 784, 2)
    t = np.clip((offset * direction[:, :, None]).sum(-1) / length2[:, :, None], 0, 1)
    nearest = start[:, :, None] + t[..., None] * direction[:, :, None]
    distance = np.sqrt(((points[None, None] - nearest) ** 2).sum(-1)).min(axis=1)
    ink = np.clip(PEN + 0.5 - distance, 0, 1)
    return ink.reshape(-1, SIDE, SIDE).astype(np.float32)


def _crosses(count: int, rng: np.random.Generator) -> np.ndarray:
    """Two strokes crossing near the middle at a wide angle: an x."""
    centre = 13.5 + rng.uniform(-2, 2, (count, 1, 2))
    half = rng.uniform(7, 10, (count, 2, 1))
    angle = np.stack([rng.uniform(0.5, 1.0, count), rng.uniform(-1.0, -0.5, count)], axis=1)
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * half  # (count, 2, 2)
    segments = np.stack([centre - direction, centre + direction], axis=2)
    return _strokes(segments.astype(np.float32))


def _a_shapes(count: int, rng: np.random.Generator) -> np.ndarray:
    """A capital A: two slanted strokes meeting at the top, and a crossbar."""
    top = np.stack([rng.uniform(4, 7, count), 13.5 + rng.uniform(-2, 2, count)], axis=1)
    spread = rng.uniform(5, 9, count)
    bottom = rng.uniform(21, 24, count)
    left = np.stack([bottom, top[:, 1] - spread], axis=1)
    right = np.stack([bottom, top[:, 1] + spread], axis=1)
    level = rng.uniform(0.5, 0.7, count)[:, None]
    bar = np.stack([top + (left - top) * level, top + (right - top) * level], axis=1)
    segments = np.stack([np.stack([top, left], 1), np.stack([top, right], 1), bar], axis=1)
    return _strokes(segments.astype(np.float32))


#: Capital letters other than A, as pen strokes (row, column ends in the 28x28 field).
LETTERS: dict[str, tuple[tuple[tuple[float, float], tuple[float, float]], ...]] = {
    "H": (((5, 8), (23, 8)), ((5, 20), (23, 20)), ((14, 8), (14, 20))),
    "K": (((5, 9), (23, 9)), ((14, 9), (5, 20)), ((14, 9), (23, 20))),
    "W": (((5, 5), (23, 9)), ((23, 9), (10, 14)), ((10, 14), (23, 19)), ((23, 19), (5, 23))),
    "M": (((23, 5), (5, 7)), ((5, 7), (16, 14)), ((16, 14), (5, 21)), ((5, 21), (23, 23))),
    "T": (((5, 6), (5, 22)), ((5, 14), (23, 14))),
    "E": (((5, 9), (23, 9)), ((5, 9), (5, 20)), ((14, 9), (14, 18)), ((23, 9), (23, 20))),
}


def _letters(count: int, rng: np.random.Generator) -> np.ndarray:
    """H, K, W, M, T and E in turn, each stroke's ends moved up to 1.5 pixels at random.
    Letters have at most four strokes; shorter ones repeat their first (drawn twice)."""
    strokes = np.zeros((len(LETTERS), 4, 2, 2), dtype=np.float32)
    for index, segments in enumerate(LETTERS.values()):
        strokes[index] = np.asarray(segments + (segments[0],) * (4 - len(segments)))
    chosen = strokes[np.arange(count) % len(LETTERS)]
    return _strokes(chosen + rng.uniform(-1.5, 1.5, chosen.shape).astype(np.float32))


def _scribbles(count: int, rng: np.random.Generator) -> np.ndarray:
    """A pen wandering through seven random points: six joined strokes."""
    points = rng.uniform(4, 24, (count, 7, 2)).astype(np.float32)
    return _strokes(np.stack([points[:, :-1], points[:, 1:]], axis=2))


def _overlays(count: int, digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two training digits drawn across each other, the second moved 5 to 9 pixels left or
    right: ink of two answers at once (never one digit, even when both show the same)."""
    first, second = (
        digits[rng.integers(0, len(digits), count)].reshape(count, SIDE, SIDE) for _ in range(2)
    )
    moves = rng.integers(5, 10, count) * rng.choice([-1, 1], count)
    moved = np.zeros_like(second)
    for move in np.unique(moves):  # ink moved past the edge is gone, not wrapped round
        chosen = moves == move
        if move > 0:
            moved[chosen, :, move:] = second[chosen, :, :-move]
        else:
            moved[chosen, :, :move] = second[chosen, :, -move:]
    return np.maximum(first, moved).astype(np.float32)


def _specks(count: int, rng: np.random.Generator) -> np.ndarray:
    """A lone dot, salt-and-pepper noise, or a field that is empty or flat grey."""
    rows, cols = np.indices((SIDE, SIDE), dtype=np.float32)
    centre = rng.uniform(8, 20, (count, 2, 1, 1))
    radius = rng.uniform(1.5, 4, (count, 1, 1))
    distance = np.sqrt((rows - centre[:, 0]) ** 2 + (cols - centre[:, 1]) ** 2)
    dot = np.clip(radius + 0.5 - distance, 0, 1)
    speckle = (rng.random((count, SIDE, SIDE)) < rng.uniform(0.02, 0.2, (count, 1, 1))) * 1.0
    flat = np.broadcast_to(rng.uniform(0, 0.6, (count, 1, 1)), (count, SIDE, SIDE))
    kind = rng.integers(0, 3, (count, 1, 1))
    return np.choose(kind, [dot, speckle, flat]).astype(np.float32)


Generator = Callable[[int, np.ndarray, np.random.Generator], np.ndarray]

#: Every kind of generated non-digit, by name: (count, digits, rng) -> count 28x28 images.
#: Outlier exposure trains on the first six (:data:`TRAINING_KINDS`); the last three are
#: kept out of training, so they measure doubt on kinds of non-digit a model never saw.
KINDS: dict[str, Generator] = {
    "blobs": lambda k, digits, rng: _blobs(k, rng),
    "shapes": lambda k, digits, rng: _shapes(k, rng),
    "scrambled": _scrambled,
    "crosses": lambda k, digits, rng: _crosses(k, rng),
    "a-shapes": lambda k, digits, rng: _a_shapes(k, rng),
    "specks": lambda k, digits, rng: _specks(k, rng),
    "letters": lambda k, digits, rng: _letters(k, rng),
    "scribbles": lambda k, digits, rng: _scribbles(k, rng),
    "overlays": _overlays,
}
TRAINING_KINDS = ("blobs", "shapes", "scrambled", "crosses", "a-shapes", "specks")
