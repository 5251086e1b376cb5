"""Noise-aware comparisons: is one configuration really better than another?

Training the same configuration with another seed gives another accuracy (other initial
weights, another shuffling order), so a study runs each configuration with several seeds
and every conclusion is drawn from the spread of those runs, never from one number:

- a configuration's accuracy is the mean over its seeds with a 95 % confidence interval
  (Student's t: with three seeds the interval is wide, as it should be);
- two configurations differ only when Welch's t-test says so at the 5 % level (two-sided;
  Welch's version because one configuration can be noisier than another).  Otherwise they
  are *not shown to differ*: the seeds cannot tell them apart, which is not the same as
  equal.  The variants of an ablation, which share their seeds, are compared seed by
  seed instead (a paired t-test);
- each configuration is tested against the best mean on its own, which is what the
  recommendation needs (calling a tie a difference only keeps the better one); a claim
  that *every* other configuration is worse reads the tests together as well (Holm's
  correction for their number): with a dozen tests at 5 %, one true tie in two dozen
  comes out "worse" by chance alone;
- the configuration to recommend is the cheapest one indistinguishable from the best
  mean -- the idea of the one-standard-error rule, with the t-test as the yardstick: pay
  for the larger network only when the data shows it buys something.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from scipy import stats

#: Differences with a smaller p-value are called real.
SIGNIFICANCE = 0.05
CONFIDENCE = 0.95
TEST_NAME = "Welch's t-test over seeds, 5 % level"
#: How the tests against the best mean are read: one by one.
FAMILY_NAME = "each against the best mean on its own"

T = TypeVar("T")


@dataclass(frozen=True)
class Estimate:
    """The runs of one configuration: mean, 95 % interval of the mean, min and max.
    With a single run there is no interval (``low`` and ``high`` are None)."""

    mean: float
    low: float | None
    high: float | None
    minimum: float
    maximum: float
    runs: int

    @property
    def half_width(self) -> float | None:
        return None if self.low is None else self.mean - self.low


def estimate(values: Sequence[float]) -> Estimate:
    """Mean and Student-t confidence interval of ``values`` (one per seed)."""
    if not values:
        raise ValueError("no runs to estimate from")
    mean = statistics.fmean(values)
    low = high = None
    if len(values) > 1:
        sem = statistics.stdev(values) / math.sqrt(len(values))
        half = float(stats.t.ppf((1 + CONFIDENCE) / 2, len(values) - 1)) * sem
        low, high = mean - half, mean + half
    return Estimate(mean, low, high, min(values), max(values), len(values))


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b``: the difference of their means, its 95 % interval (Welch), and
    whether it is real.  ``p_value`` and the interval are None when either side has a
    single run: then nothing can be told apart and ``real`` is False.

    Not real is not the same as equal: with three seeds a difference of half a point can
    go unnoticed, which is why the wording says "not shown to differ" and quotes the
    interval -- the range of differences the seeds cannot rule out."""

    difference: float
    p_value: float | None
    low: float | None = None
    high: float | None = None
    paired: bool = False  # a paired t-test over seeds (else Welch's)

    @property
    def real(self) -> bool:
        return self.p_value is not None and self.p_value < SIGNIFICANCE

    def verdict(self) -> str:
        """For a table cell: ``p = 0.03`` when real, ``not shown to differ`` when tested
        and not, ``untested: one seed`` when a side ran once (nothing to judge the noise
        by)."""
        if self.p_value is None:
            return "untested: one seed"
        return self.p_text() if self.real else "not shown to differ"

    def p_text(self) -> str:
        """``p = 0.03``, or ``p < 0.001`` (never a bare 0)."""
        if self.p_value is None:
            return "untested"
        return "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.2g}"


def compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Welch's two-sided t-test of the means of ``a`` and ``b``."""
    difference = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return Comparison(difference, None)
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        # Identical runs on each side (e.g. both stuck at chance): no noise at all, so any
        # difference is real and none is a tie.
        return Comparison(difference, 0.0 if difference else 1.0, difference, difference)
    with warnings.catch_warnings():
        # SciPy warns of "catastrophic cancellation" when the runs agree to a few parts in
        # ten thousand -- common for accuracies out of 10,000 images -- but in float64 such
        # differences are resolved exactly; the warning says nothing about the result.
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
    interval = result.confidence_interval(CONFIDENCE)
    return Comparison(difference, float(result.pvalue), float(interval.low), float(interval.high))


