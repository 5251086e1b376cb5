"""Tuning a trained model to one person's digits, and measuring honestly what it gained.

A network trained on MNIST reads most people's digits well, but a hand or a camera unlike
MNIST's writers (a slant of its own, shaky photos) costs it accuracy that no amount of
general augmentation buys back.  A few hundred labelled digits of that person's own are
enough to adapt it: training continues from the model's weights, at a tenth of its
learning rate, on those digits mixed with MNIST's (:data:`REHEARSAL` MNIST images per
digit of the person's), so the network keeps what it knew while it learns the new hand.

The person's digits are split three ways, seeded and alike for every digit: a share
held out (``held_out``) to measure the result, a share of the rest (:data:`CHOOSING`)
on which -- beside 2,000 of MNIST's validation digits -- the epoch is chosen and the
calibration refitted, and the rest to train on.  No digit is both trained on and judged
by.  The report gives the accuracy on the held-out digits before and after, with 95 %
intervals and McNemar's exact test on the images exactly one of the two models answered
right (so "better" is claimed only beyond the noise of a few hundred images), and
MNIST's test accuracy before and after, so forgetting shows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import binomtest

from digitlab.data.mnist import Dataset, Split
from digitlab.errors import DataError
from digitlab.nn.model_file import Model, require_file_form, require_model
from digitlab.reporting import Report, silent
from digitlab.spec import SCHEDULE_FIELDS, Spec
from digitlab.train.history import History
from digitlab.train.trainer import Trainer

#: MNIST training images mixed in per digit of the person's (at least MIN_REHEARSAL).
REHEARSAL = 4
MIN_REHEARSAL = 1000
#: MNIST validation digits beside the person's choosing digits when choosing the epoch.
MNIST_VALIDATION = 2000
#: The tuning steps at this share of the learning rate the model was trained at.
ETA_SHARE = 0.1
#: The share of the digits not held out on which the epoch is chosen and calibrated.
CHOOSING = 0.2


@dataclass(frozen=True)
class Accuracy:
    """A share of ``count`` images answered right, with its 95 % (Wilson) interval."""

    right: int
    count: int

    @property
    def value(self) -> float:
        return self.right / self.count

    def interval(self) -> tuple[float, float]:
        found = binomtest(self.right, self.count).proportion_ci(method="wilson")
        return float(found.low), float(found.high)

    def text(self) -> str:
        low, high = self.interval()
        return f"{self.value:.2%} ({low:.1%}–{high:.1%}, {self.count} images)"


@dataclass(frozen=True)
class Change:
    """Accuracy on the same images before and after, and whether they differ: McNemar's
    exact test on the images only one of the two answered right."""

    before: Accuracy
    after: Accuracy
    only_before: int  # right before, wrong after
    only_after: int  # wrong before, right after

    @property
    def p_value(self) -> float:
        changed = self.only_before + self.only_after
        return 1.0 if changed == 0 else float(binomtest(self.only_after, changed).pvalue)

    def verdict(self) -> str:
        if self.p_value >= 0.05:
            return f"not shown to differ (p = {self.p_value:.2f})"
        direction = "better" if self.only_after > self.only_before else "worse"
        return f"{direction} (p = {self.p_value:.2g})"

    def text(self) -> str:
        return f"{self.before.text()} → {self.after.text()}: {self.verdict()}"


@dataclass(frozen=True)
class Tuned:
    """A tuned model and what it gained: on the person's held-out digits (None when
    none were held out) and on MNIST's test set."""

    model: Model
    tuning_digits: int
    choosing_digits: int
    rehearsal_digits: int
    own: Change | None
    mnist: Change
    history: History


