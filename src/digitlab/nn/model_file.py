"""Model files: the spec as JSON plus the parameter arrays, in one ``.npz``.

No pickle anywhere: ``np.load(..., allow_pickle=False)`` reads only plain arrays, so
opening a model file from a stranger cannot run code.  The JSON header carries a
format version, the spec (so the network can be rebuilt exactly) and whatever metrics
the trainer recorded.  Checkpoints use the same container with extra arrays.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.atomic import atomic_write
from digitlab.errors import ModelFileError, SpecError
from digitlab.nn.build import build_network
from digitlab.nn.network import Network
from digitlab.spec import Spec, check_digit_network, make_spec

FORMAT = "digitlab-model"
FORMAT_VERSION = 1
HEADER_KEY = "__digitlab__"
#: Limits on what a model file or checkpoint may hold, checked before anything is
#: decompressed: cnn-best's checkpoint holds 3.5 million values (14 MB).
MAX_ELEMENTS = 50_000_000
MAX_TOTAL_BYTES = 500_000_000


@dataclass(frozen=True)
class Calibration:
    """How to turn the network's outputs into honest probabilities, fitted on validation
    digits (see :mod:`digitlab.evaluation.calibration`): the temperature that divides the
    logits, the calibrated top probability below which an answer is "unsure", and the
    validation NLL and ECE before and after."""

    temperature: float
    unsure_below: float
    validation_nll: tuple[float, float]
    validation_ece: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "unsure_below": self.unsure_below,
            "validation_nll": list(self.validation_nll),
            "validation_ece": list(self.validation_ece),
        }

    @classmethod
    def from_dict(cls, record: Any, path: Path) -> Calibration:
        """Read a stored calibration, refusing anything but finite numbers in range."""
        try:
            calibration = cls(
                float(record["temperature"]),
                float(record["unsure_below"]),
                tuple(float(v) for v in record["validation_nll"][:2]),
                tuple(float(v) for v in record["validation_ece"][:2]),
            )
        except (TypeError, KeyError, ValueError, IndexError):
            raise ModelFileError(f"{path} has a damaged calibration record") from None
        numbers = [calibration.temperature, calibration.unsure_below]
        if not (np.isfinite(numbers).all() and calibration.temperature > 0):
            raise ModelFileError(f"{path} has a damaged calibration record")
        if len(calibration.validation_nll) != 2 or len(calibration.validation_ece) != 2:
            raise ModelFileError(f"{path} has a damaged calibration record")
        return calibration


@dataclass
class Model:
    """A trained network together with the spec that built it, its recorded metrics and,
    once calibrated, how to read its outputs as honest probabilities."""

    spec: Spec
    network: Network
    metrics: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration | None = None


def save_model(path: Path, model: Model) -> None:
    """Write ``model`` to ``path`` atomically."""
    arrays = {f"param/{i}": a for i, a in enumerate(model.network.arrays())}
    header = {"spec": model.spec.model_dump(), "metrics": model.metrics}
    if model.calibration is not None:
        header["calibration"] = model.calibration.to_dict()
    write_container(path, FORMAT, header, arrays)


def load_model(path: Path) -> Model:
    """Read a model file, rebuilding its network; a clear error if it is not one."""
    header, arrays = read_container(path, FORMAT)
    spec = _spec_from(header, path)
    try:
        check_digit_network(spec)
        network = build_network(spec, np.random.default_rng(0))
    except SpecError as exc:
        raise ModelFileError(f"{path} has no valid spec ({exc})") from None
    try:
        params = numbered(arrays, "param")
        if any(array.dtype.kind != "f" for array in params):
            raise ValueError("its weights are not floating-point numbers")
        network.load_arrays(params)
    except ValueError as exc:
        raise ModelFileError(f"{path} is damaged: {exc}") from None
    if not all(np.isfinite(array).all() for array in network.arrays()):
        raise ModelFileError(f"{path} is damaged: its weights hold NaN or infinite values")
    stored = header.get("calibration")
    calibration = None if stored is None else Calibration.from_dict(stored, path)
    return Model(spec, network, header.get("metrics", {}), calibration)


def _spec_from(header: dict[str, Any], path: Path) -> Spec:
    try:
        return make_spec(header["spec"], source=str(path))
    except (KeyError, SpecError) as exc:
        raise ModelFileError(f"{path} has no valid spec ({exc})") from None


def numbered(arrays: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """The arrays ``PREFIX/0``, ``PREFIX/1``, ... in order (a gap is damage)."""
    count = sum(1 for key in arrays if key.startswith(f"{prefix}/"))
    missing = [i for i in range(count) if f"{prefix}/{i}" not in arrays]
    if missing:
        raise ValueError(f"array {prefix}/{missing[0]} is missing")
    return [arrays[f"{prefix}/{i}"] for i in range(count)]


def write_container(
    path: Path, kind: str, header: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    """Save a JSON header and named arrays as one ``.npz``, replacing ``path`` atomically."""
    full_header = {"format": kind, "format_version": FORMAT_VERSION, **header}
    atomic_write(
        path,
        lambda handle: np.savez(
            handle, **{HEADER_KEY: np.array(json.dumps(full_header))}, **arrays
        ),
    )


def read_container(path: Path, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a container written by :func:`write_container`, checking its kind and version.

    The file is a stranger's until proven otherwise: each array's shape, type and size
    are read from its own header and checked (:func:`_check_members`) before the array
    is decompressed, so a zip bomb or an array claiming 10^12 elements is refused before
    it takes memory.
    """
    path = Path(path)
    not_ours = f"{path} is not a digitlab {kind.removeprefix('digitlab-')} file"
    if path.exists() and not path.is_file() and not path.is_dir():
        raise ModelFileError(f"{path} is not a regular file (a pipe or a device?)")
    try:
        with open(path, "rb") as handle:
            with zipfile.ZipFile(handle) as archive:
                names = _check_members(archive, path, not_ours)
            handle.seek(0)
            with np.load(handle, allow_pickle=False) as loaded:
                arrays = {name: loaded[name] for name in names}
        header = json.loads(str(arrays.pop(HEADER_KEY)))
    except FileNotFoundError:
        raise ModelFileError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a directory, not a model file") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, RecursionError, KeyError):
        raise ModelFileError(not_ours) from None
    if not isinstance(header, dict) or header.get("format") != kind:
        raise ModelFileError(not_ours)
    version = header.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ModelFileError(f"{path} has a damaged header (format version {version!r})")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path} was written by a newer digitlab (format {version}); upgrade")
    if not isinstance(header.get("metrics", {}), dict):
        raise ModelFileError(f"{path} has a damaged header (metrics are not a record)")
    return header, arrays


