"""Training an ensemble: every member network in one folder, each resumable on its own.

An ensemble (:class:`digitlab.presets.Ensemble`) is a list of (preset, seed) members.
Each is trained by :func:`~digitlab.train.to_file.train_to_file` into
``FOLDER/PRESET-seedN.npz``, so a run that stops part-way continues where it stopped,
and members already trained are kept.  Scoring the trained ensemble is
:func:`digitlab.evaluation.scoring.evaluate` given all the members' models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from digitlab.data.mnist import Dataset
from digitlab.errors import SpecError
from digitlab.presets import Ensemble, resolve_spec, seeded_name
from digitlab.reporting import Report, silent
from digitlab.train.callbacks import Callback
from digitlab.train.to_file import train_to_file


def member_paths(ensemble: Ensemble, folder: Path) -> list[Path]:
    """Where each member's model file goes: ``FOLDER/PRESET-seedN.npz``, in order."""
    return [folder / f"{seeded_name(preset, seed)}.npz" for preset, seed in ensemble.members]


def train_ensemble(
    ensemble: Ensemble,
    data: Dataset,
    folder: Path,
    overrides: dict[str, Any] | None = None,
    callbacks: Callable[[str], Sequence[Callback]] = lambda name: (),
    report: Report = silent,
) -> list[Path]:
    """Train (or finish training) every member of ``ensemble`` into ``folder`` and return
    their model files.  ``overrides`` change every member's spec (all but the seed, which
    each member has its own); ``callbacks(name)`` gives the callbacks watching the member
    called ``name``; ``report`` hears which member is next and which were already done."""
    if folder.suffix == ".npz" or folder.is_file():
        raise SpecError(f"{folder} must be a folder for the ensemble's member models, not a file")
    specs = {preset: resolve_spec(preset, None, overrides) for preset in ensemble.presets}
    paths = member_paths(ensemble, folder)
    for number, ((preset, seed), path) in enumerate(zip(ensemble.members, paths, strict=True), 1):
        report(f"member {number} of {len(paths)}: {path}")
        spec = specs[preset].with_overrides(seed=seed)
        if not train_to_file(spec, data, path, callbacks(seeded_name(preset, seed))):
            report("  already trained: kept")
    return paths
