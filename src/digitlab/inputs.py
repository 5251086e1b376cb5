"""What a Python user hands a model -- images and the digits they show -- checked in
one place and brought to the network's form.

Users hold MNIST-like digits in many forms: rows of 784 pixels or 28x28 images (with
Keras' grey channel last or PyTorch's first), one image or many, ``uint8`` grey levels
0-255 straight from the IDX files, or floats already divided by 255.  :func:`pixel_rows`
accepts all of these and returns what every digitlab network reads: float32 rows of 784
pixels in [0, 1].  Images that are mostly light -- dark ink on light paper, the reverse
of MNIST's form -- are warned of.  Labels are digits, or Keras' one-hot rows of ten.

The scale is decided for the whole array, never image by image:

* integer arrays hold grey levels 0-255 and are divided by 255;
* float arrays whose largest value is at most 1 are taken as already in [0, 1];
* float arrays with any value above 1 hold grey levels 0-255 and are divided by 255 --
  unless some of their images lie wholly within (0, 1] (scales mixed in one array: read
  as grey levels, those images would be black) or the largest value is at most 2 (data
  meant for [0, 1] that a scaler pushed a little past 1): both are refused, since either
  reading would be wrong for part of the array;
* integer arrays of only 0 and 1 are refused: binarised pixels, which divided by 255
  would be all but black.
  Fed unscaled, such pixels would saturate the first layer and cost the network
  accuracy without any error -- the silent mistake this module exists to prevent.

Everything else is refused with one :class:`~digitlab.errors.ArrayError` (also a
``ValueError``): other shapes, an empty array, sparse matrices, non-numeric or boolean
types, NaN or infinite values, negative values and values above 255.  (A float array of
0-255 data that is all at most 1 -- nearly black images -- cannot be told from [0, 1]
data and is read as [0, 1].)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.sparse import issparse

from digitlab.errors import ArrayError
from digitlab.spec import DIGITS, IMAGE_SHAPE, PIXELS

#: The largest grey level of 8-bit images.
MAX_GREY = 255
SHAPES = (
    f"(n, {PIXELS}), (n, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]}), Keras' "
    f"(n, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]}, 1), PyTorch's "
    f"(n, 1, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]}), or one image of any of these shapes"
)
#: Images whose mean pixel is above this are mostly light: dark ink on light paper,
#: the reverse of MNIST's form.  MNIST's digits average about 0.13 and inverted ones
#: about 0.87; uniform noise, 0.5, stays below it.
LIGHT_MEAN = 0.6


def _nullable_numbers(frame: Any, array: np.ndarray) -> np.ndarray:
    """pandas' nullable columns (Int64, Float64: what ``read_csv`` with
    ``dtype_backend="numpy_nullable"`` gives) come out of ``np.asarray`` as objects: as the
    numbers they hold instead -- integers stay integers, and a missing value is NaN,
    which is then refused as such.  Anything else is left as it was."""
    dtypes = list(frame.dtypes) if hasattr(frame, "columns") else [frame.dtype]
    numpy_types = [
        dtype if isinstance(dtype, np.dtype) else getattr(dtype, "numpy_dtype", None)
        for dtype in dtypes
    ]
    if any(found is None or found.kind not in "uif" for found in numpy_types):
        return array
    if any(found.kind == "f" for found in numpy_types) or bool(np.asarray(frame.isna()).any()):
        return frame.to_numpy(dtype=np.float64, na_value=np.nan)
    return frame.to_numpy(dtype=np.int64)


def pixel_rows(images: object) -> np.ndarray:
    """``images`` as float32 rows of :data:`~digitlab.spec.PIXELS` pixels in [0, 1].

    Accepts an array (or nested lists) of shape (n, 784), (n, 28, 28), or a single
    image of shape (784,) or (28, 28), of any integer or float type; see the module
    docstring for how the scale is decided and what is refused.
    """
    if issparse(images):
        raise ArrayError("sparse matrices are not supported: pass a dense array (X.toarray())")
    try:
        array = np.asarray(images)
    except ValueError:  # nested lists of unequal lengths
        raise ArrayError(f"images must be an array of shape {SHAPES}") from None
    if array.dtype == object and hasattr(images, "to_numpy"):
        array = _nullable_numbers(images, array)
    if array.dtype.kind not in "uif":
        raise ArrayError(f"pixels must be integer or float numbers, not {array.dtype}")
    rows = _as_rows(array)
    if not np.isfinite(rows).all():
        bad = int(np.count_nonzero(~np.isfinite(rows)))
        raise ArrayError(
            f"pixels must be finite numbers; {bad} {'is' if bad == 1 else 'are'} NaN or infinite"
        )
    smallest, largest = rows.min(), rows.max()
    if smallest < 0 or largest > MAX_GREY:
        raise ArrayError(
            f"pixels must be grey levels 0-{MAX_GREY} (or 0-1 as floats); "
            f"these range from {smallest:g} to {largest:g}"
        )
    if array.dtype.kind in "ui" and largest == 1:
        raise ArrayError(
            "integer pixels of 0 and 1 look binarised: pass them as floats in [0, 1], "
            "or as grey levels 0-255"
        )
    if array.dtype.kind in "ui":
        scaled = np.multiply(rows, 1 / MAX_GREY, dtype=np.float32)
    elif largest > 1:
        check_one_grey_scale(rows, largest)
        scaled = np.multiply(rows, 1 / MAX_GREY, dtype=np.float32)
    else:
        scaled = np.ascontiguousarray(rows, dtype=np.float32)
    warn_if_light(scaled)
    return scaled


def warn_if_light(rows: np.ndarray) -> None:
    """Warn when ``rows`` (in [0, 1]) are mostly light, as dark ink on light paper is:
    every digitlab network reads light ink on black, as MNIST has it, and would answer
    such images with confident nonsense.  A warning, not an error: nothing in the
    pixels proves they are not what the caller means."""
    mean = float(rows.mean(dtype=np.float64))
    if mean > LIGHT_MEAN:
        warnings.warn(
            f"these images are mostly light (mean pixel {mean:.2f}): digitlab's networks "
            "read light ink on black, as MNIST has it; invert dark-on-light images "
            "(255 - x, or 1 - x), or pass photos through digitlab.data.to_mnist",
            UserWarning,
            stacklevel=3,
        )


#: Float pixels that reach above 1 but no further than this are not grey levels 0-255
#: (a digit's ink is far brighter) but [0, 1] data pushed past 1, by a scaler say.
MAX_STRAY_ABOVE_ONE = 2


def check_one_grey_scale(rows: np.ndarray, largest: float) -> None:
    """Refuse float rows about to be read as grey levels 0-255 when part of them is
    plainly on the [0, 1] scale: the whole array a little past 1, or some images lying
    wholly within (0, 1] beside others that reach far above it."""
    if largest <= MAX_STRAY_ABOVE_ONE:
        raise ArrayError(
            f"float pixels must lie in [0, 1] or be grey levels 0-255; these reach "
            f"{largest:g}, just past 1: clip them to [0, 1] (a per-pixel scaler fitted on "
            "other images, such as MinMaxScaler, does this unless told clip=True)"
        )
    peaks = rows.max(axis=1)
    faint = int(np.count_nonzero((peaks > 0) & (peaks <= 1)))
    if faint:
        raise ArrayError(
            f"float pixels on two scales: {faint} of {len(rows)} images lie within [0, 1] "
            f"while others reach {largest:g}; pass them all in [0, 1], or all as grey "
            "levels 0-255 (integers are never ambiguous; a per-pixel scaler such as "
            "MinMaxScaler gives this without clip=True)"
        )


def _as_rows(array: np.ndarray) -> np.ndarray:
    """``array`` reshaped to (n, 784), or a ArrayError naming the accepted shapes."""
    shape = array.shape
    if array.size == 0:
        raise ArrayError(f"no images: the array of shape {shape} is empty")
    if len(shape) in (3, 4) and shape[-1] == 1 and shape[-3:-1] == IMAGE_SHAPE:
        shape = shape[:-1]  # Keras' channels-last images with their one grey channel
    elif len(shape) in (3, 4) and shape[-3] == 1 and shape[-2:] == IMAGE_SHAPE:
        shape = shape[:-3] + shape[-2:]  # PyTorch's channels-first images
    if shape in ((PIXELS,), IMAGE_SHAPE):
        return array.reshape(1, PIXELS)
    if shape[1:] in ((PIXELS,), IMAGE_SHAPE):
        return array.reshape(shape[0], PIXELS)
    raise ArrayError(f"images must have shape {SHAPES}; got {array.shape}")


def digit_labels(labels: object, count: int) -> np.ndarray:
    """``labels`` as ``count`` integer digits 0-9 (whole-number floats are accepted),
    or an ArrayError saying why they cannot be."""
    try:
        array = np.asarray(labels)
    except ValueError:
        raise ArrayError(f"labels must be {count} digits 0-{DIGITS - 1}") from None
    if _one_hot(array, count):  # Keras' to_categorical: one row of ten per image
        array = array.argmax(axis=1)
    if array.shape != (count,):
        raise ArrayError(f"labels must be {count} digits (one per image); got shape {array.shape}")
    if array.dtype.kind not in "uif":
        raise ArrayError(f"labels must be digits 0-{DIGITS - 1}, not {array.dtype}")
    valid = np.isfinite(array) & (array >= 0) & (array < DIGITS) & (array == np.round(array))
    if not valid.all():
        raise ArrayError(f"labels must be digits 0-{DIGITS - 1}; found {array[~valid][0].item()}")
    return array.astype(np.int64)


def _one_hot(array: np.ndarray, count: int) -> bool:
    """Whether ``array`` is ``count`` one-hot rows of ten: zeros and a single one each."""
    return (
        array.shape == (count, DIGITS)
        and array.dtype.kind in "uifb"
        and bool(np.isin(array, (0, 1)).all())
        and bool((array.sum(axis=1) == 1).all())
    )
