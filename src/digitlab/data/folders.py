"""A folder of a person's own labelled digit images, in MNIST's form.

The layout is the one image tools use for classification data: one sub-folder per
digit, named ``0`` to ``9``, holding image files of any size and either polarity
(``DIR/3/anything.png`` is a 3).  Each image goes through :func:`to_mnist`, as
``digitlab predict`` would send it.  Files that are not readable images and folders
that are not digits are skipped and reported, not fatal: one stray ``.DS_Store`` should
not stop a scoring run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.data.images import load_image, to_mnist
from digitlab.data.mnist import NUM_CLASSES, Split
from digitlab.errors import DataError, ImageError

#: More files than this in one folder is not a person's handwriting; refuse early.
MAX_FILES = 200_000


@dataclass(frozen=True)
class Skipped:
    """A file or folder left out, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class LabelledImages:
    """The images that could be read (in MNIST form), their files, and what was skipped."""

    split: Split
    paths: list[Path]
    skipped: list[Skipped]


def load_labelled_folder(directory: Path) -> LabelledImages:
    """Read ``DIR/0/*`` ... ``DIR/9/*`` as labelled digits through :func:`to_mnist`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory} is not a folder (expected sub-folders 0 to 9 of images)")
    fields, labels, paths, skipped = [], [], [], []
    entries = sorted(directory.iterdir())
    for entry in entries:
        if not (entry.is_dir() and entry.name.isdigit() and int(entry.name) < NUM_CLASSES):
            skipped.append(Skipped(entry, "not a digit folder (0-9)"))
            continue
        files = sorted(path for path in entry.iterdir())
        if len(paths) + len(files) > MAX_FILES:
            raise DataError(f"{directory} holds more than {MAX_FILES:,} files")
        for path in files:
            if not path.is_file():
                skipped.append(Skipped(path, "not a regular file"))
                continue
            try:
                fields.append(to_mnist(load_image(path)).reshape(-1))
            except ImageError as error:
                skipped.append(Skipped(path, str(error).removeprefix(f"{path} ")))
                continue
            labels.append(int(entry.name))
            paths.append(path)
    if not fields:
        raise DataError(
            f"{directory} has no readable digit images in sub-folders 0 to 9"
            + (f" ({len(skipped)} entries skipped)" if skipped else "")
        )
    split = Split(np.stack(fields).astype(np.float32), np.array(labels, dtype=np.int64))
    return LabelledImages(split, paths, skipped)