def held_out_split(own: Split, share: float, seed: int) -> tuple[Split, Split]:
    """The person's digits as (kept, held out): ``share`` of each digit's images held
    out, chosen by ``seed``; at least one of each digit that has two or more, and never
    a digit's last image."""
    if not 0 <= share < 1:
        raise DataError(f"held_out: a share between 0 and 1, not {share}")
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for digit in np.unique(own.labels):
        indices = rng.permutation(np.flatnonzero(own.labels == digit))
        count = round(share * len(indices))
        if share and len(indices) > 1:
            count = min(max(count, 1), len(indices) - 1)
        elif len(indices) == 1:
            count = 0
        held.extend(indices[:count].tolist())
    out = np.zeros(len(own), dtype=bool)
    out[held] = True
    return (
        Split(own.images[~out], own.labels[~out]),
        Split(own.images[out], own.labels[out]),
    )


def change_on(before: Model, after: Model, split: Split) -> Change:
    """The two models' accuracy on ``split`` and how their answers changed."""
    right_before = before.predict(split.images) == split.labels
    right_after = after.predict(split.images) == split.labels
    return Change(
        Accuracy(int(right_before.sum()), len(split)),
        Accuracy(int(right_after.sum()), len(split)),
        int((right_before & ~right_after).sum()),
        int((right_after & ~right_before).sum()),
    )


def tune(
    model: Model,
    own: Split,
    mnist: Dataset,
    epochs: int = 5,
    held_out: float = 0.25,
    seed: int = 0,
    report: Report = silent,
) -> Tuned:
    """``model`` trained further on ``own`` (a person's labelled digits as a
    :class:`~digitlab.data.mnist.Split` in MNIST form: the ``split`` of what
    :func:`digitlab.data.folders.load_labelled_folder` reads) mixed with MNIST's training
    digits, and what that changed (see the module docstring)."""
    model = require_model(model, "tune(model, ...)", "load it with load_model(path) first")
    require_file_form(model, "tune(model, ...)")
    if not isinstance(own, Split):
        hint = ": a folder's digits are its .split" if hasattr(own, "split") else ""
        raise TypeError(f"tune's own digits are a Split, not {type(own).__name__}{hint}")
    if len(own) == 0:
        raise DataError("no digits of yours to tune on")
    if len(mnist.test) == 0:
        raise DataError("tune measures what the model keeps on MNIST's test set: give one")
    kept, held = held_out_split(own, held_out, seed)
    tuning, choosing = held_out_split(kept, CHOOSING, seed + 1)
    rng = np.random.default_rng(seed)
    count = min(len(mnist.train), max(MIN_REHEARSAL, REHEARSAL * len(tuning)))
    chosen = rng.permutation(len(mnist.train))[:count]
    rehearsal, rehearsal_labels = mnist.train.images[chosen], mnist.train.labels[chosen]
    validation = mnist.validation.head(MNIST_VALIDATION)
    data = Dataset(
        train=Split(
            np.concatenate([rehearsal, tuning.images]),
            np.concatenate([rehearsal_labels, tuning.labels]),
        ),
        validation=Split(
            np.concatenate([validation.images, choosing.images]),
            np.concatenate([validation.labels, choosing.labels]),
        ),
    )
    spec = model.spec.with_overrides(
        epochs=epochs,
        eta=ETA_SHARE * model.spec.eta,
        schedule="constant",
        **{name: Spec.model_fields[name].default for name in SCHEDULE_FIELDS},
        early_stop=None,
        train_size=None,
        expand=False,
        ema=0.0,
        seed=seed,
    )
    report(
        f"tuning on {len(tuning)} of your digits and {count} of MNIST's for {epochs} epochs "
        f"(eta {spec.eta:g}), choosing the epoch on {len(choosing)} more; {len(held)} held "
        "out to measure it"
    )
    result = Trainer(spec, data, use_test=False, diagnostics=False, initial=model).run()
    started = (
        f"{result.model.started_from}; then tuned on {len(tuning)} of a person's own digits "
        f"mixed with {count} of MNIST's (`digitlab tune`)"
    )
    return Tuned(
        model=replace(result.model, started_from=started),
        tuning_digits=len(tuning),
        choosing_digits=len(choosing),
        rehearsal_digits=count,
        own=change_on(model, result.model, held) if len(held) else None,
        mnist=change_on(model, result.model, mnist.test),
        history=result.history,
    )