def _check_members(archive: zipfile.ZipFile, path: Path, not_ours: str) -> list[str]:
    """The array names in ``archive``, after checking every member from its headers
    alone: a .npy of plain numbers (the header: one string), with no more than
    :data:`MAX_ELEMENTS` values, whose uncompressed size (as the zip declares it) is
    exactly what its shape needs, and :data:`MAX_TOTAL_BYTES` at most in all."""
    names, total = [], 0
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise ModelFileError(not_ours)
        name = info.filename.removesuffix(".npy")
        with archive.open(info) as member:
            major, _ = np.lib.format.read_magic(member)
            read_header = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(member)
            header_bytes = member.tell()
        elements = int(np.prod(shape, dtype=object))
        kinds = "U" if name == HEADER_KEY else "fiu"  # optimiser step counts are integers
        if dtype.kind not in kinds or dtype.fields is not None or elements > MAX_ELEMENTS:
            raise ModelFileError(f"{path} is damaged: array {name} is {dtype} of shape {shape}")
        total += info.file_size
        if info.file_size != header_bytes + elements * dtype.itemsize or total > MAX_TOTAL_BYTES:
            raise ModelFileError(f"{path} is damaged: array {name} does not match its shape")
        names.append(name)
    if HEADER_KEY not in names:
        raise ModelFileError(not_ours)
    return names
