"""Findings: one short paragraph per varied hyperparameter, computed from the results.

Nothing here is written by hand about a particular study: each sentence is a template
filled with the numbers in the results table (formatted the same way), so the text
cannot drift from the data.  For a hyperparameter varied together with others, each of
its values is credited with the best configuration that used it.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from digitlab.experiments.results import TrialRow
from digitlab.experiments.study_file import Range, StudyFile


def pct(value: float) -> str:
    """Accuracies as the tables show them."""
    return f"{100 * value:.2f} %"


def finished(rows: list[TrialRow]) -> list[TrialRow]:
    return [r for r in rows if r.state in ("complete", "diverged") and r.value is not None]


def best_by_value(rows: list[TrialRow], key: str) -> dict[Any, TrialRow]:
    """For each value of ``key``, the best finished trial that used it."""
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


def describe_parameter(study_file: StudyFile, rows: list[TrialRow], key: str) -> str:
    """A paragraph on the effect of ``key`` on validation accuracy."""
    declared = study_file.space[key]
    if isinstance(declared, Range):
        return _describe_range(rows, key, declared)
    best = best_by_value(rows, key)
    if not best:
        return f"**{key}**: no finished trials yet."
    values = ordered_values(study_file, key, list(best))
    others = len(study_file.space) > 1
    credit = " (each value with the best setting of the other hyperparameters)" if others else ""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    winner = max(values, key=lambda v: best[v].value)
    parts = [f"**{key}**{credit}: best at {key} = {winner} with {pct(best[winner].value)}."]
    if numeric and len(values) > 1:
        steps = [
            f"{a} → {b}: {pct(best[a].value)} → {pct(best[b].value)} "
            f"({100 * (best[b].value - best[a].value):+.2f} points)"
            for a, b in itertools.pairwise(values)
        ]
        parts.append("Going up: " + "; ".join(steps) + ".")
        after = [v for v in values if v > winner]
        if after:
            last = after[-1]
            parts.append(
                f"Beyond {winner} it stopped helping: {last} gave {pct(best[last].value)}."
            )
    elif len(values) > 1:
        ranking = sorted(values, key=lambda v: -best[v].value)
        parts.append(
            "Ranking: "
            + " > ".join(f"{v} ({pct(best[v].value)}{_with_others(best[v], key)})" for v in ranking)
            + "."
        )
    for group_key in splitting_keys(study_file, key):
        per_group = []
        for group in study_file.space[group_key]:
            members = [r for r in rows if r.params.get(group_key) == group]
            top = best_by_value(members, key)
            if top:
                value = max(top, key=lambda v: top[v].value)
                per_group.append(
                    f"with {group_key}={group} best at {key}={value} ({pct(top[value].value)})"
                )
        if per_group:
            parts.append("Separately: " + "; ".join(per_group) + ".")
    diverged = _divergence(rows, key)
    if diverged:
        parts.append(diverged)
    spread = _repeat_spread(rows)
    if spread:
        parts.append(spread)
    return " ".join(parts)


def splitting_keys(study_file: StudyFile, key: str) -> list[str]:
    """Other hyperparameters to state ``key``'s best value for separately: lists of at most
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


def _with_others(row: TrialRow, key: str) -> str:
    others = {k: v for k, v in row.params.items() if k != key}
    return " with " + params_label(others) if others else ""


def _describe_range(rows: list[TrialRow], key: str, declared: Range) -> str:
    done = sorted(finished(rows), key=lambda r: -r.value)
    if len(done) < 4:
        return f"**{key}**: too few finished trials ({len(done)}) to describe its effect."
    top = done[: max(2, len(done) // 4)]
    values = [r.params[key] for r in top if key in r.params]
    return (
        f"**{key}** (searched {declared.low:g}–{declared.high:g}"
        f"{', log scale' if declared.log else ''}): the best {len(top)} of {len(done)} trials "
        f"used {key} between {min(values):.4g} and {max(values):.4g}; "
        f"the best trial used {top[0].params[key]:.4g} ({pct(top[0].value)})."
    )


def _divergence(rows: list[TrialRow], key: str) -> str | None:
    """Which values of ``key`` made training diverge, in how many of their runs."""
    tally: dict[Any, list[int]] = {}  # value -> [diverged runs, all runs]
    for row in rows:
        counts = tally.setdefault(row.params.get(key), [0, 0])
        counts[0] += row.diverged
        counts[1] += len(row.runs)
    listed = [
        f"{key} = {value} ({diverged} of {total} runs)"
        for value, (diverged, total) in sorted(tally.items(), key=lambda item: str(item[0]))
        if diverged
    ]
    return f"Training diverged (cost NaN/inf) for {', '.join(listed)}." if listed else None


def _repeat_spread(rows: list[TrialRow]) -> str | None:
    spreads = [
        max(r.accuracies) - min(r.accuracies) for r in finished(rows) if len(r.accuracies) > 1
    ]
    if not spreads:
        return None
    return (
        f"Across repeats with different seeds, one configuration's accuracy varied by "
        f"{100 * statistics.median(spreads):.2f} points (median), so smaller differences are noise."
    )


def describe_curves(rows: list[TrialRow], limit: int = 4) -> str | None:
    """When more epochs stopped helping, and how far training and validation drifted apart,
    for the best configurations (their first run)."""
    parts = []
    for row in [r for r in finished(rows) if r.runs][:limit]:
        validation = row.runs[0]["validation_curve"]
        training = row.runs[0]["train_curve"]
        if len(validation) < 2:
            continue
        peak = max(validation)
        peak_epoch = validation.index(peak) + 1
        settled = next(i for i, v in enumerate(validation, 1) if v >= peak - 0.001)
        gap = 100 * (training[-1] - validation[-1])
        parts.append(
            f"{params_label(row.params)}: validation peaked at epoch {peak_epoch} of "
            f"{len(validation)} ({pct(peak)}) and was within 0.1 points of that from "
            f"epoch {settled}; at the end training accuracy was {pct(training[-1])} against "
            f"{pct(validation[-1])} on validation, a gap of {gap:.2f} points"
        )
    if not parts:
        return None
    return (
        "**epochs** (learning curves, first run of the best configurations): "
        + "; ".join(parts)
        + "."
    )


def params_label(params: dict[str, Any]) -> str:
    """``key=value, ...`` with floats to four significant digits."""
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def findings(study_file: StudyFile, rows: list[TrialRow]) -> list[str]:
    paragraphs = [describe_parameter(study_file, rows, key) for key in study_file.space]
    curves = describe_curves(rows)
    return [*paragraphs, curves] if curves else paragraphs
