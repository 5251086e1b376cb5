"""Checkpoints: everything a trainer needs to continue a run bit-for-bit.

Written after every epoch, atomically (a temporary file renamed over the old one), so
a run killed at any moment leaves either the previous checkpoint or the new one --
never half of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from digitlab.errors import ModelFileError
from digitlab.nn.model_file import (
    checked_line,
    line_record,
    numbered,
    read_container,
    write_container,
)
from digitlab.spec import make_spec
from digitlab.train.history import History

if TYPE_CHECKING:
    from digitlab.spec import Spec

FORMAT = "digitlab-checkpoint"


@dataclass
class Checkpoint:
    """A run's state after an epoch.  ``average_state`` is the moving average of the
    weights (:class:`~digitlab.nn.averaging.WeightAverage`), empty when the spec keeps
    none."""

    spec: Spec
    params: list[np.ndarray]
    best_params: list[np.ndarray]
    optimizer_state: dict[str, np.ndarray]
    rng_state: dict[str, Any]
    history: History
    average_state: dict[str, np.ndarray]
    started_from: str | None = None  # as the model it will give records it


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically: what :func:`read_checkpoint` reads."""
    arrays = {f"param/{i}": a for i, a in enumerate(checkpoint.params)}
    arrays.update({f"best/{i}": a for i, a in enumerate(checkpoint.best_params)})
    arrays.update({f"optimizer/{k}": a for k, a in checkpoint.optimizer_state.items()})
    arrays.update({f"average/{k}": a for k, a in checkpoint.average_state.items()})
    header = {
        "spec": checkpoint.spec.model_dump(),
        "rng_state": checkpoint.rng_state,
        "history": checkpoint.history.to_dicts(),
    }
    if checkpoint.started_from is not None:
        header["started_from"] = checked_line(checkpoint.started_from, "started_from")
    write_container(path, FORMAT, header, arrays)


def read_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint at ``path`` (a ModelFileError if it is not one, or is damaged)."""
    header, arrays = read_container(path, FORMAT)
    try:
        return Checkpoint(
            spec=make_spec(header["spec"], source=str(path)),
            params=numbered(arrays, "param"),
            best_params=numbered(arrays, "best"),
            optimizer_state=prefixed(arrays, "optimizer/"),
            rng_state=header["rng_state"],
            history=History.from_dicts(header["history"]),
            average_state=prefixed(arrays, "average/"),
            started_from=line_record(header, "started_from", path),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise damaged(path, exc) from None


def prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose names start with ``prefix``, by the rest of their names."""
    return {k.removeprefix(prefix): a for k, a in arrays.items() if k.startswith(prefix)}


def damaged(path: Path, cause: Exception) -> ModelFileError:
    """The error for a checkpoint that cannot be resumed; reading it changed nothing."""
    what = f"no {cause}" if isinstance(cause, KeyError) else str(cause)
    return ModelFileError(f"{path} is a damaged checkpoint ({what}); it was left as it is")
