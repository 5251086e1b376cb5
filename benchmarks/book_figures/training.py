"""How much of each experiment to run, and one training run measured before it starts.

The speeds, weight norms and saturated fractions the experiments report are the
trainer's diagnostics (:mod:`digitlab.train.diagnostics`), taken of the initial weights
here and after every epoch by the trainer.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from digitlab.data import Dataset
from digitlab.experiments.report import train_command
from digitlab.spec import Spec, make_spec
from digitlab.train import History, Trainer
from digitlab.train.diagnostics import Diagnostics


@dataclass(frozen=True)
class Budget:
    """How much of each experiment to run: the book's settings, or a smoke test that
    only shows the code works (its numbers say nothing about the book's)."""

    seeds: int = 3
    overfitting_epochs: int = 400
    initialisation_epochs: int = 30
    initialisation_train_size: int | None = None  # None: all 50,000 images
    speed_epochs: int = 500
    quick: bool = False


BOOK = Budget()
QUICK = Budget(
    seeds=1,
    overfitting_epochs=20,
    initialisation_epochs=2,
    initialisation_train_size=5_000,
    speed_epochs=20,
    quick=True,
)


@dataclass(frozen=True)
class Trained:
    """One training run: its spec, the diagnostics of its initial weights, and its history
    (every epoch's costs, accuracies and diagnostics)."""

    spec: Spec
    start: Diagnostics
    history: History

    @property
    def command(self) -> str:
        return train_command(self.spec.model_dump())


def train(fields: dict[str, Any], data: Dataset, use_test: bool = True) -> Trained:
    """Train the network the spec ``fields`` describes, measuring it before it starts."""
    spec = make_spec(fields)
    print(f"  {train_command(spec.model_dump())}", file=sys.stderr)
    trainer = Trainer(spec, data, use_test=use_test)
    start = trainer.diagnose()
    return Trained(spec, start, trainer.run().history)


def train_seeds(fields: dict[str, Any], data: Dataset, seeds: int, **options: Any) -> list[Trained]:
    """The same network trained at seeds 0 to ``seeds`` - 1: the book reports one run, and
    the spread over seeds tells whether a gap to the book is more than the seed's doing."""
    return [train({**fields, "seed": seed}, data, **options) for seed in range(seeds)]
