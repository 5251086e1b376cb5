"""MNIST: fetching, verifying, caching, reading and splitting; user-image preprocessing."""

from digitlab.data.fetch import default_data_dir, fetch_mnist
from digitlab.data.images import load_image, to_mnist
from digitlab.data.mnist import Dataset, Split, load_mnist, one_hot

__all__ = [
    "Dataset",
    "Split",
    "default_data_dir",
    "fetch_mnist",
    "load_image",
    "load_mnist",
    "one_hot",
    "to_mnist",
]
