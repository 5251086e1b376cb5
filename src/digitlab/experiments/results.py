"""A finished (or running) study's trials as plain rows, the form every report uses."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from digitlab.experiments.statistics import Estimate, estimate
from digitlab.train.diagnostics import Diagnostics
from digitlab.train.history import History

STATES = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


@dataclass(frozen=True)
class RunSummary:
    """One training run of a trial (one seed): its headline numbers, its curves per epoch
    and the diagnostics measured at initialisation and after every epoch.

    A run that diverged has as its last epoch the one whose cost became NaN/inf."""

    seed: int
    best_validation_accuracy: float | None
    best_epoch: int | None  # counted from 1
    test_accuracy: float | None  # at the best epoch
    seconds: float
    diverged: bool
    train_accuracy: list[float]
    validation_accuracy: list[float]
    train_cost: list[float]
    validation_cost: list[float]
    initial: Diagnostics | None = None
    diagnostics: list[Diagnostics] = field(default_factory=list)

    @classmethod
    def from_history(
        cls,
        seed: int,
        history: History,
        seconds: float,
        diverged: bool,
        initial: Diagnostics | None = None,
    ) -> RunSummary:
        best = history.best
        return cls(
            seed=seed,
            best_validation_accuracy=best.validation_accuracy if best else None,
            best_epoch=best.epoch if best else None,
            test_accuracy=best.test_accuracy if best else None,
            seconds=seconds,
            diverged=diverged,
            train_accuracy=history.column("train_accuracy"),
            validation_accuracy=history.column("validation_accuracy"),
            train_cost=history.column("train_cost"),
            validation_cost=history.column("validation_cost"),
            initial=initial,
            diagnostics=[r.diagnostics for r in history if r.diagnostics is not None],
        )

    def headline(self) -> dict[str, Any]:
        """The run's numbers without its curves, rounded for display."""
        return {
            "seed": self.seed,
            "best_validation_accuracy": self.best_validation_accuracy,
            "best_epoch": self.best_epoch,
            "test_accuracy": self.test_accuracy,
            "seconds": round(self.seconds, 2),
            "diverged": self.diverged,
        }

    def to_dict(self) -> dict[str, Any]:
        row = asdict(replace(self, initial=None, diagnostics=[]))
        row["initial"] = self.initial.to_dict() if self.initial else None
        row["diagnostics"] = [d.to_dict() for d in self.diagnostics]
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> RunSummary:
        initial = row.get("initial")
        return cls(
            **{
                **row,
                "initial": Diagnostics.from_dict(initial) if initial else None,
                "diagnostics": [Diagnostics.from_dict(d) for d in row.get("diagnostics", [])],
            }
        )


#: One per repeat.  The user attribute holds the run's headline numbers, which
#: optuna-dashboard shows as a short column; the system attribute holds the whole
#: RunSummary (curves and diagnostics: kilobytes, too long for a table cell).
RUN_ATTR = "run {}"
RUN_DATA_ATTR = "digitlab:run {}"


@dataclass
class TrialRow:
    number: int
    params: dict[str, Any]
    state: str
    value: float | None  # mean best validation accuracy over the repeats
    runs: list[RunSummary] = field(default_factory=list)
    spec: dict[str, Any] | None = None

    @property
    def accuracies(self) -> list[float]:
        return [
            r.best_validation_accuracy for r in self.runs if r.best_validation_accuracy is not None
        ]

    def by_seed(
        self, measure: Callable[[RunSummary], float | None] | None = None
    ) -> dict[int, float]:
        """``measure`` of each run that has it (by default its best validation accuracy),
        by the run's seed."""
        measure = measure or (lambda run: run.best_validation_accuracy)
        values = {run.seed: measure(run) for run in self.runs}
        return {seed: value for seed, value in values.items() if value is not None}

    @property
    def estimate(self) -> Estimate:
        """Mean validation accuracy over the seeds, with its interval."""
        return estimate(self.accuracies)

    @property
    def test_accuracy(self) -> float | None:
        values = [r.test_accuracy for r in self.runs if r.test_accuracy is not None]
        return statistics.fmean(values) if values else None

    @property
    def best_epoch(self) -> float | None:
        epochs = [r.best_epoch for r in self.runs if r.best_epoch is not None]
        return statistics.median(epochs) if epochs else None

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.runs)

    @property
    def diverged(self) -> int:
        return sum(r.diverged for r in self.runs)


def stored_runs(system_attrs: dict[str, Any]) -> list[RunSummary]:
    """A trial's run summaries, in the order of their repeats."""
    runs = []
    while RUN_DATA_ATTR.format(len(runs)) in system_attrs:
        runs.append(RunSummary.from_dict(system_attrs[RUN_DATA_ATTR.format(len(runs))]))
    return runs


def counted_trials(study: optuna.Study) -> list[tuple[optuna.trial.FrozenTrial, str]]:
    """The trials a report counts, each with its state as the report names it: a
    finished trial with a diverged run is "diverged", and a configuration retried after
    its worker died appears once, as the retry."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in RetryHeartbeatStaleTrialCallback.retry_history(t)}
    counted = []
    for t in trials:
        if t.state == TrialState.FAIL and t.number in retried:
            continue
        diverged = t.state == TrialState.COMPLETE and t.user_attrs.get("diverged_runs")
        counted.append((t, "diverged" if diverged else STATES[t.state]))
    return counted


def trial_rows(study: optuna.Study) -> list[TrialRow]:
    """Every trial that was started, best first (unfinished ones last)."""
    rows = [
        TrialRow(
            t.number,
            dict(t.params),
            state,
            t.value,
            stored_runs(t.system_attrs),
            t.user_attrs.get("spec"),
        )
        for t, state in counted_trials(study)
    ]
    return sorted(rows, key=lambda r: (r.value is None, -(r.value or 0), r.number))
