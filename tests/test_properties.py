"""Whatever bytes or structures a stranger sends, the readers answer with a result or one
of digitlab's own errors -- never another exception -- and allocate little doing it."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digitlab.data.idx import parse_idx, read_idx
from digitlab.data.images import load_image, to_mnist
from digitlab.errors import DataError, ImageError, ModelFileError, SpecError
from digitlab.nn.model_file import HEADER_KEY, load_model
from digitlab.spec import make_spec, read_toml

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON-like values, nested a little: what a header, a spec or a TOML table may hold.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
spec_keys = st.sampled_from(
    [
        "layers",
        "activation",
        "cost",
        "eta",
        "epochs",
        "batch_size",
        "seed",
        "dropout",
        "init",
        "augment",
        "outliers",
        "schedule",
        "train_size",
        "momentum",
    ]
)


def answers_or_refuses(read, argument, error: type[Exception]) -> None:
    """``read(argument)`` returns, or raises ``error`` (digitlab's own): nothing else."""
    try:
        read(argument)
    except error:
        pass


@contextlib.contextmanager
def file_holding(raw: bytes, name: str):
    """A path to a fresh file holding ``raw``, removed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(raw)
        yield path


@EXAMPLES
@given(st.binary(max_size=300))
def test_idx_bytes(raw: bytes) -> None:
    answers_or_refuses(parse_idx, raw, DataError)


@EXAMPLES
@given(
    st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]),
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4),
    st.binary(max_size=64),
)
def test_idx_headers_claiming_any_shape(code: int, shape: list[int], body: bytes) -> None:
    raw = bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + body
    try:
        array = parse_idx(raw)
    except DataError:
        return
    assert array.size * array.itemsize == len(body)


@EXAMPLES
@given(st.binary(max_size=300))
def test_gzipped_idx_bytes(raw: bytes) -> None:
    import gzip

    with file_holding(gzip.compress(raw), "f.gz") as path:
        answers_or_refuses(read_idx, path, DataError)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


arrays = st.one_of(
    st.builds(lambda n: np.zeros(n, np.float32), st.integers(0, 20)),
    st.builds(lambda n: np.ones((n, 10), np.float64), st.integers(0, 5)),
    st.builds(lambda n: np.arange(n), st.integers(0, 5)),
    st.just(np.array(["text"])),
    st.just(np.zeros(3, dtype=[("a", "f4")])),
    st.just(np.array([np.nan, np.inf], np.float32)),
)


@EXAMPLES
@given(
    st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    st.dictionaries(st.sampled_from(["param/0", "param/1", "param/2", "x"]), arrays, max_size=3),
    st.booleans(),
)
def test_model_files_of_any_content(header: dict, members: dict, ours: bool) -> None:
    if ours:
        header = {"format": "digitlab-model", "format_version": 1, **header}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.npz"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(HEADER_KEY + ".npy", npy(np.array(json.dumps(header))))
            for name, array in members.items():
                archive.writestr(name + ".npy", npy(array))
        answers_or_refuses(load_model, path, ModelFileError)


@EXAMPLES
@given(st.binary(max_size=400))
def test_model_file_bytes(raw: bytes) -> None:
    with file_holding(raw, "m.npz") as path:
        answers_or_refuses(load_model, path, ModelFileError)


@EXAMPLES
@given(st.binary(max_size=400))
def test_image_bytes(raw: bytes) -> None:
    answers_or_refuses(load_image, raw, ImageError)


@EXAMPLES
@given(
    st.integers(1, 40),
    st.integers(1, 40),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=8),
)
def test_to_mnist_on_any_grey_levels(height: int, width: int, levels: list[float]) -> None:
    image = np.resize(np.array(levels, dtype=np.float32), (height, width))
    try:
        field = to_mnist(image)
    except ImageError:
        return
    assert field.shape == (28, 28) and np.isfinite(field).all()
    assert field.min() >= 0 and field.max() <= 1


@EXAMPLES
@given(st.dictionaries(spec_keys | st.text(max_size=8), json_values, max_size=6))
def test_specs_of_any_structure(fields: dict) -> None:
    answers_or_refuses(make_spec, fields, SpecError)


@EXAMPLES
@given(st.binary(max_size=300))
def test_toml_files_of_any_bytes(raw: bytes) -> None:
    from digitlab.experiments.study_file import load_study_file

    with file_holding(raw, "s.toml") as path:
        answers_or_refuses(lambda p: read_toml(p, "spec file"), path, SpecError)
        answers_or_refuses(load_study_file, path, SpecError)


@EXAMPLES
@given(st.lists(st.text(max_size=10) | json_values, min_size=1, max_size=5))
def test_layer_lists_of_any_items(layers: list) -> None:
    """Layer texts mixed with anything else (found: a None beside a text crashed)."""
    answers_or_refuses(make_spec, {"layers": layers}, SpecError)
