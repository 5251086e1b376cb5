"""Effects: how much one hyperparameter changes validation accuracy, within what noise.

Each value of a hyperparameter is represented by the best configuration that used it
("each at its best learning rate"), shown as the mean over seeds with its 95 % interval,
and every comparison goes through :mod:`digitlab.experiments.statistics`: a difference
inside the seed-to-seed noise is called a tie, and the configuration recommended is the
cheapest one that ties with the best.  Nothing here is written about a particular study:
each sentence is a template filled with the stored numbers.
"""

from __future__ import annotations

import functools
import json
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

from digitlab.experiments.results import TrialRow
from digitlab.experiments.statistics import (
    FAMILY_NAME,
    TEST_NAME,
    Comparison,
    Estimate,
    Verdict,
    compare,
    compare_paired,
    decide,
)
from digitlab.experiments.study_file import VARIANT, Range, StudyFile, numeric
from digitlab.nn.build import build_network
from digitlab.spec import make_spec

#: Training images when a spec uses the whole training split.
FULL_TRAIN = 50_000
#: A configuration whose mean accuracy is below this learned next to nothing (chance is 10 %).
NEAR_CHANCE = 0.2


def pct(value: float) -> str:
    """Accuracies as the tables show them."""
    return f"{100 * value:.2f} %"


def points(value: float) -> str:
    return f"{100 * value:+.2f} points"


def params_label(params: dict[str, Any]) -> str:
    """``key=value, ...`` with floats to four significant digits."""
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def finished(rows: list[TrialRow]) -> list[TrialRow]:
    return [r for r in rows if r.state in ("complete", "diverged") and r.accuracies]


def interval(est: Estimate) -> str:
    """An accuracy as the findings print it: mean, 95 % interval (cut to 0-100 %, where
    a t-interval of three wild seeds can reach beyond), range, seeds."""
    if est.low is None:
        return f"{pct(est.mean)} (1 seed: no interval)"
    low, high = max(est.low, 0.0), min(est.high, 1.0)
    return (
        f"{pct(est.mean)} (95 % interval {100 * low:.2f}–{100 * high:.2f}, "
        f"range {100 * est.minimum:.2f}–{100 * est.maximum:.2f}, {est.runs} seeds)"
    )


@functools.lru_cache(maxsize=256)
def _parameters(spec_json: str) -> int:
    spec = make_spec(json.loads(spec_json))
    return sum(p.value.size for p in build_network(spec, np.random.default_rng(0)).params)


def training_compute(row: TrialRow) -> float:
    """What training one run costs, up to a constant: parameters x images x epochs (each
    image passes every weight a fixed number of times).  Deterministic, unlike seconds
    measured on a shared machine."""
    if not row.spec:
        return float("inf")  # unknown: never the cheap choice
    spec = row.spec
    images = (spec.get("train_size") or FULL_TRAIN) * (5 if spec.get("expand") else 1)
    return _parameters(json.dumps(spec, sort_keys=True)) * images * spec.get("epochs", 1)


def simplicity(row: TrialRow) -> tuple[float, int]:
    """What "cheapest, then simplest" sorts by: the training compute, then how many
    regularisers (L2, L1, dropout) the configuration switches on."""
    spec = row.spec or {}
    regularisers = sum(bool(spec.get(name)) for name in ("lmbda", "l1", "dropout"))
    return training_compute(row), regularisers


def cheaper_by(chosen: TrialRow, best: TrialRow) -> str:
    """How the recommended configuration is cheaper or simpler than the best one."""
    ratio = training_compute(chosen) / max(training_compute(best), 1.0)
    if ratio < 0.999:
        return f"at {ratio:.2g}× its training compute (parameters × images × epochs)"
    return "at the same compute with fewer regularisers (simpler)"


def healthy(row: TrialRow) -> bool:
    """No seed diverged and the mean is clear of chance: fit to be recommended."""
    return not row.diverged and (row.value or 0.0) >= NEAR_CHANCE


def verdict(rows: list[TrialRow]) -> Verdict[TrialRow]:
    """The best configuration, those that tie with it and the cheapest and simplest of
    the healthy ones among those (see :func:`digitlab.experiments.statistics.decide`)."""
    return decide(rows, lambda r: r.accuracies, simplicity, healthy)


