"""How well models hold up outside MNIST's own test set.

:func:`distorted_test_sets` turns the test images into one set per condition of
:mod:`digitlab.evaluation.conditions` (once: they are shared by every model), and
:func:`robustness` scores each model -- or ensemble -- on each set.  A model's summary
is its mean accuracy over the distorted conditions (the clean test set is shown but not
averaged in), so one number says how much of its test accuracy it keeps in the world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitlab.data.mnist import Split
from digitlab.evaluation.conditions import CONDITIONS, Condition, distort
from digitlab.evaluation.probabilities import ensemble_probabilities
from digitlab.nn.model_file import Model


@dataclass(frozen=True)
class RobustnessRow:
    """One model's accuracy under each condition, by condition name."""

    model: str
    accuracy: dict[str, float]

    @property
    def mean(self) -> float:
        """The mean accuracy over every condition but the clean test set."""
        return float(np.mean([v for name, v in self.accuracy.items() if name != "clean"]))


def distorted_test_sets(
    test: Split, conditions: list[Condition] = CONDITIONS, seed: int = 0
) -> dict[str, np.ndarray]:
    """The network inputs of every condition, by name, for the images of ``test``."""
    return {condition.name: distort(condition, test.images, seed) for condition in conditions}


def robustness(
    models: dict[str, list[Model]], sets: dict[str, np.ndarray], labels: np.ndarray
) -> list[RobustnessRow]:
    """Each named model's (or ensemble's) accuracy on each distorted set."""
    return [
        RobustnessRow(
            name,
            {
                condition: float(
                    (ensemble_probabilities(members, images).argmax(axis=1) == labels).mean()
                )
                for condition, images in sets.items()
            },
        )
        for name, members in models.items()
    ]
