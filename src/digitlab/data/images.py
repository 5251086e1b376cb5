"""Turning a user's digit image into the 28x28 form MNIST's digits have.

MNIST's digits were size-normalised to fit a 20x20 box (keeping their aspect ratio)
and then centred by their centre of mass in a 28x28 field, white on black.  A photo
or a drawing differs in every respect -- size, position, polarity, background -- so
predicting on it without the same treatment fails.  :func:`to_mnist` applies it; the
CLI and the web page both call it, so they cannot disagree.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from digitlab.errors import ImageError, ImageTooLargeError
from digitlab.spec import IMAGE_SHAPE

FIELD = IMAGE_SHAPE[0]
BOX = 20
#: Pixels (after normalising to [0, 1], digit bright) darker than this count as background.
INK_THRESHOLD = 0.1
#: Ink must be at least this much brighter than the paper (on a 0-1 scale) to count.
MIN_CONTRAST = 0.1
#: Ink of fewer pixels than this (at the working size) is a speck, not a digit: a dead
#: pixel or a fleck of dust on a blank page.
MIN_INK_PIXELS = 8
#: Pieces of ink smaller than this fraction of the largest piece are specks.
SPECK_RATIO = 0.1
#: Pieces touching the border are dropped when the others reach this fraction of their size.
BORDER_RATIO = 0.25
#: Images are shrunk to at most this many pixels on their longer side before the ink is
#: found (a 20x20 digit box needs far fewer).
WORKING_SIDE = 256
#: The paper's brightness is estimated on blocks this many times smaller than its window.
PAPER_STEPS = 8
MAX_PIXELS = 40_000_000
#: The white of grey levels of 8, 10, 12 and 16 bits (see :func:`grey_scale`).
LEVEL_WHITES = (255.0, 1023.0, 4095.0, 65535.0)
#: The largest float still read as on the [0, 1] scale (see :func:`grey_scale`).
UNIT_OVERSHOOT = 2.0
#: Pillow modes holding grey levels wider than 8 bits.
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def load_image(
    source: Path | str | bytes | BinaryIO | Image.Image, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Read a PNG/JPEG as grayscale floats in [0, 1], upright: from a path, the file's
    bytes, a file opened in binary mode, or a Pillow image already open.

    Images over ``max_pixels`` are refused from their header, before being decoded.  A
    phone stores a photo as its sensor saw it and records in the EXIF orientation tag how
    to turn it; the image is turned so, as a viewer shows it.  Transparency is laid on a
    background that contrasts with the ink (:func:`_flattened`): dark ink on white, light
    ink (a digit cut out, or drawn white on a transparent canvas) on black.
    """
    if isinstance(source, Image.Image):
        return _read(source, "the image", max_pixels)
    if isinstance(source, bytearray | memoryview):
        source = bytes(source)
    if isinstance(source, bytes):
        name, opened = "image data", io.BytesIO(source)
    elif hasattr(source, "read"):
        name, opened = str(getattr(source, "name", "the file")), source
    elif isinstance(source, str | Path):
        name, opened = str(source), _regular_file(source)
    else:
        raise ImageError(
            "load_image takes a file path, the file's bytes, a file opened in binary mode or "
            f"a PIL image, not {type(source).__name__}"
            + (" (pixels already in an array go to to_mnist)" if hasattr(source, "shape") else "")
        )
    try:
        with Image.open(opened) as image:
            return _read(image, name, max_pixels)
    except Image.DecompressionBombError:  # Pillow's own limit, checked when opening
        raise ImageTooLargeError(f"{name} is too large (a decompression bomb)") from None
    except FileNotFoundError:
        raise ImageError(f"{name} does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageError(f"{name} is not a readable PNG/JPEG image") from None


def _regular_file(path: str | Path) -> Path:
    """``path``, if it could name an image file: not empty, not a folder or device."""
    if not str(path):
        raise ImageError("no image file named (the path is empty)")
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            raise ImageError(f"{path} is not a regular file (a folder, a pipe or a device?)")
    except OSError as error:  # a name too long for the system, say
        raise ImageError(f"{path}: {error.strerror}") from None
    return path


def _read(image: Image.Image, name: str, max_pixels: int) -> np.ndarray:
    """The grey levels of an open image, in [0, 1] and upright (see :func:`load_image`)."""
    if image.width * image.height > max_pixels:
        raise ImageTooLargeError(f"{name} is too large ({image.width}x{image.height} pixels)")
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            image = _flattened(image.convert("RGBA"))
        if image.mode in WIDE_MODES:  # 16-bit or float grey: "L" would clip it at 255
            return _wide_gray(np.asarray(image)).astype(np.float32)
        return np.asarray(image.convert("L"), dtype=np.float32) / 255
    except (OSError, SyntaxError, ValueError):
        raise ImageError(f"{name} is not a readable PNG/JPEG image") from None


def _flattened(image: Image.Image) -> Image.Image:
    """An RGBA image laid on a background its transparent parts belong with.  Where most
    of it is opaque (paper with transparent corners, a rounded crop), the background is
    the paper's: white or black as the opaque part mostly is.  Where most of it is clear
    (strokes on a transparent canvas), the strokes are the ink, and the background is
    their opposite: white under dark ink, black under light ink."""
    small = image.copy()
    small.thumbnail((WORKING_SIDE, WORKING_SIDE))  # enough to judge, however large the image
    rgba = np.asarray(small)
    opaque = rgba[..., 3] >= 128
    on_black = False
    if opaque.any():
        levels = np.asarray(small.convert("L"))[opaque]
        if opaque.mean() >= 0.5:  # paper: the background is its colour
            on_black = bool(np.median(levels) < 128)
        else:  # strokes: the background is their opposite
            on_black = bool(levels.mean() >= 128)
    background = Image.new("RGBA", image.size, "black" if on_black else "white")
    return Image.alpha_composite(background, image)


def _wide_gray(pixels: np.ndarray) -> np.ndarray:
    """Grey levels of a 16-bit or floating-point image in [0, 1] (see :func:`grey_scale`)."""
    if not np.isfinite(pixels).all():
        raise ImageError("the image contains NaN or infinite values")
    return np.clip(pixels.astype(np.float64) / grey_scale(pixels), 0, 1)


def grey_scale(pixels: np.ndarray) -> float:
    """The white of an image's grey levels, so that the same picture held as floats in
    [0, 1], as 8-, 10-, 12- or 16-bit levels reads alike, and ink one level brighter than
    its paper is faint on every scale (the blank checks measure contrast on [0, 1]):

    - values below 0 spanning more than 2 (pixels normalised by a mean and a deviation,
      as torchvision's MNIST transform does): their own range;
    - integers: 1 for a 0/1 mask, else the first of 255, 1023, 4095 and 65535 that
      covers the largest value (or that value);
    - floats up to 2: 1 -- [0, 1] or [-1, 1] data, or [0, 1] that a resize or a filter
      overshot a little (as grey levels they would be black anyway);
    - other floats: as integers are;
    - and any values beyond 65535 either way: the largest magnitude, so what follows
      stays finite.
    """
    largest, smallest = float(pixels.max()), float(pixels.min())
    magnitude = max(abs(largest), abs(smallest))
    if magnitude > LEVEL_WHITES[-1]:  # beyond every grey scale: keep the arithmetic finite
        return magnitude
    if smallest < 0 and largest - smallest > UNIT_OVERSHOOT:
        return largest - smallest
    if largest <= (1 if pixels.dtype.kind in "biu" else UNIT_OVERSHOOT):
        return 1.0
    return next((white for white in LEVEL_WHITES if largest <= white), largest)


def to_mnist(image: np.ndarray) -> np.ndarray:
    """Normalise a grayscale image (any size, either polarity) to MNIST's 28x28 form.

    Returns float32 pixels in [0, 1] with the digit bright on black, fitted into a
    20x20 box and centred by centre of mass, exactly as the training images are.  A
    photograph is first separated into ink and paper (:func:`ink_of`), so uneven light,
    grain and specks do not count as part of the digit.  The grey levels may be on any
    scale -- floats in [0, 1], 8-bit or 16-bit levels -- and read alike on each
    (:func:`grey_scale`).
    """
    if isinstance(image, str | Path | bytes):
        raise ImageError(
            f"to_mnist takes an image's pixels, not {type(image).__name__}: read the file "
            "with load_image(path) first"
        )
    try:
        given = np.asarray(image)
    except (TypeError, ValueError):
        given = np.asarray(None)
    if given.dtype.kind not in "biuf":
        raise ImageError(f"to_mnist takes a 2-D array of grey levels, not {type(image).__name__}")
    if given.ndim != 2 or min(given.shape) < 1:
        raise ImageError(f"expected a 2-D grayscale image, got shape {given.shape}")
    # float64 first: a finite value beyond float32's range is scaled, not infinite
    pixels = given.astype(np.float64)
    if not np.isfinite(pixels).all():
        raise ImageError("the image contains NaN or infinite values")
    pixels = (pixels / grey_scale(given)).astype(np.float32)
    ink = ink_of(_at_most(pixels, WORKING_SIDE))
    box = bounding_box(ink > INK_THRESHOLD)
    if box is None:
        raise ImageError("the image is blank: no digit found")
    boxed = _fit_in_box(ink[box])
    return _centre_by_mass(boxed)


def ink_of(pixels: np.ndarray) -> np.ndarray:
    """The ink of a grayscale image, bright on black in [0, 1], everything else 0.

    Four steps, each for one way a photograph differs from a scan:

    1. *Polarity*: the paper is the majority of the pixels, so if the median pixel is
       nearer the light end of the image's range (:func:`_levels`), the ink is dark and
       is inverted.
    2. *Uneven light*: the paper's brightness is estimated (:func:`_paper`) and
       subtracted.
    3. *Ink or paper*: Otsu's threshold on what is left splits the two; an image whose
       ink is not at least MIN_CONTRAST brighter than the paper, or covers fewer than
       MIN_INK_PIXELS pixels, is blank.
    4. *Specks and clutter*: of the connected pieces of ink, those much smaller than the
       largest and those touching the border (the paper's edge, a shadow) are dropped.

    The kept ink keeps its grey edges (the mask is grown by a pixel), as MNIST's
    antialiased strokes have them.
    """
    blocks = _block_reduce(pixels, 2, np.add) / 4
    low, high = _levels(blocks)
    if high - low < MIN_CONTRAST:
        return np.zeros_like(pixels)
    if np.median(blocks) > (low + high) / 2:
        pixels = 1 - pixels
        low, high = 1 - high, 1 - low
    pixels = (pixels - low) / (high - low)
    flat = np.clip(pixels - _paper(pixels), 0, None)
    if flat.max() < MIN_CONTRAST:
        return np.zeros_like(pixels)
    core = _main_pieces(flat > _otsu(flat))
    if np.count_nonzero(core) < MIN_INK_PIXELS:
        return np.zeros_like(pixels)
    peak = float(np.percentile(flat[core], 90))
    rows, cols = bounding_box(core)  # grow the mask by a pixel, inside the ink's box only
    box = (
        slice(max(rows.start - 1, 0), rows.stop + 1),
        slice(max(cols.start - 1, 0), cols.stop + 1),
    )
    ink = np.zeros_like(flat)
    ink[box] = np.clip(flat[box] / peak, 0, 1) * grown_by_a_pixel(core[box])
    return ink


def bounding_box(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The rows and columns spanned by the True pixels of ``mask`` (None if there are
    none), found from which rows and which columns hold any: cheaper than listing them."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def grown_by_a_pixel(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one pixel in all eight directions: a binary dilation by a 3x3
    square, done as a pass along the rows and one along the columns (a 3x3 square is
    both at once), several times faster than a general dilation on a digit's box."""
    rows = mask.copy()
    rows[1:] |= mask[:-1]
    rows[:-1] |= mask[1:]
    grown = rows.copy()
    grown[:, 1:] |= rows[:, :-1]
    grown[:, :-1] |= rows[:, 1:]
    return grown


def _levels(blocks: np.ndarray) -> tuple[float, float]:
    """The darkest and lightest levels that matter, from the image averaged over 2x2
    blocks: averaging dims one-pixel noise to a quarter, but keeps ink covering under 1 %
    of the image (a small digit in a large photo, a short first stroke), which percentiles
    would miss.  (A lone speck on blank paper still sets a level; it is too small to be
    kept as ink: see MIN_INK_PIXELS.)"""
    return float(blocks.min()), float(blocks.max())


def _block_reduce(pixels: np.ndarray, step: int, combine: np.ufunc) -> np.ndarray:
    """``pixels`` cut into step x step blocks, each reduced to one value by ``combine``
    (np.minimum, np.add); the last blocks are completed by repeating the image's edge."""
    height, width = pixels.shape
    padded = pixels
    if height % step or width % step:
        padded = np.pad(pixels, ((0, -height % step), (0, -width % step)), mode="edge")
    rows = functools.reduce(combine, (padded[i::step] for i in range(step)))
    return functools.reduce(combine, (rows[:, i::step] for i in range(step)))


def _paper(pixels: np.ndarray) -> np.ndarray:
    """The paper's brightness under uneven light: a grey-level opening (a minimum, then a
    maximum filter, a quarter of the image wide), which removes strokes thinner than that
    and keeps slow changes of light.  Light changes slowly, so the opening is computed on
    a grid PAPER_STEPS times coarser than the window (blocks reduced to their minimum)
    and spread back over each block: the same estimate for a fraction of the work."""
    window = max(3, max(pixels.shape) // 4)
    step = max(1, window // PAPER_STEPS)
    darkest = _block_reduce(pixels, step, np.minimum)
    span = max(1, window // step)
    opened = ndimage.maximum_filter(ndimage.minimum_filter(darkest, span), span)
    spread = np.repeat(np.repeat(opened, step, axis=0), step, axis=1)
    return spread[: pixels.shape[0], : pixels.shape[1]]


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold: the level that best splits ``values`` into two classes (the one
    maximising the between-class variance of their 256-bin histogram)."""
    bins = 256
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return low
    width = (high - low) / bins
    scaled = values - low  # in place from here: this is called on every picture served
    scaled /= width
    np.minimum(scaled, bins - 1, out=scaled)
    counts = np.bincount(scaled.astype(np.uint8).ravel(), minlength=bins)
    centres = low + width * (np.arange(bins) + 0.5)
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * centres)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(centres[int(np.argmax(between))])


def _main_pieces(mask: np.ndarray) -> np.ndarray:
    """The connected pieces of ``mask`` that make up the digit.

    Pieces touching the image's border are the paper's edge, a shadow or a neighbour's
    digit -- unless nothing else of substance is there (at least BORDER_RATIO of the
    largest piece's size), when the digit itself runs off the edge.  Of the rest, the
    largest is the digit and others count when at least SPECK_RATIO of its size (the
    separate bar of a 5, the pieces of a broken stroke); smaller ones are specks.
    """
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    inner = np.ones(count, dtype=bool)
    inner[border[border > 0] - 1] = False
    substantial = inner.any() and sizes[inner].max() >= BORDER_RATIO * sizes.max()
    candidates = inner if substantial else np.ones(count, dtype=bool)
    main = sizes[candidates].max()
    keep = candidates & (sizes >= SPECK_RATIO * main)
    return keep[labels - 1] & mask


def _at_most(pixels: np.ndarray, side: int) -> np.ndarray:
    """The image shrunk (area-averaged) so its longer side is at most ``side`` pixels: a
    digit needs no more to be found, and the filters stay fast on a camera's megapixels."""
    height, width = pixels.shape
    if max(height, width) <= side:
        return pixels
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    shrunk = Image.fromarray(pixels).resize(size, Image.Resampling.BOX)
    return np.asarray(shrunk, dtype=np.float32)


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
