"""A finished (or running) study's trials as plain rows, the form every report uses."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

STATES = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


@dataclass
class TrialRow:
    number: int
    params: dict[str, Any]
    state: str
    value: float | None  # mean best validation accuracy over the repeats
    runs: list[dict[str, Any]] = field(default_factory=list)
    spec: dict[str, Any] | None = None

    @property
    def accuracies(self) -> list[float]:
        return [
            r["best_validation_accuracy"]
            for r in self.runs
            if r["best_validation_accuracy"] is not None
        ]

    @property
    def test_accuracy(self) -> float | None:
        values = [r["test_accuracy"] for r in self.runs if r["test_accuracy"] is not None]
        return statistics.fmean(values) if values else None

    @property
    def best_epoch(self) -> float | None:
        epochs = [r["best_epoch"] for r in self.runs if r["best_epoch"] is not None]
        return statistics.median(epochs) if epochs else None

    @property
    def seconds(self) -> float:
        return sum(r["seconds"] for r in self.runs)

    @property
    def diverged(self) -> int:
        return sum(bool(r["diverged"]) for r in self.runs)


def trial_rows(study: optuna.Study) -> list[TrialRow]:
    """Every trial that was started, best first (unfinished ones last).

    A configuration retried after its worker died appears once: as the retry."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in RetryHeartbeatStaleTrialCallback.retry_history(t)}
    rows = []
    for t in trials:
        if t.state == TrialState.FAIL and t.number in retried:
            continue
        runs = t.user_attrs.get("runs", [])
        state = STATES[t.state]
        if t.state == TrialState.COMPLETE and any(r["diverged"] for r in runs):
            state = "diverged"
        rows.append(
            TrialRow(t.number, dict(t.params), state, t.value, runs, t.user_attrs.get("spec"))
        )
    return sorted(rows, key=lambda r: (r.value is None, -(r.value or 0), r.number))
