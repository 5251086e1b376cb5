"""Choosing an ensemble's members, and how many, on the validation set.

Averaging networks helps where their mistakes differ: two networks that err on the same
images add nothing to each other, and a weak member can pull a strong pair down.  So
which of several trained models to average, and how many, is a choice -- and, like every
choice here, it is made on the validation images, never on the test set.

The rule is greedy forward selection (Caruana et al., 2004, without repeats): start from
the candidate with the best validation accuracy; then, one at a time, add the candidate
whose addition gives the averaged probabilities the best validation accuracy, and stop
when no addition improves it.  Accuracy over 10,000 images moves in steps of 0.01
points, so many additions tie; the validation NLL (the mean -log probability of the
true digit) breaks ties, and an addition that keeps the accuracy and lowers the NLL is
taken.  The steps are kept, so a reader sees what each member added.

Every trial ensemble is scored as ``digitlab evaluate`` would score it: with calibrated
probabilities only while every member in it is calibrated.  So taking an uncalibrated
model switches the NLL to the networks' own probabilities, and the steps say which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from digitlab.data.mnist import Split
from digitlab.evaluation.calibration import probabilities_nll
from digitlab.evaluation.scoring import Vote, counted
from digitlab.nn.model_file import Model


@dataclass(frozen=True)
class SelectionStep:
    """One member taken: its index among the candidates, and the validation accuracy
    and NLL of the ensemble with it (every member taken so far, averaged), with whether
    those were the members' calibrated probabilities (see
    :func:`~digitlab.evaluation.scoring.counted`)."""

    member: int
    accuracy: float
    nll: float
    calibrated: bool


@dataclass(frozen=True)
class EnsembleChoice:
    """The members chosen, in the order they were taken (``steps``), and each candidate's
    own validation accuracy (``alone``), for comparison."""

    steps: list[SelectionStep]
    alone: list[float]

    @property
    def members(self) -> list[int]:
        return [step.member for step in self.steps]

    def step_of(self, candidate: int) -> int | None:
        """At which step (from 1) ``candidate`` was taken; None if it was not."""
        return next((n for n, s in enumerate(self.steps, 1) if s.member == candidate), None)


def scores(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Accuracy and NLL of (averaged) probabilities; a NaN NLL (a diverged member)
    counts as infinitely bad, so it can never look like an improvement."""
    accuracy = float((probabilities.argmax(axis=1) == labels).mean())
    nll = probabilities_nll(probabilities, labels)
    return accuracy, math.inf if math.isnan(nll) else nll


def choose_from(votes: list[Vote], labels: np.ndarray) -> EnsembleChoice:
    """Greedy forward selection over the candidates' votes on the validation images.
    Every trial ensemble is scored as :func:`~digitlab.evaluation.scoring.evaluate` would
    score it (its members' probabilities counted by the same rule, averaged in the
    order taken), so the figures of the steps are the ones ``evaluate`` reports."""
    if not votes:
        raise ValueError("choosing an ensemble needs at least one candidate")
    alone = [scores(counted([vote])[0], labels)[0] for vote in votes]
    steps: list[SelectionStep] = []
    remaining = list(range(len(votes)))
    while remaining:
        trials = []
        for index in remaining:
            members = [votes[step.member] for step in steps] + [votes[index]]
            accuracy, nll = scores(np.mean(counted(members), axis=0), labels)
            trials.append((accuracy, -nll, -index))  # on a full tie, the earlier candidate
        accuracy, negative_nll, negative_index = max(trials)
        nll, index = -negative_nll, -negative_index
        if steps and (accuracy, -nll) <= (steps[-1].accuracy, -steps[-1].nll):
            break  # no addition improves the accuracy, or at the same accuracy the NLL
        taken = [votes[step.member] for step in steps] + [votes[index]]
        calibrated = all(vote.answers is not None for vote in taken)
        steps.append(SelectionStep(index, accuracy, nll, calibrated))
        remaining.remove(index)
    return EnsembleChoice(steps, alone)


def choose_members(models: list[Model], validation: Split) -> EnsembleChoice:
    """Which of ``models`` to average, chosen on ``validation`` (see the module's rule)."""
    return choose_from([Vote.of(model, validation.images) for model in models], validation.labels)
