"""Training that survives interruption: a run whose result is a model file on disk.

Long runs (an ensemble's members, the chapter-6 benchmark) are restarted rather than
babysat: calling :func:`train_to_file` again skips a model that is already there and
resumes one that was interrupted from its checkpoint, bit-identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from digitlab.data import Dataset
from digitlab.errors import ModelFileError, SpecError
from digitlab.nn.model_file import load_model, save_model
from digitlab.spec import Spec
from digitlab.train.callbacks import Callback
from digitlab.train.checkpoint import read_checkpoint
from digitlab.train.trainer import Trainer

CHECKPOINT_SUFFIX = ".checkpoint.npz"
HISTORY_SUFFIX = ".history.json"


def checkpoint_path_for(model_path: Path) -> Path:
    """Where the run that writes ``model_path`` keeps its checkpoint: ``NAME.checkpoint.npz``."""
    return model_path.with_name(model_path.name.removesuffix(".npz") + CHECKPOINT_SUFFIX)


def history_path_for(model_path: Path) -> Path:
    """Where :func:`train_to_file` writes the per-epoch history: ``NAME.history.json``."""
    return model_path.with_name(model_path.name.removesuffix(".npz") + HISTORY_SUFFIX)


def has_trained(spec: Spec, model_path: Path) -> bool:
    """Whether ``model_path`` holds ``spec``'s trained model (False: no file there yet).

    A model of another spec there is an error: reporting or keeping it as this spec's
    result would be wrong, and overwriting it would lose someone's work."""
    if not model_path.exists():
        return False
    if load_model(model_path).spec != spec:
        raise SpecError(
            f"{model_path} holds a model trained with another spec; "
            "choose another folder or delete it"
        )
    return True


def start_or_resume(
    spec: Spec, data: Dataset, checkpoint: Path, callbacks: Sequence[Callback] = ()
) -> Trainer:
    """A trainer for ``spec`` that checkpoints to ``checkpoint``: a new run, or -- when
    an interrupted run of the same spec left its checkpoint there -- that run, resumed
    bit-exactly (so running the same command again continues it).  Anything else at
    ``checkpoint`` is someone's work and is never overwritten: a run of another spec, or
    a file that is no checkpoint, is a one-line error."""
    if not checkpoint.exists():
        return Trainer(spec, data, callbacks, checkpoint_path=checkpoint)
    try:
        found = read_checkpoint(checkpoint)
    except ModelFileError as exc:
        raise SpecError(
            f"{checkpoint} is where this run keeps its checkpoint, and it cannot be resumed "
            f"({exc}); move it out of the way"
        ) from None
    if found.spec != spec:
        raise SpecError(
            f"{checkpoint} is from an interrupted run with a different spec; "
            f"resume it with `digitlab train --resume {checkpoint}`, or delete it to start afresh"
        )
    return Trainer.resume(checkpoint, data, callbacks)


def train_to_file(
    spec: Spec, data: Dataset, model_path: Path, callbacks: Sequence[Callback] = ()
) -> bool:
    """Make sure ``model_path`` holds ``spec`` trained on ``data``; True if it trained now.

    A model of the same spec already at ``model_path`` is kept as it is (False); one of
    another spec is an error, never overwritten.  Otherwise training
    starts, or resumes from the checkpoint an interrupted call left, and the model and
    its history (``NAME.history.json``) are written; the checkpoint is then removed.
    """
    if has_trained(spec, model_path):
        return False
    model_path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = checkpoint_path_for(model_path)
    result = start_or_resume(spec, data, checkpoint, callbacks).run()
    result.history.write(history_path_for(model_path))
    save_model(model_path, result.model)
    checkpoint.unlink(missing_ok=True)
    return True
