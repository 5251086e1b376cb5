"""Fashion-MNIST's test set: 10,000 28x28 pictures of clothes, shoes and bags.

It has MNIST's format and MNIST's look (bright on black, centred, 28x28) but holds no
digit, which makes it a fair test of whether a digit recogniser knows when it is shown
something else.  It is a *test* only: nothing in digitlab trains on it, chooses a
threshold with it or picks a method by it.  Debian ships it (``apt-get install
dataset-fashion-mnist``), which puts the files in :data:`FASHION_MNIST_DIR`.
"""

from __future__ import annotations

from pathlib import Path

from digitlab.data.mnist import Split, read_pair
from digitlab.errors import DataError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def load_fashion_mnist_test(directory: Path = FASHION_MNIST_DIR) -> Split:
    """Fashion-MNIST's test images (pixels in [0, 1]) and their clothing labels."""
    if not Path(directory).is_dir():
        raise DataError(
            f"Fashion-MNIST is not in {directory}: install the Debian package "
            "dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"
        )
    return Split(*read_pair(Path(directory), "t10k"))