#: Differences of accuracies closer than this are the same difference: accuracies are
#: counts over thousands of images, and subtracting them leaves only float rounding below.
SAME = 1e-12


def compare_paired(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """The paired t-test of ``a`` against ``b``, the i-th of each from one seed.

    Two variants of a recipe run with the same seed start from the same weights, and if
    they draw the same random numbers (augment alike) they also see the images in the
    same order with the same dropout, so much of what one seed adds to or takes from the
    accuracy it does to both.  Testing the differences seed by seed takes that shared
    part out of the noise: an effect far smaller than the seed-to-seed spread can show.
    When every pair differs by the same amount there is no spread to test against, and
    Welch's test (:func:`compare`) judges the difference instead.
    """
    if len(a) != len(b):
        raise ValueError("paired runs come in pairs")
    differences = [x - y for x, y in zip(a, b, strict=True)]
    difference = statistics.fmean(differences)
    if len(differences) < 2:
        return Comparison(difference, None, paired=True)
    if max(differences) - min(differences) <= SAME:
        # Every seed moved by the same amount, to float rounding.  By nothing: the variants
        # ran alike, and nothing tells them apart.  By something: the pairs leave no spread
        # to judge the noise by -- two seeds can agree to the image by chance -- so the
        # sides' own seed-to-seed spread judges it instead (Welch's test), never certainty.
        if abs(difference) <= SAME:
            return Comparison(difference, 1.0, difference, difference, paired=True)
        return compare(a, b)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        result = stats.ttest_rel(a, b)
    interval = result.confidence_interval(CONFIDENCE)
    return Comparison(
        difference, float(result.pvalue), float(interval.low), float(interval.high), paired=True
    )


@dataclass(frozen=True)
class Verdict(Generic[T]):
    """The outcome of comparing several configurations: the best mean, those
    indistinguishable from it, and the one to use."""

    best: T
    ties: list[T]  # indistinguishable from the best, best first
    recommended: T  # the cheapest of the best and its ties
    tested: bool  # False when single runs allowed no test (quick mode)
    compared: int = 0  # how many were tested against the best
    worse_together: int = 0  # of those, how many stay worse read together (Holm)

    def together(self) -> str:
        """What reading the tests against the best together leaves of the differences
        found one by one: a clause for a sentence saying the others are worse."""
        others = self.compared
        worse = others - len(self.ties)
        if worse < 2:
            return ""
        if self.worse_together == worse:
            return f"; read together (Holm's correction for {others} tests), all {worse} stay so"
        return (
            f"; read together (Holm's correction for {others} tests), {self.worse_together} "
            f"of those {worse} stay so"
        )


def decide(
    candidates: Sequence[T],
    runs: Callable[[T], Sequence[float]],
    cost: Callable[[T], Any],
    eligible: Callable[[T], bool] = lambda _: True,
) -> Verdict[T]:
    """Rank ``candidates`` by their mean, find those indistinguishable from the best and
    recommend the cheapest of those: ``cost`` gives a sort key, lower being cheaper or
    simpler (on equal keys, the higher mean wins).  ``eligible`` says which candidates
    may be recommended at all (not one with a diverged seed, however wide its interval).
    Each is tested against the best on its own; ``worse_together`` counts the
    differences that survive reading all the tests together (:func:`holm`)."""
    ranked = sorted(candidates, key=lambda c: -statistics.fmean(runs(c)))
    best = ranked[0]
    tested = all(len(runs(c)) > 1 for c in ranked)
    ties, worse_together = [], 0
    if tested:
        p_values = [compare(runs(best), runs(c)).p_value for c in ranked[1:]]
        p_values = [1.0 if p is None else p for p in p_values]
        ties = [c for c, p in zip(ranked[1:], p_values, strict=True) if p >= SIGNIFICANCE]
        worse_together = sum(p < SIGNIFICANCE for p in holm(p_values))
    pool = [c for c in (best, *ties) if eligible(c)] or [best]
    recommended = min(pool, key=lambda c: (cost(c), -statistics.fmean(runs(c))))
    return Verdict(best, ties, recommended, tested, len(ranked) - 1, worse_together)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of p-values tested together: the smallest times the
    number of tests, the next times one fewer, each at least the one before, at most 1.
    A difference is real when its adjusted p-value is under :data:`SIGNIFICANCE`; the
    chance of calling any true tie real then stays at 5 % however many are tested."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