def difference(test: Comparison) -> str:
    """``-0.03 points (95 % interval -0.31 to +0.25, p = 0.8)``: a difference with the
    range of differences the seeds cannot rule out."""
    if test.low is None:
        return points(test.difference)
    return (
        f"{points(test.difference)} (95 % interval {100 * test.low:+.2f} to "
        f"{100 * test.high:+.2f}, {test.p_text()})"
    )


def best_by_value(rows: list[TrialRow], key: str) -> dict[Any, TrialRow]:
    """For each value of ``key``, the finished configuration with the best mean using it."""
    best: dict[Any, TrialRow] = {}
    for row in finished(rows):
        value = row.params.get(key)
        if value is not None and (value not in best or row.value > best[value].value):
            best[value] = row
    return best


def ordered_values(study_file: StudyFile, key: str, values: list[Any]) -> list[Any]:
    declared = study_file.space[key]
    if isinstance(declared, list):
        return [v for v in declared if v in values]
    return sorted(values)


def splitting_keys(study_file: StudyFile, key: str) -> list[str]:
    """Other hyperparameters to state ``key``'s effect for separately: lists of at most
    six non-float values (a depth, an activation, a cost, a training-set size)."""
    return [
        other
        for other, values in study_file.space.items()
        if other != key
        and isinstance(values, list)
        and len(values) <= 6
        and not any(isinstance(v, float) for v in values)
    ]


def grouping_key(study_file: StudyFile, key: str) -> str | None:
    """The one other hyperparameter to split ``key``'s effect by, if the study has exactly
    one other and it is a short list of values (e.g. the cost in the learning-rate study)."""
    others = [k for k in study_file.space if k != key]
    if len(others) == 1 and isinstance(study_file.space[others[0]], list):
        return others[0] if len(study_file.space[others[0]]) <= 6 else None
    return None


def label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Effect:
    """The effect of one hyperparameter among one set of rows: each value's best
    configuration, and the verdict between them."""

    key: str
    values: list[Any]  # in the study file's order
    best: dict[Any, TrialRow]
    verdict: Verdict[TrialRow]

    def value_of(self, row: TrialRow) -> Any:
        return row.params.get(self.key)


def effect(study_file: StudyFile, rows: list[TrialRow], key: str) -> Effect | None:
    best = best_by_value(rows, key)
    if not best:
        return None
    values = ordered_values(study_file, key, list(best))
    return Effect(key, values, best, verdict([best[v] for v in values]))


def describe_effect(found: Effect, compute_note: bool = True) -> str:
    """The verdict on one hyperparameter: the best value, the values that tie with it,
    the cheapest of those, and for numbers which steps from one value to the next are
    real and which are not shown to differ."""
    key, best, v = found.key, found.best, found.verdict
    winner = found.value_of(v.best)
    if len(found.values) < 2:
        return f"only {key} = {label(winner)} finished."
    parts = [f"best mean at {key} = {label(winner)} ({pct(v.best.value)})."]
    if not v.tested:
        parts.append(
            "With one seed per configuration nothing can be told apart from noise (quick "
            "mode); run the full study for a verdict."
        )
        return " ".join(parts)
    if v.ties:
        tied = "; ".join(
            f"{label(found.value_of(r))}: {difference(compare(r.accuracies, v.best.accuracies))}"
            for r in v.ties
        )
        parts.append(f"Not shown to differ from it ({FAMILY_NAME}): {tied}.")
        worse = v.compared - len(v.ties)
        if worse >= 2:
            parts.append(f"The {worse} others are worse{v.together()}.")
    else:
        parts.append(f"Every other value is worse ({FAMILY_NAME}){v.together()}.")
    if v.recommended is not v.best and compute_note:
        parts.append(
            f"**Use {key} = {label(found.value_of(v.recommended))}**: not shown to differ "
            f"from {label(winner)}, {cheaper_by(v.recommended, v.best)}."
        )
    if numeric(found.values):
        real, level = [], []
        for a, b in zip(found.values, found.values[1:], strict=False):
            test = compare(best[b].accuracies, best[a].accuracies)
            step = f"{label(a)} → {label(b)} {points(test.difference)}"
            if test.real:
                real.append(f"{step} ({test.p_text()})")
            else:
                level.append(step)
        if real:
            parts.append("Real steps: " + "; ".join(real) + ".")
        if level:
            parts.append("Within noise: " + "; ".join(level) + ".")
    return " ".join(parts)


