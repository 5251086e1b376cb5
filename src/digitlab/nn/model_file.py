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


@dataclass
class Model:
    """A trained network together with the spec that built it and its recorded metrics."""

    spec: Spec
    network: Network
    metrics: dict[str, Any] = field(default_factory=dict)


def save_model(path: Path, model: Model) -> None:
    """Write ``model`` to ``path`` atomically."""
    arrays = {f"param/{i}": a for i, a in enumerate(model.network.arrays())}
    write_container(
        path, FORMAT, {"spec": model.spec.model_dump(), "metrics": model.metrics}, arrays
    )


def load_model(path: Path) -> Model:
    """Read a model file, rebuilding its network; a clear error if it is not one."""
    header, arrays = read_container(path, FORMAT)
    spec = _spec_from(header, path)
    network = build_network(spec, np.random.default_rng(0))
    try:
        network.load_arrays(_numbered(arrays, "param"))
    except ValueError as exc:
        raise ModelFileError(f"{path} is damaged: {exc}") from None
    return Model(spec, network, header.get("metrics", {}))


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
