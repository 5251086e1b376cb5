"""Learning-rate schedules.

Each schedule is a pure function of the epoch number and the validation accuracies so
far, so a resumed run recomputes exactly the learning rate it would have had.  It
returns ``None`` when the schedule says training is over (the book's plateau rule
stops once eta has been halved down to 1/128 of its starting value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from digitlab.spec import Spec


def learning_rate(spec: Spec, epoch: int, validation_accuracies: Sequence[float]) -> float | None:
    """The learning rate for ``epoch`` (0-based), or ``None`` to stop training."""
    eta = spec.eta
    if spec.schedule == "constant":
        return eta
    if spec.schedule == "step":
        return eta * spec.gamma ** (epoch // spec.step_size)
    if spec.schedule == "cosine":
        return eta * 0.5 * (1 + math.cos(math.pi * epoch / spec.epochs))
    if spec.schedule == "warmup-cosine":
        return _warmup_cosine(spec, epoch)
    if spec.schedule == "plateau":
        return _plateau(spec, validation_accuracies)
    raise ValueError(f"unknown schedule {spec.schedule!r}")


def _warmup_cosine(spec: Spec, epoch: int) -> float:
    """A linear rise over the first ``warmup_epochs`` epochs to ``eta``, reached in epoch
    ``warmup_epochs`` (counted from 0), then half a cosine down to ``eta * min_eta_ratio``
    in the last epoch.  Small steps while the weights are still random keep Adam's early,
    poorly estimated moments from throwing them far; the cosine's long flat end lets the
    weights settle.  A warm-up as long as the run or longer is cut to end in its last
    epoch, so a run shortened for a quick look still reaches ``eta``."""
    peak, floor = spec.eta, spec.eta * spec.min_eta_ratio
    warmup = min(spec.warmup_epochs, spec.epochs - 1)
    if epoch < warmup:
        return peak * (epoch + 1) / (warmup + 1)
    progress = min((epoch - warmup) / max(spec.epochs - 1 - warmup, 1), 1.0)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _plateau(spec: Spec, validation_accuracies: Sequence[float]) -> float | None:
    """The book's rule: cut eta by ``gamma`` after ``patience`` epochs with no improvement."""
    eta, best, waited = spec.eta, -math.inf, 0
    for accuracy in validation_accuracies:
        if accuracy > best:
            best, waited = accuracy, 0
            continue
        waited += 1
        if waited >= spec.patience:
            eta *= spec.gamma
            waited = 0
    return None if eta <= spec.eta * spec.min_eta_ratio * (1 + 1e-9) else eta
