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
from digitlab.spec import Spec, make_spec

FORMAT = "digitlab-model"
FORMAT_VERSION = 1
HEADER_KEY = "__digitlab__"


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
    network = build_network(spec, np.random.default_rng(0))
    try:
        network.load_arrays(_numbered(arrays, "param"))
    except ValueError as exc:
        raise ModelFileError(f"{path} is damaged: {exc}") from None
    stored = header.get("calibration")
    calibration = None if stored is None else Calibration.from_dict(stored, path)
    return Model(spec, network, header.get("metrics", {}), calibration)


def _spec_from(header: dict[str, Any], path: Path) -> Spec:
    try:
        return make_spec(header["spec"], source=str(path))
    except (KeyError, SpecError) as exc:
        raise ModelFileError(f"{path} has no valid spec ({exc})") from None


def _numbered(arrays: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    count = sum(1 for key in arrays if key.startswith(f"{prefix}/"))
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
    """Read a container written by :func:`write_container`, checking its kind and version."""
    path = Path(path)
    not_ours = f"{path} is not a digitlab {kind.removeprefix('digitlab-')} file"
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ModelFileError(not_ours)
        with loaded as archive:
            if HEADER_KEY not in archive.files:
                raise ModelFileError(not_ours)
            arrays = {key: archive[key] for key in archive.files}
        header = json.loads(str(arrays.pop(HEADER_KEY)))
    except FileNotFoundError:
        raise ModelFileError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a directory, not a model file") from None
    except (ValueError, OSError, zipfile.BadZipFile, json.JSONDecodeError, EOFError):
        raise ModelFileError(not_ours) from None
    if not isinstance(header, dict) or header.get("format") != kind:
        raise ModelFileError(not_ours)
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written by a newer digitlab (format {header['format_version']}); upgrade"
        )
    return header, arrays
