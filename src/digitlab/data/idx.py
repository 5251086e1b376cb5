"""Reading and writing IDX files, the format MNIST is distributed in.

An IDX file is a 4-byte magic number -- two zero bytes, a type code and the number
of dimensions -- then each dimension as a big-endian uint32, then the data in C
order.  The reader checks all of that against the file's length, so a truncated or
corrupt download is reported instead of silently read as garbage.  Gzipped files
(as the public mirrors serve them) are recognised by their own magic bytes.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from digitlab.errors import DataError

#: IDX type code -> NumPy dtype (multi-byte types are big-endian).
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
REFETCH_HINT = "re-fetch it with `digitlab data fetch --force`"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into an array of its declared shape and type."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    if raw.startswith(GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            raise DataError(f"{path} is a corrupt gzip file; {REFETCH_HINT}") from None
    return parse_idx(raw, name=str(path))


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an uncompressed IDX file, checking header against length."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(f"{name} is not an IDX file (bad magic number); {REFETCH_HINT}")
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header_size = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_size:
        raise DataError(f"{name} has a truncated IDX header; {REFETCH_HINT}")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(
            f"{name} is {state} ({len(raw)} bytes, expected {expected} for shape "
            f"{'x'.join(map(str, shape))}); {REFETCH_HINT}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as an uncompressed IDX file (the inverse of :func:`read_idx`)."""
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    native = np.dtype(array.dtype).newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot store arrays of type {array.dtype}")
    big_endian = IDX_TYPES[codes[native]]
    header = bytes([0, 0, codes[native], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    Path(path).write_bytes(header + np.ascontiguousarray(array, dtype=big_endian).tobytes())
