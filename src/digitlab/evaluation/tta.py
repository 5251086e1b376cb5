"""Test-time augmentation: a model's answer averaged over shifted copies of each image.

A network trained on shifted digits still answers a little differently for a digit one
pixel to the left.  Asking it about the image as given and about a few fixed shifts of
it, and averaging the probabilities, evens out that jitter -- a small ensemble made of
one network, for the price of as many forward passes as shifts.  The default shifts are
the image itself and the book's one-pixel moves up, down, left and right.

:func:`shift_averaged` wraps a model so that everything reading its probabilities
(``digitlab evaluate --tta``, ``digitlab predict --tta``, ``Model.predict`` and friends)
gets the averaged answer.  A calibrated model's temperature is then applied to the
averaged probabilities; its "unsure" threshold was fitted on single images, so with
test-time augmentation it is a slightly stricter judge (averaged answers are less
peaked).  The distance from the digits' features is measured on the image as given,
where its threshold was fitted.  A model file or ONNX graph holds the network alone, so
saving or exporting the wrapped model is refused: save the model itself, and wrap it
again after loading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from numbers import Integral
from typing import ClassVar

import numpy as np

from digitlab.data.augment import ONE_PIXEL_SHIFTS, SIDE, shifted
from digitlab.errors import ArrayError
from digitlab.nn.model_file import Model, Reading

Shift = tuple[int, int]
#: The image itself, then one pixel up, down, left and right: (rows, columns) each.
SHIFTS: tuple[Shift, ...] = ((0, 0), *ONE_PIXEL_SHIFTS)


@dataclass
class ShiftAveragedModel(Model):
    """A model whose raw probabilities for an image are the mean of the wrapped
    network's over the image moved by each of ``shifts`` (rows down, columns right)."""

    shifts: tuple[Shift, ...] = SHIFTS
    not_in_files: ClassVar[str] = "its test-time augmentation (the averaging over shifts)"

    def raw_reading(self, rows: np.ndarray) -> Reading:
        """Probabilities averaged over the shifts; features of the image as given, as
        the digits' features and their distance threshold were fitted on."""
        rows = np.asarray(rows, dtype=np.float32)
        each = [Model.raw_reading(self, shifted(rows, *shift)) for shift in self.shifts]
        probabilities = np.mean([r.probabilities for r in each], axis=0, dtype=np.float32)
        if (0, 0) in self.shifts:
            as_given = each[self.shifts.index((0, 0))]
        else:
            as_given = Model.raw_reading(self, rows)
        return Reading(probabilities, as_given.features)


def shift_averaged(model: Model, shifts: Sequence[Shift] = SHIFTS) -> ShiftAveragedModel:
    """``model`` answering with its probabilities averaged over ``shifts``: one or more
    (rows, columns) pairs of whole pixels, each under the image's side (an ArrayError
    otherwise)."""
    if not shifts or not all(
        len(shift) == 2 and all(isinstance(v, Integral) and abs(v) < SIDE for v in shift)
        for shift in shifts
    ):
        raise ArrayError(
            f"shifts: {shifts!r} is not one or more (rows, columns) pairs of whole pixels "
            f"under {SIDE}"
        )
    copied = {field.name: getattr(model, field.name) for field in fields(Model)}
    return ShiftAveragedModel(**copied, shifts=tuple((int(r), int(c)) for r, c in shifts))
