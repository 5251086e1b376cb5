"""Model files from strangers: every way a file can be damaged or hostile is one clear
ModelFileError, found before anything large is allocated or decompressed."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from digitlab.errors import ModelFileError
from digitlab.nn.build import build_network
from digitlab.nn.model_file import HEADER_KEY, Model, TrainingMetrics, load_model, save_model
from digitlab.spec import make_spec

SPEC = make_spec({"layers": [784, 10], "cost": "log-likelihood"})


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.npz"
    metrics = TrainingMetrics(epochs_run=3, best_epoch=2, validation_accuracy=0.5)
    save_model(path, Model(SPEC, build_network(SPEC, np.random.default_rng(0)), metrics))
    return path


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def header_of(path: Path) -> dict:
    return json.loads(str(np.load(io.BytesIO(members(path)[HEADER_KEY + ".npy"]))))


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def rewritten(path: Path, changes: dict[str, bytes | None], compress: bool = False) -> Path:
    """A copy of ``path`` with some members replaced (None: removed)."""
    out = path.with_name("bad.npz")
    contents = {**members(path), **changes}
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in contents.items():
            if data is not None:
                archive.writestr(name, data)
    return out


def with_header(path: Path, **fields) -> Path:
    header = {**header_of(path), **fields}
    return rewritten(path, {HEADER_KEY + ".npy": npy(np.array(json.dumps(header)))})


def test_a_good_file_loads(good: Path) -> None:
    assert load_model(good).metrics == TrainingMetrics(
        epochs_run=3, best_epoch=2, validation_accuracy=0.5
    )


@pytest.mark.parametrize("version", ["1", None, 1.5, True, -1])
def test_a_format_version_that_is_not_a_count(good: Path, version) -> None:
    with pytest.raises(ModelFileError, match="format version"):
        load_model(with_header(good, format_version=version))


def test_metrics_that_are_not_a_record(good: Path) -> None:
    with pytest.raises(ModelFileError, match="metrics"):
        load_model(with_header(good, metrics=[1, 2]))


@pytest.mark.parametrize("value", ["3", [3], True, float("inf")])
def test_a_metric_that_is_not_a_finite_number(good: Path, value) -> None:
    with pytest.raises(ModelFileError, match="metric best_epoch"):
        load_model(with_header(good, metrics={"best_epoch": value}))


def test_metrics_this_version_does_not_know_are_left_out(good: Path) -> None:
    metrics = load_model(with_header(good, metrics={"best_epoch": 4, "from_the_future": 1})).metrics
    assert metrics == TrainingMetrics(best_epoch=4)


def test_a_deeply_nested_header(good: Path) -> None:
    text = '{"format": "digitlab-model", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(ModelFileError, match="not a digitlab model"):
        load_model(rewritten(good, {HEADER_KEY + ".npy": npy(np.array(text))}))


def test_a_spec_too_large_to_allocate(good: Path) -> None:
    spec = {**header_of(good)["spec"], "layers": [784, 1_000_000_000, 10]}
    with pytest.raises(ModelFileError, match="weights"):
        load_model(with_header(good, spec=spec))


def test_parameters_numbered_with_a_gap(good: Path) -> None:
    bad = rewritten(good, {"param/1.npy": None, "param/2.npy": npy(np.zeros(10, np.float32))})
    with pytest.raises(ModelFileError, match="param/1 is missing"):
        load_model(bad)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros(10, dtype=[("a", "f4")]),
        np.zeros(10, dtype=bool),
        np.zeros(10, dtype="datetime64[s]"),
        np.zeros(10, dtype=complex),
    ],
    ids=["structured", "bool", "datetime", "complex"],
)
def test_arrays_of_the_wrong_kind(good: Path, array) -> None:
    with pytest.raises(ModelFileError, match="damaged"):
        load_model(rewritten(good, {"param/1.npy": npy(array)}))


def test_weights_that_are_integers_are_not_cast(good: Path) -> None:
    with pytest.raises(ModelFileError, match="floating-point"):
        load_model(rewritten(good, {"param/1.npy": npy(np.zeros(10, dtype=np.int64))}))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_weights_that_are_not_finite(good: Path, value) -> None:
    biases = np.zeros(10, np.float32)
    biases[3] = value
    with pytest.raises(ModelFileError, match="NaN or infinite"):
        load_model(rewritten(good, {"param/1.npy": npy(biases)}))


def test_an_array_header_claiming_a_trillion_values(good: Path) -> None:
    claim = npy(np.zeros(10, np.float32)).replace(b"(10,)", b"(1000000, 1000000)")
    with pytest.raises(ModelFileError, match="damaged"):
        load_model(rewritten(good, {"param/1.npy": claim}))


def test_a_zip_bomb_is_refused_before_it_is_inflated(good: Path) -> None:
    """50 MB of zeros behind a header that says 10 values, compressed to ~50 KB."""
    bomb = npy(np.zeros(10, np.float32)) + bytes(50_000_000)
    bad = rewritten(good, {"param/1.npy": bomb}, compress=True)
    assert bad.stat().st_size < 1_000_000
    with pytest.raises(ModelFileError, match="does not match its shape"):
        load_model(bad)


def test_a_network_that_does_not_answer_ten_digits(good: Path) -> None:
    spec = {**header_of(good)["spec"], "layers": [784, 9]}
    with pytest.raises(ModelFileError, match="needs 10, one per digit"):
        load_model(with_header(good, spec=spec))
