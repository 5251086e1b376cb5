"""MNIST as the book splits it: 50,000 training, 10,000 validation, 10,000 test images.

The validation images are the last 10,000 of MNIST's training file, so choosing
hyperparameters never looks at the test set.  Any directory holding four IDX files
with MNIST's names and layout (Fashion-MNIST, say) loads the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.data.fetch import MNIST_FILES, default_data_dir, existing_file, fetch_mnist
from digitlab.data.idx import read_idx
from digitlab.errors import DataError
from digitlab.inputs import digit_labels, pixel_rows
from digitlab.reporting import Report, silent
from digitlab.spec import IMAGE_SHAPE, PIXELS

VALIDATION_SIZE = 10_000
NUM_CLASSES = 10


@dataclass(frozen=True)
class Split:
    """Images as rows of float32 pixels in [0, 1] (batch-first), with integer labels.

    Images built by hand arrive in every form a user holds them in, so they are checked
    and brought to that form here, once, as a model's inputs are
    (:func:`~digitlab.inputs.pixel_rows`: 0-255 grey levels are scaled, NaN or a wrong
    shape refused), and the labels must be digits 0-9, one per image.  Unscaled pixels
    or labels out of range would otherwise train without a word and learn nothing.  A
    split may be empty (images of shape (0, 784)): a test set that a run does not measure.
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        empty = isinstance(self.images, np.ndarray) and self.images.shape == (0, PIXELS)
        images = np.zeros((0, PIXELS), np.float32) if empty else pixel_rows(self.images)
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", digit_labels(self.labels, len(images)))

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int) -> Split:
        """The first ``n`` examples (all of them if there are fewer)."""
        return Split(self.images[:n], self.labels[:n])


@dataclass(frozen=True)
class Dataset:
    """MNIST's three splits: training, validation (the last 10,000 training images, as in
    the book) and test.

    Built by hand, each split is a :class:`Split`; the test split may be left out (None):
    a run then measures no test set.  Every digitlab network reads 28 x 28 images, so
    ``image_shape`` is that, and anything else is refused rather than ignored."""

    train: Split
    validation: Split
    test: Split | None = None
    image_shape: tuple[int, int] = IMAGE_SHAPE

    def __post_init__(self) -> None:
        if self.test is None:
            object.__setattr__(self, "test", Split(np.zeros((0, PIXELS)), np.zeros(0)))
        for name in ("train", "validation", "test"):
            split = getattr(self, name)
            if not isinstance(split, Split):
                raise TypeError(
                    f"Dataset's {name} is a Split(images, labels), not {type(split).__name__}"
                )
        if tuple(self.image_shape) != IMAGE_SHAPE:
            raise DataError(
                f"image_shape: every digitlab network reads {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} "
                f"images, not {tuple(self.image_shape)}"
            )
        object.__setattr__(self, "image_shape", IMAGE_SHAPE)

    def head(
        self, train: int | None = None, validation: int | None = None, test: int | None = None
    ) -> Dataset:
        """The dataset with each split cut to its first ``n`` images where ``n`` is given:
        quicker experiments, since the trainer measures every validation and test image
        after each epoch (``spec.train_size`` cuts the training set alone)."""
        return Dataset(
            self.train if train is None else self.train.head(train),
            self.validation if validation is None else self.validation.head(validation),
            self.test if test is None else self.test.head(test),
            self.image_shape,
        )


def load_mnist(data_dir: Path | None = None, report: Report = silent) -> Dataset:
    """Load the book's three splits, fetching MNIST first if its files are not there.

    The default folder is made when needed; a folder the caller names must exist (only
    ``digitlab data fetch`` creates one), so a mistyped path is an error, not a download.
    """
    if data_dir is not None and Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise DataError(f"data folder {data_dir} is a file, not a folder")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise DataError(
            f"data folder {data_dir} does not exist; `digitlab data fetch --data-dir "
            f"{data_dir}` creates it and downloads MNIST there"
        )
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if any(existing_file(data_dir, name) is None for name in MNIST_FILES):
        fetch_mnist(data_dir, report=report)
    train_images, train_labels = read_pair(data_dir, "train")
    test_images, test_labels = read_pair(data_dir, "t10k")
    if len(train_labels) <= VALIDATION_SIZE:
        raise DataError(
            f"the training file in {data_dir} has {len(train_labels)} images; "
            f"more than {VALIDATION_SIZE} are needed to hold out a validation set"
        )
    cut = len(train_labels) - VALIDATION_SIZE
    return Dataset(
        train=Split(train_images[:cut], train_labels[:cut]),
        validation=Split(train_images[cut:], train_labels[cut:]),
        test=Split(test_images, test_labels),
        image_shape=IMAGE_SHAPE,
    )


def load_test_split(data_dir: Path | None = None, report: Report = silent) -> Split:
    """Only MNIST's test set: all that scoring a model needs.  ``data_dir`` may hold just
    the two ``t10k-*`` files (raw or gzipped).  A folder holding none of MNIST's files --
    the default one, or one the caller names -- is fetched into first, as for training."""
    if data_dir is None or not Path(data_dir).is_dir() or holds_no_mnist(Path(data_dir)):
        return load_mnist(data_dir, report).test
    return Split(*read_pair(Path(data_dir), "t10k"))


def holds_no_mnist(data_dir: Path) -> bool:
    """Whether none of MNIST's four files (raw or gzipped) is in ``data_dir``."""
    return all(existing_file(data_dir, name) is None for name in MNIST_FILES)


def read_pair(data_dir: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one images/labels pair (``PREFIX-images-idx3-ubyte`` and ``PREFIX-labels-idx1-ubyte``,
    raw or gzipped) as pixels in [0, 1] and labels, checking they belong together."""
    names = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
    images_path, labels_path = (existing_file(data_dir, name) for name in names)
    for name, path in zip(names, (images_path, labels_path), strict=True):
        if path is None:
            raise DataError(f"{data_dir} has no {name} (raw or .gz)")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise DataError(f"{images_path} does not hold 28x28 8-bit images")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{labels_path} does not hold one label per image in {images_path.name}")
    if labels.dtype != np.uint8 or labels.max(initial=0) >= NUM_CLASSES:
        raise DataError(f"{labels_path} has labels outside 0-9 (or not as unsigned bytes)")
    pixels = images.reshape(len(images), -1).astype(np.float32)
    pixels *= np.float32(1 / 255)
    return pixels, labels.astype(np.int64)


def one_hot(labels: np.ndarray, dtype: np.dtype = np.float32) -> np.ndarray:
    """Labels as rows of a one-hot matrix, the target the costs compare outputs with."""
    targets = np.zeros((len(labels), NUM_CLASSES), dtype=dtype)
    targets[np.arange(len(labels)), labels] = 1
    return targets
