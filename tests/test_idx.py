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


def test_dimensions_whose_product_overflows_64_bits(tmp_path: Path) -> None:
    """65536^4 wraps to 0 in int64: the file would pass as empty and fail later."""
    path = tmp_path / "f"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + (65536).to_bytes(4, "big") * 4)
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_a_gzip_bomb_stops_at_the_limit(tmp_path: Path, monkeypatch) -> None:
    from digitlab.data import idx

    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 1_000_000)
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 0x08, 1]) + bytes(10_000_000)))
    with pytest.raises(DataError, match="decompresses to over 1,000,000 bytes"):
        read_idx(path)


def test_a_truncated_gzip_file(tmp_path: Path) -> None:
    write_idx(tmp_path / "a", np.arange(1000, dtype=np.uint8))
    packed = gzip.compress((tmp_path / "a").read_bytes())
    (tmp_path / "a.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match="truncated gzip"):
        read_idx(tmp_path / "a.gz")


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8), "empty dimension"),
        (np.zeros((2, 28, 28), np.uint8), np.array([3, -1], np.int8), "outside 0-9"),
        (np.zeros((2, 28, 28), np.uint8), np.array([3, 10], np.uint8), "outside 0-9"),
    ],
    ids=["no images", "signed labels", "label 10"],
)
def test_a_test_set_that_is_not_mnist(tmp_path: Path, images, labels, message) -> None:
    from digitlab.data.mnist import read_pair

    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(DataError, match=message):
        read_pair(tmp_path, "t10k")
