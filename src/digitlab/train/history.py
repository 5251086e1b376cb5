"""What happened in each epoch of a training run, and writing it out as JSON or CSV."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class EpochRecord:
    """Metrics after one epoch. Accuracies are fractions.  ``seconds`` is the training
    pass; ``evaluation_seconds`` the measuring that follows it (None in histories
    written before it was recorded)."""

    epoch: int
    eta: float
    train_cost: float
    train_accuracy: float
    validation_cost: float
    validation_accuracy: float
    test_accuracy: float | None
    seconds: float
    evaluation_seconds: float | None = None


class History(list[EpochRecord]):
    """The epochs so far, in order."""

    @property
    def validation_accuracies(self) -> list[float]:
        return [record.validation_accuracy for record in self]

    @property
    def best(self) -> EpochRecord | None:
        """The epoch with the highest validation accuracy (the earliest, on ties)."""
        return max(self, key=lambda r: r.validation_accuracy, default=None)

    def epochs_since_best(self) -> int:
        best = self.best
        return 0 if best is None else self[-1].epoch - best.epoch

    def to_dicts(self) -> list[dict]:
        return [asdict(record) for record in self]

    @classmethod
    def from_dicts(cls, rows: list[dict]) -> History:
        return cls(EpochRecord(**row) for row in rows)

    def write(self, path: Path) -> None:
        """Write to ``path`` as CSV if it ends in ``.csv``, else as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".csv":
            with open(path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(EpochRecord)])
                writer.writeheader()
                writer.writerows(self.to_dicts())
        else:
            path.write_text(json.dumps(self.to_dicts(), indent=2) + "\n")
