"""What happened in each epoch of a training run, and writing it out as JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitlab.atomic import atomic_write
from digitlab.train.diagnostics import Diagnostics

if TYPE_CHECKING:
    import pandas


@dataclass(frozen=True)
class EpochRecord:
    """Metrics after one epoch, numbered from 1 (as the command line, the reports and
    ``best_epoch`` count them).  Accuracies are fractions; costs are the mean cost per
    image (the training cost with the L1/L2 penalty, the validation cost without, as in
    the book's plots).  ``seconds`` is the training pass; ``evaluation_seconds`` the
    measuring that follows it (None in histories written before it was recorded).
    ``diagnostics`` are None when the trainer was told not to measure them (see
    :mod:`digitlab.train.diagnostics`).

    When the run keeps a moving average of the weights, the accuracies above are the
    average's, and ``raw_validation_accuracy`` and ``raw_test_accuracy`` are those of the
    weights the optimiser moves.  The average does not feed back into training (unless a
    plateau schedule or early stopping reads its accuracies; the trainer then records no
    raw accuracies), so these are exactly what the same run without an average would
    have measured: the average's effect, seen without any seed-to-seed noise.  Both are
    None when there is no average, and in histories written before they were recorded;
    ``raw_test_accuracy`` also when the test set is not measured."""

    epoch: int
    eta: float
    train_cost: float
    train_accuracy: float
    validation_cost: float
    validation_accuracy: float
    test_accuracy: float | None
    seconds: float
    evaluation_seconds: float | None = None
    diagnostics: Diagnostics | None = None
    raw_validation_accuracy: float | None = None
    raw_test_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        row = asdict(replace(self, diagnostics=None))
        row["diagnostics"] = self.diagnostics.to_dict() if self.diagnostics else None
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> EpochRecord:
        diagnostics = row.get("diagnostics")
        return cls(
            **{**row, "diagnostics": Diagnostics.from_dict(diagnostics) if diagnostics else None}
        )


@dataclass(frozen=True)
class AveragingEffect:
    """What a run's moving average of the weights bought.  ``averaged`` is the epoch the
    run kept (best validation accuracy of the average); ``raw_epoch`` the epoch the same
    run without the average would have kept (best validation accuracy of the raw weights),
    with the raw weights' accuracies there.  Each side is measured at its own best epoch,
    as each would have been reported."""

    averaged: EpochRecord
    raw_epoch: int
    raw_validation_accuracy: float
    raw_test_accuracy: float | None

    @property
    def validation_gain(self) -> float:
        """The average's best validation accuracy minus the raw weights' best."""
        return self.averaged.validation_accuracy - self.raw_validation_accuracy

    @property
    def test_gain(self) -> float | None:
        """Test accuracy at the average's best epoch minus the raw weights' at theirs
        (None when the run did not measure the test set)."""
        if self.averaged.test_accuracy is None or self.raw_test_accuracy is None:
            return None
        return self.averaged.test_accuracy - self.raw_test_accuracy


#: Keras' names for the per-epoch series (:attr:`History.history`) and our fields they
#: come from.  Keras' ``loss`` includes the regularisation penalty, as our training cost
#: does; ``val_loss`` does not, as our validation cost does not.
KERAS_NAMES = {
    "accuracy": "train_accuracy",
    "val_accuracy": "validation_accuracy",
    "loss": "train_cost",
    "val_loss": "validation_cost",
    "test_accuracy": "test_accuracy",
    "eta": "eta",
}


class History(list[EpochRecord]):
    """The epochs so far, in order: one :class:`EpochRecord` each.

    Also readable the way Keras users expect: :attr:`history` is a dict of per-epoch
    lists under Keras' names, and :meth:`to_pandas` one DataFrame row per epoch.
    """

    @property
    def validation_accuracies(self) -> list[float]:
        return [record.validation_accuracy for record in self]

    @property
    def best(self) -> EpochRecord | None:
        """The epoch with the highest validation accuracy (the earliest, on ties)."""
        return max(self, key=lambda r: r.validation_accuracy, default=None)

    def averaging_effect(self) -> AveragingEffect | None:
        """The moving average's effect on this run (see :class:`AveragingEffect`).  None
        unless every epoch recorded its raw weights' accuracies: a run without an average,
        one whose schedule or stopping read the average's accuracies, or one resumed from
        before they were recorded (its best raw epoch would be chosen from fewer epochs
        than the average's)."""
        if not self or any(record.raw_validation_accuracy is None for record in self):
            return None
        raw = max(self, key=lambda r: r.raw_validation_accuracy)  # the earliest, on ties
        return AveragingEffect(
            self.best, raw.epoch, raw.raw_validation_accuracy, raw.raw_test_accuracy
        )

    def epochs_since_best(self) -> int:
        best = self.best
        return 0 if best is None else self[-1].epoch - best.epoch

    def column(self, name: str) -> list[Any]:
        """One field over the epochs, e.g. ``history.column("validation_cost")``."""
        return [getattr(record, name) for record in self]

    @property
    def history(self) -> dict[str, list[float | None]]:
        """Per-epoch series under Keras' names, as ``keras.callbacks.History.history``
        has them: ``accuracy`` and ``loss`` (training accuracy and cost), ``val_accuracy``
        and ``val_loss`` (validation), ``test_accuracy`` (None where not measured) and
        ``eta`` (the learning rate); :data:`KERAS_NAMES` maps each to our field."""
        return {keras: self.column(ours) for keras, ours in KERAS_NAMES.items()}

    def to_pandas(self) -> pandas.DataFrame:
        """One row per epoch, indexed by epoch, with every field (the diagnostics spread
        over columns of their own, as in the CSV :meth:`write` makes).  Needs pandas."""
        try:
            import pandas
        except ImportError:
            raise ImportError("History.to_pandas() needs pandas: pip install pandas") from None
        return pandas.DataFrame(self.csv_rows(), columns=self.csv_columns()).set_index("epoch")

    def to_dicts(self) -> list[dict[str, Any]]:
        return [record.to_dict() for record in self]

    @classmethod
    def from_dicts(cls, rows: list[dict[str, Any]]) -> History:
        """A history read back from :meth:`to_dicts`.  Histories written before epochs
        were counted from 1 start at epoch 0; they are renumbered as they are read."""
        history = cls(EpochRecord.from_dict(row) for row in rows)
        if history and history[0].epoch == 0:
            return cls(replace(record, epoch=record.epoch + 1) for record in history)
        return history

    def csv_rows(self) -> list[dict[str, Any]]:
        """One flat row per epoch: the diagnostics spread over columns of their own."""
        rows = []
        for record in self:
            row = record.to_dict()
            del row["diagnostics"]
            if record.diagnostics:
                row.update(record.diagnostics.flat())
            rows.append(row)
        return rows

    def csv_columns(self) -> list[str]:
        """The columns of :meth:`csv_rows`: the record's fields, then every diagnostic
        any epoch has (a resumed run may have epochs with and without diagnostics)."""
        names = [f.name for f in fields(EpochRecord) if f.name != "diagnostics"]
        for row in self.csv_rows():
            names += [key for key in row if key not in names]
        return names

    def write(self, path: Path) -> None:
        """Write to ``path`` (atomically) as CSV if it ends in ``.csv``, else as JSON."""
        if Path(path).suffix.lower() == ".csv":
            text = io.StringIO(newline="")
            writer = csv.DictWriter(text, fieldnames=self.csv_columns(), restval="")
            writer.writeheader()
            writer.writerows(self.csv_rows())
            content = text.getvalue()
        else:
            content = json.dumps(self.to_dicts(), indent=2) + "\n"
        atomic_write(Path(path), lambda handle: handle.write(content.encode()))
