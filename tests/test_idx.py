"""The IDX reader on good, truncated and corrupt input, and on the real MNIST files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from digitlab.data.fetch import existing_file
from digitlab.data.idx import read_idx, write_idx
from digitlab.errors import DataError


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path: Path, dtype) -> None:
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    write_idx(tmp_path / "a", array)
    loaded = read_idx(tmp_path / "a")
    assert loaded.dtype == np.dtype(dtype) and np.array_equal(loaded, array)


def test_reads_gzipped(tmp_path: Path) -> None:
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "a", array)
    (tmp_path / "a.gz").write_bytes(gzip.compress((tmp_path / "a").read_bytes()))
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)


def test_real_mnist_header(mnist_dir: Path) -> None:
    images = read_idx(existing_file(mnist_dir, "t10k-images-idx3-ubyte"))
    labels = read_idx(existing_file(mnist_dir, "t10k-labels-idx1-ubyte"))
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and set(np.unique(labels)) == set(range(10))


def corrupt(tmp_path: Path, mutate) -> Path:
    write_idx(tmp_path / "f", np.zeros((5, 4, 4), dtype=np.uint8))
    path = tmp_path / "f"
    path.write_bytes(mutate(path.read_bytes()))
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:-3], "truncated"),
        (lambda b: b + b"\0", "longer than its header says"),
        (lambda b: b"\x01" + b[1:], "bad magic number"),
        (lambda b: b[:2] + b"\x42" + b[3:], "bad magic number"),
        (lambda b: b[:6], "truncated IDX header"),
        (lambda b: b"", "bad magic number"),
        (lambda b: b"\x1f\x8b" + b[2:], "corrupt gzip"),
    ],
)
def test_corrupt_input_names_file_and_fix(tmp_path: Path, mutate, message: str) -> None:
    path = corrupt(tmp_path, mutate)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "digitlab data fetch --force" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nothing")