def effect_table(study_file: StudyFile, rows: list[TrialRow], key: str) -> str:
    """Each value of ``key`` (rows) against each value of the hyperparameter it is
    crossed with (columns), as mean ± half-width of the 95 % interval over seeds; with
    more hyperparameters, each cell is the best configuration and names their values."""
    splits = splitting_keys(study_file, key)
    group_key = splits[0] if splits else None
    groups = list(study_file.space[group_key]) if group_key else [None]
    shown = {
        group: best_by_value(
            [r for r in rows if group is None or r.params.get(group_key) == group], key
        )
        for group in groups
    }
    values = ordered_values(study_file, key, list({v for best in shown.values() for v in best}))
    rest = [k for k in study_file.space if k not in (key, group_key)]
    titles = [f"{group_key} = {label(g)}" if group_key else "validation accuracy" for g in groups]
    lines = [f"| {key} | " + " | ".join(titles) + " |", "|---|" + "---|" * len(groups)]
    for value in values:
        cells = []
        for group in groups:
            row = shown[group].get(value)
            if row is None:
                cells.append("")
                continue
            est = row.estimate
            cell = f"{100 * est.mean:.2f} %"
            if est.half_width is not None:
                cell += f" ± {100 * est.half_width:.2f}"
            if rest:
                cell += f" ({params_label({k: row.params.get(k) for k in rest})})"
            cells.append(cell)
        lines.append(f"| {label(value)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe_parameter(study_file: StudyFile, rows: list[TrialRow], key: str) -> str:
    """The effect of ``key`` on validation accuracy: a table of its values, then the
    verdict overall and within each value of the hyperparameters it is crossed with."""
    declared = study_file.space[key]
    if isinstance(declared, Range):
        return _describe_range(rows, key, declared)
    if study_file.search.sampler != "grid":
        return _describe_sampled_choice(rows, key)
    found = effect(study_file, rows, key)
    if found is None:
        return "No finished trials yet."
    others = len(study_file.space) > 1
    credit = " (each value at the best setting of the other hyperparameters)" if others else ""
    verdicts = [f"- Overall{credit}: {describe_effect(found)}"]
    for group_key in splitting_keys(study_file, key):
        for group in study_file.space[group_key]:
            members = [r for r in rows if r.params.get(group_key) == group]
            within = effect(study_file, members, key)
            if within and len(within.values) > 1:
                text = describe_effect(within, compute_note=False)
                verdicts.append(f"- With {group_key} = {label(group)}: {text}")
    if key == VARIANT:
        verdicts.append(describe_ablation(study_file, found))
    return effect_table(study_file, rows, key) + "\n\n" + "\n".join(verdicts)


def against_reference(study_file: StudyFile, found: Effect) -> list[tuple[str, Comparison]]:
    """Each finished variant but the reference, in the study file's order, with its
    comparison against the reference (empty while the reference has not finished):
    paired by seed where the two share two seeds or more, else Welch's."""
    reference = found.best.get(study_file.reference)
    if reference is None:
        return []
    return [
        (name, compare_seed_by_seed(found.best[name].by_seed(), reference.by_seed()))
        for name in found.values
        if name != study_file.reference
    ]


def compare_seed_by_seed(mine: dict[int, float], theirs: dict[int, float]) -> Comparison:
    """One measurement by seed against another, paired over the seeds both ran; Welch's
    test on all of them when fewer than two seeds are shared."""
    shared = sorted(mine.keys() & theirs.keys())
    if len(shared) < 2:
        return compare(list(mine.values()), list(theirs.values()))
    return compare_paired([mine[s] for s in shared], [theirs[s] for s in shared])


def describe_ablation(study_file: StudyFile, found: Effect) -> str:
    """Each variant against the reference (the study file's first variant): what it
    changes, the difference of the means with its 95 % interval, and whether the seeds
    show it to be real."""
    reference = study_file.reference
    if reference not in found.best:
        return f"- Against {reference}: it has not finished yet."
    others = [key for key in study_file.space if key != VARIANT]
    setting = f", each variant at its best {', '.join(others)}" if others else ""
    compared = against_reference(study_file, found)
    paired = (
        " (seed by seed, a paired t-test: a seed starts every variant from the same "
        "weights, and variants that draw the same random numbers, augmenting alike, also "
        "see the images in the same order with the same dropout; what the seed does to "
        "the accuracy then partly cancels)"
        if any(test.paired for _, test in compared)
        else ""
    )
    lines = [f"- Against **{reference}**, the reference{setting}{paired}:"]
    for name, test in compared:
        changes = params_label(study_file.variants[name]) or "nothing"
        test_name = "" if test.paired or test.p_value is None else ", Welch's t-test"
        lines.append(f"  - {name} ({changes}): {difference(test)}{test_name}; {outcome(test)}.")
    if len(lines) == 1:
        lines.append("  - no other variant has finished yet.")
    return "\n".join(lines)


def outcome(test: Comparison) -> str:
    """``better``, ``worse``, ``not shown to differ``, or ``untested`` with one seed."""
    if test.real:
        return "better" if test.difference > 0 else "worse"
    return "not shown to differ" if test.p_value is not None else "untested"


def _describe_sampled_choice(rows: list[TrialRow], key: str) -> str:
    """A list searched by random/TPE sampling: how often each value was tried, and why
    the best trial per value is no controlled comparison."""
    done = finished(rows)
    tally: dict[Any, int] = {}
    for row in done:
        tally[row.params.get(key)] = tally.get(row.params.get(key), 0) + 1
    counts = ", ".join(
        f"{label(value)} in {n} trial{'s' if n > 1 else ''}"
        for value, n in sorted(tally.items(), key=str)
    )
    best = best_by_value(rows, key)
    ranked = sorted(best, key=lambda value: -best[value].value)
    tops = "; ".join(
        f"{label(value)}: {interval(best[value].estimate)} in trial {best[value].number}"
        for value in ranked
    )
    return (
        f"Tried {counts}. Best trial per value: {tops}. "
        "The sampler tried values unevenly and each value's best trial differs in the other "
        "hyperparameters too, so this is no controlled comparison of the values."
    )


def _describe_range(rows: list[TrialRow], key: str, declared: Range) -> str:
    done = sorted(finished(rows), key=lambda r: -r.value)
    if len(done) < 4:
        return f"Too few finished trials ({len(done)}) to describe its effect."
    top = done[: max(2, len(done) // 4)]
    values = [r.params[key] for r in top if key in r.params]
    return (
        f"Searched {declared.low:g}–{declared.high:g}"
        f"{', log scale' if declared.log else ''}: the best {len(top)} of {len(done)} trials "
        f"used {key} between {min(values):.4g} and {max(values):.4g}; "
        f"the best trial used {top[0].params[key]:.4g} ({pct(top[0].value)})."
    )


def describe_sampled_search(rows: list[TrialRow]) -> str | None:
    """For random/TPE searches: how many trials tie with the best one."""
    done = finished(rows)
    if len(done) < 2:
        return None
    v = verdict(done)
    if not v.tested:
        return None
    return (
        f"**the search as a whole**: the best trial ({v.best.number}: "
        f"{interval(v.best.estimate)}) is not shown to differ ({TEST_NAME}) from "
        f"{len(v.ties)} of the other {len(done) - 1} finished trials. Its mean is also the "
        "maximum of many noisy means, so expect a retrain to land a little lower. The "
        f"cheapest of those ties is trial {v.recommended.number} "
        f"({params_label(v.recommended.params)})."
    )


def noise(rows: list[TrialRow]) -> list[float]:
    """Each finished configuration's seed noise: the half-width of its 95 % interval."""
    widths = [r.estimate.half_width for r in finished(rows)]
    return [w for w in widths if w is not None]


def describe_noise(rows: list[TrialRow]) -> str | None:
    spreads = noise(rows)
    if not spreads:
        return None
    return (
        f"**noise**: the 95 % interval of one configuration's mean is ±"
        f"{100 * statistics.median(spreads):.2f} points (median over configurations; "
        f"largest ±{100 * max(spreads):.2f}); a difference of two means has an interval of "
        f"its own (the index gives it). Differences are called real only when "
        f"{TEST_NAME} says so ({FAMILY_NAME}; where a sentence says all the others are "
        "worse, it also says how many stay so when the tests are read together); not "
        "shown to differ is not the same as equal. Each value's "
        "accuracy is the best over its epochs, and where other hyperparameters vary, the "
        "best over those too: a maximum of noisy numbers, a little optimistic."
    )
