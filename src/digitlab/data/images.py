"""Turning a user's digit image into the 28x28 form MNIST's digits have.

MNIST's digits were size-normalised to fit a 20x20 box (keeping their aspect ratio)
and then centred by their centre of mass in a 28x28 field, white on black.  A photo
or a drawing differs in every respect -- size, position, polarity, background -- so
predicting on it without the same treatment fails.  :func:`to_mnist` applies it; the
CLI and the web page both call it, so they cannot disagree.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from digitlab.errors import ImageError

FIELD = 28
BOX = 20
#: Pixels (after normalising to [0, 1], digit bright) darker than this count as background.
INK_THRESHOLD = 0.1
MAX_PIXELS = 40_000_000


def load_image(source: Path | bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a PNG/JPEG (path or bytes) as grayscale floats in [0, 1], transparency on white.

    Images over ``max_pixels`` are refused from their header, before being decoded.
    """
    name = "image data" if isinstance(source, bytes) else str(source)
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            if image.width * image.height > max_pixels:
                raise ImageError(f"{name} is too large ({image.width}x{image.height} pixels)")
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                background = Image.new("RGBA", image.size, "white")
                image = Image.alpha_composite(background, image.convert("RGBA"))
            gray = np.asarray(image.convert("L"), dtype=np.float32)
    except FileNotFoundError:
        raise ImageError(f"{name} does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageError(f"{name} is not a readable PNG/JPEG image") from None
    return gray / 255


def to_mnist(image: np.ndarray) -> np.ndarray:
    """Normalise a grayscale image (any size, either polarity) to MNIST's 28x28 form.

    Returns float32 pixels in [0, 1] with the digit bright on black, fitted into a
    20x20 box and centred by centre of mass, exactly as the training images are.
    """
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim != 2 or min(pixels.shape) < 1:
        raise ImageError(f"expected a 2-D grayscale image, got shape {pixels.shape}")
    if not np.isfinite(pixels).all():
        raise ImageError("the image contains NaN or infinite values")
    ink = _ink(pixels)
    rows, cols = np.nonzero(ink > INK_THRESHOLD)
    if rows.size == 0:
        raise ImageError("the image is blank: no digit found")
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    boxed = _fit_in_box(crop)
    return _centre_by_mass(boxed)


def _ink(pixels: np.ndarray) -> np.ndarray:
    """Rescale so the background is 0 and the strongest ink is 1 (digit bright)."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = float(np.median(border))
    ink = np.abs(pixels - background)
    peak = float(ink.max())
    return ink / peak if peak > 0 else ink


def _fit_in_box(crop: np.ndarray) -> np.ndarray:
    """Resize so the longer side is BOX pixels, keeping the aspect ratio (antialiased)."""
    height, width = crop.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 1)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place ``digit`` in a FIELD x FIELD image with its centre of mass at the centre."""
    height, width = digit.shape
    total = digit.sum()
    rows, cols = np.indices(digit.shape)
    mass_row = (rows * digit).sum() / total
    mass_col = (cols * digit).sum() / total
    # MNIST's digits have their centre of mass at pixel (14, 14), moved there by a
    # whole-pixel shift (measured: mean 14.0, spread +-0.5), so do the same.
    top = round(FIELD / 2 - mass_row)
    left = round(FIELD / 2 - mass_col)
    top = min(max(top, 0), FIELD - height)
    left = min(max(left, 0), FIELD - width)
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    field[top : top + height, left : left + width] = digit
    return field
