"""Reading and writing IDX files, the format MNIST is distributed in.

An IDX file is a 4-byte magic number -- two zero bytes, a type code and the number
of dimensions -- then each dimension as a big-endian uint32, then the data in C
order.  The reader checks all of that against the file's length, so a truncated or
corrupt download is reported instead of silently read as garbage.  Gzipped files
(as the public mirrors serve them) are recognised by their own magic bytes.
"""

from __future__ import annotations

import math
import shlex
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
#: The largest IDX file read, compressed or not (MNIST's training images are 47 MB).
MAX_IDX_BYTES = 200_000_000


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into an array of its declared shape and type."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_IDX_BYTES:
            raise DataError(f"{path} is over {MAX_IDX_BYTES:,} bytes; not MNIST")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    if raw.startswith(GZIP_MAGIC):
        raw = _gunzip(raw, path)
    try:
        return parse_idx(raw, name=str(path))
    except DataError as error:
        raise DataError(f"{error}; {refetch_hint(path)}") from None


def refetch_hint(path: Path) -> str:
    """How to replace the damaged file ``path`` with a verified download of MNIST's --
    only if it is MNIST: a folder may hold another data set in MNIST's format."""
    folder = shlex.quote(str(path.parent))
    return (
        f"if it is MNIST's, `digitlab data fetch --force --data-dir {folder}` replaces it "
        "with a verified download"
    )


def _gunzip(raw: bytes, path: Path) -> bytes:
    """The decompressed bytes, never more than :data:`MAX_IDX_BYTES` of them: a gzip
    bomb is refused when it passes the limit, not after it has filled the memory."""
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflate.decompress(raw, MAX_IDX_BYTES + 1)
    except zlib.error:
        raise DataError(f"{path} is a corrupt gzip file; {refetch_hint(path)}") from None
    if len(data) > MAX_IDX_BYTES:
        raise DataError(f"{path} decompresses to over {MAX_IDX_BYTES:,} bytes; not MNIST")
    if not inflate.eof:
        raise DataError(f"{path} is a truncated gzip file; {refetch_hint(path)}")
    if inflate.unused_data:
        raise DataError(f"{path} has data after its gzip stream; {refetch_hint(path)}")
    return data


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an uncompressed IDX file, checking header against length."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(f"{name} is not an IDX file (bad magic number)")
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header_size = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_size:
        raise DataError(f"{name} has a truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    if 0 in shape:
        raise DataError(f"{name} declares an empty dimension ({shape})")
    expected = header_size + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(
            f"{name} is {state} ({len(raw)} bytes, expected {expected} for shape "
            f"{'x'.join(map(str, shape))})"
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
