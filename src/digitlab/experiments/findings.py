"""Findings: what a study shows, by how much, within what noise -- and why.

Assembles a report's findings from :mod:`digitlab.experiments.effects` (each
hyperparameter's effect, tested against the seed-to-seed noise) and
:mod:`digitlab.experiments.causes` (the mechanisms the diagnostics measured), and
answers the study's question in one line for the index of all studies.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from digitlab.experiments.causes import (
    Cause,
    ablation,
    failures,
    learning_slowdown,
    overfitting,
    regularization,
    vanishing_gradients,
)
from digitlab.experiments.effects import (
    against_reference,
    compare_seed_by_seed,
    describe_noise,
    describe_parameter,
    describe_sampled_search,
    difference,
    effect,
    finished,
    label,
    outcome,
    params_label,
    pct,
    points,
    verdict,
)
from digitlab.experiments.results import TrialRow
from digitlab.experiments.statistics import SIGNIFICANCE, Comparison, Verdict, compare, holm
from digitlab.experiments.study_file import VARIANT, StudyFile


@dataclass(frozen=True)
class Findings:
    """A report's findings: one section per varied hyperparameter (title, Markdown),
    notes on the search and the noise, and the measured causes."""

    effects: list[tuple[str, str]]
    notes: list[str]
    causes: list[Cause]


def findings(study_file: StudyFile, rows: list[TrialRow]) -> Findings:
    """Effects (with noise and verdicts), then causes."""
    effects = [(key, describe_parameter(study_file, rows, key)) for key in study_file.space]
    baseline = describe_baseline(study_file, rows)
    if baseline:
        effects.append(("against the baseline", baseline))
    notes = [describe_sampled_search(rows)] if study_file.search.sampler != "grid" else []
    notes.append(describe_noise(rows))
    return Findings(effects, [n for n in notes if n], causes(study_file, rows))


def causes(study_file: StudyFile, rows: list[TrialRow]) -> list[Cause]:
    """The *why* paragraphs whose measurements are present in this study."""
    found = [learning_slowdown(rows), vanishing_gradients(rows)]
    penalties = [key for key in study_file.space if regularization(rows, key)]
    found += [regularization(rows, penalties[0])] if penalties else []
    found += [ablation(study_file, rows), overfitting(rows), failures(rows)]
    return [cause for cause in found if cause]


@dataclass(frozen=True)
class Answer:
    """One row of the studies' index: the study's question answered in five cells."""

    changes: str
    effect: str
    noise: str
    why: str
    use: str


def answer(study_file: StudyFile, rows: list[TrialRow]) -> Answer | None:
    """What changes, by how much, within what noise, why, and the configuration to use."""
    done = finished(rows)
    if not done:
        return None
    changes = "; ".join(
        f"{key} {label(v[0])} … {label(v[-1])}"
        if isinstance(v, list) and len(v) > 2 and key != VARIANT
        else f"{key} {' / '.join(label(x) for x in v)}"
        if isinstance(v, list)
        else f"{key} {v.low:g}–{v.high:g}"
        for key, v in study_file.space.items()
    )
    worst = min(done, key=lambda r: r.value)
    overall = verdict(done)
    best = overall.best
    effect_text = (
        ablation_effect(study_file, rows)
        or baseline_effect(study_file, rows, best)
        or (
            f"{pct(worst.value)} ({params_label(worst.params)}) to {pct(best.value)} "
            f"({params_label(best.params)})"
        )
    )
    why = "; ".join(cause.short for cause in causes(study_file, rows)) or "no cause measured"
    return Answer(changes, effect_text, noise_text(study_file, rows, best), why, use_text(overall))


def noise_text(study_file: StudyFile, rows: list[TrialRow], best: TrialRow) -> str:
    """The noise a difference in this study is read against: the median half-width of
    the 95 % interval of the differences the study tests, measured the way its effect cell
    measures them -- seed by seed against the reference of an ablation or the baseline of
    a grid, else each configuration against ``best``, the best mean, by Welch's test -- so
    that it can be set beside the effect cell's differences directly.  A mean's own
    interval answers another question, and set beside a difference it misleads, either
    way; so does a Welch interval set beside a paired difference, which shares each seed's
    luck and is often much narrower."""
    found = effect(study_file, rows, VARIANT) if study_file.variants else None
    base = baseline_row(study_file, rows)
    if found is not None:
        tests = [test for _, test in against_reference(study_file, found)]
        against = f"against {study_file.reference}, seed by seed"
    elif base is not None:
        tests = [item.test for item in against_baseline(base, rows)]
        against = "against the baseline, seed by seed"
    else:
        tests = [
            compare(row.accuracies, best.accuracies) for row in finished(rows) if row is not best
        ]
        against = "against the best mean"
    widths = [(test.high - test.low) / 2 for test in tests if test.low is not None]
    if not widths:
        return "not measured (one seed)"
    return (
        f"±{100 * statistics.median(widths):.2f} points (95 % interval of a difference "
        f"{against}; median over the configurations)"
    )


def use_text(overall: Verdict[TrialRow]) -> str:
    """The configuration to use, and how sure that is: chosen among ties, alone above the
    noise, or -- with one seed each -- not chosen at all."""
    best, recommended = overall.best, overall.recommended
    if not overall.tested:
        return (
            f"none: one seed each, so no difference was tested (highest: "
            f"{params_label(best.params)}, {pct(best.value)})"
        )
    tied = len(overall.ties) + 1
    if recommended is not best:
        return (
            f"{params_label(recommended.params)} ({pct(recommended.value)}): the cheapest of "
            f"{tied} not shown to differ from the best mean"
        )
    if overall.ties:
        return (
            f"any of {tied} not shown to differ; {params_label(best.params)} has the best "
            f"mean ({pct(best.value)}) and none of the others is cheaper"
        )
    return f"{params_label(best.params)} ({pct(best.value)}): every other worse beyond the noise"


def ablation_effect(study_file: StudyFile, rows: list[TrialRow]) -> str | None:
    """An ablation's effect in one cell: the reference's accuracy, then each variant's
    difference from it and the verdict; None for a study without variants or while its
    reference runs."""
    found = effect(study_file, rows, VARIANT) if study_file.variants else None
    compared = against_reference(study_file, found) if found else []
    if not compared:
        return None
    reference = found.best[study_file.reference]
    return f"{study_file.reference} {pct(reference.value)}; " + "; ".join(
        f"{name} {points(test.difference)} ({test.p_text() if test.real else outcome(test)})"
        for name, test in compared
    )


def baseline_row(study_file: StudyFile, rows: list[TrialRow]) -> TrialRow | None:
    """The finished configuration the study file names as its baseline, if any."""
    wanted = study_file.baseline
    if not wanted:
        return None
    return next(
        (
            row
            for row in finished(rows)
            if all(row.params.get(key) == value for key, value in wanted.items())
        ),
        None,
    )


@dataclass(frozen=True)
class AgainstBaseline:
    """One configuration against the study's baseline, seed by seed, and whether its
    difference stays real when all the comparisons with the baseline are read together
    (Holm's correction for their number)."""

    row: TrialRow
    test: Comparison
    real_together: bool


def against_baseline(base: TrialRow, rows: list[TrialRow]) -> list[AgainstBaseline]:
    """Every other finished configuration against ``base``, in the rows' order."""
    compared = [
        (row, compare_seed_by_seed(row.by_seed(), base.by_seed()))
        for row in finished(rows)
        if row is not base
    ]
    adjusted = holm([1.0 if test.p_value is None else test.p_value for _, test in compared])
    return [
        AgainstBaseline(row, test, test.p_value is not None and p < SIGNIFICANCE)
        for (row, test), p in zip(compared, adjusted, strict=True)
    ]


def together_text(found: AgainstBaseline, tests: int) -> str:
    """How one comparison reads among all ``tests`` with the baseline."""
    if not found.test.real:
        return ""
    if found.real_together:
        return f", and stays so read with all {tests} comparisons (Holm)"
    return f" on its own, not once read with all {tests} comparisons (Holm)"


def baseline_effect(study_file: StudyFile, rows: list[TrialRow], best: TrialRow) -> str | None:
    """The index's effect cell for a study with a baseline: from the baseline to the best
    mean, the difference seed by seed with its interval, and whether it holds among all
    the comparisons with the baseline; None without a finished baseline."""
    base = baseline_row(study_file, rows)
    if base is None:
        return None
    start = f"from the baseline {params_label(base.params)} ({pct(base.value)})"
    if base is best:
        return f"{start}: none better (it has the best mean)"
    compared = against_baseline(base, rows)
    (found,) = [item for item in compared if item.row is best]
    return (
        f"{start} to {params_label(best.params)} ({pct(best.value)}): "
        f"{difference(found.test)}, seed by seed: {outcome(found.test)}"
        f"{together_text(found, len(compared))}; the best of {len(compared) + 1} means, so "
        "its lead is a little optimistic"
    )


def describe_baseline(study_file: StudyFile, rows: list[TrialRow]) -> str | None:
    """Every other configuration against the baseline, seed by seed: what each choice buys
    over it (or costs), and whether the seeds show it, alone and read together."""
    base = baseline_row(study_file, rows)
    if base is None:
        return None
    compared = against_baseline(base, rows)
    together = sum(item.real_together for item in compared)
    lines = [
        f"Each configuration against the baseline, {params_label(base.params)} "
        f"({pct(base.value)}), seed by seed over the seeds both ran (a paired t-test, 5 % "
        f"level, each on its own; read together, Holm's correction for {len(compared)} "
        f"tests leaves {together} of the differences real):",
        "",
    ]
    lines += [
        f"- {params_label(item.row.params)}: {difference(item.test)}; {outcome(item.test)}"
        f"{together_text(item, len(compared))}."
        for item in compared
    ]
    return "\n".join(lines)
