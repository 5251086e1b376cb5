"""Causes: *why* a study's numbers came out as they did, from the diagnostics.

The trainer records, after every epoch and at the initial weights, the training and
validation cost, each layer's gradient and weight norms, and the fraction of saturated
sigmoid/tanh units and dead ReLUs (:mod:`digitlab.train.diagnostics`).  Each function
here looks for the pattern of one mechanism the book explains -- the quadratic cost's
learning slowdown, overfitting, what a penalty does to the weights, the vanishing
gradient, a step too large -- and states it with its numbers, only where its
measurements are present; otherwise it says nothing rather than guess.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from digitlab.experiments.effects import (
    NEAR_CHANCE,
    against_reference,
    compare_seed_by_seed,
    difference,
    effect,
    finished,
    healthy,
    params_label,
    pct,
    points,
)
from digitlab.experiments.results import RunSummary, TrialRow
from digitlab.experiments.statistics import (
    TEST_NAME,
    Comparison,
    Estimate,
    compare,
    estimate,
)
from digitlab.experiments.study_file import VARIANT, StudyFile

#: A validation cost that rises by more than this fraction of its minimum has turned up.
RISE = 0.02
#: Weights grown to more than this multiple of their initial norm have blown up.
BLOW_UP = 10.0


@dataclass(frozen=True)
class Cause:
    """A measured reason: a title and Markdown for the report, one line for the index."""

    title: str
    text: str
    short: str


def _curve_mean(runs: list[RunSummary], name: str) -> np.ndarray:
    """The mean over seeds of a per-epoch curve, as long as the shortest run."""
    curves = [getattr(run, name) for run in runs if getattr(run, name)]
    length = min(len(c) for c in curves)
    return np.mean([c[:length] for c in curves], axis=0)


def _is_quadratic_sigmoid(row: TrialRow) -> bool:
    spec = row.spec or {}
    return spec.get("cost") == "quadratic" and spec.get("output_activation") in (None, "sigmoid")


def learning_slowdown(rows: list[TrialRow]) -> Cause | None:
    """Quadratic against cross-entropy cost at the same initial weights: the mechanism
    (the output layer's gradient at initialisation, same seed), the evidence (accuracy
    after one epoch at the smallest learning rate), and each cost's best learning rate.
    Each sentence only where its numbers support it."""
    pairs = _cost_pairs(finished(rows))
    ratios = [
        q.initial.layers[-1].bias_gradient_norm / c.initial.layers[-1].bias_gradient_norm
        for quad, ce in pairs
        for q, c in _same_seeds(quad.runs, ce.runs)
        if q.initial and c.initial and c.initial.layers[-1].bias_gradient_norm > 0
    ]
    if not ratios:
        return None
    ratio = statistics.median(ratios)
    parts = [
        "The mechanism: at the same initial weights (same seed), the output layer's gradient "
        f"‖∂C/∂b‖ was {ratio:.2f}× as large with the quadratic cost as with cross-entropy "
        f"(median of {len(ratios)} runs). The quadratic cost's output error (a − y)·σ'(z) "
        "carries the sigmoid's slope σ' ≤ 1/4, tiny where an output saturates; "
        "cross-entropy's output error is a − y, with no σ' (the book's chapter 3)."
    ]
    short = f"quadratic cost's output gradient {ratio:.2f}× cross-entropy's (its σ' factor)"
    evidence = _first_epoch_evidence(min(pairs, key=lambda pair: _eta(pair[0])))
    if evidence:
        parts.append(evidence)
        short = "learning slowdown: " + short
    best_rates = _best_rates(pairs)
    if best_rates:
        parts.append(best_rates)
    by_rate = _costs_by_rate(pairs)
    if by_rate:
        parts.append(by_rate[0])
        short += f"; {by_rate[1]}"
    return Cause("Learning slowdown (quadratic cost)", " ".join(parts), short)


def _cost_pairs(done: list[TrialRow]) -> list[tuple[TrialRow, TrialRow]]:
    """(quadratic, cross-entropy) configurations that differ in nothing but the cost."""
    pairs = []
    for quad in (r for r in done if _is_quadratic_sigmoid(r)):
        others = {k: v for k, v in quad.params.items() if k != "cost"}
        for ce in done:
            if ce.params.get("cost") == "cross-entropy" and all(
                ce.params.get(k) == v for k, v in others.items()
            ):
                pairs.append((quad, ce))
    return pairs


def _same_seeds(a: list[RunSummary], b: list[RunSummary]) -> list[tuple[RunSummary, RunSummary]]:
    by_seed = {run.seed: run for run in b}
    return [(run, by_seed[run.seed]) for run in a if run.seed in by_seed]


def _first_epoch_evidence(pair: tuple[TrialRow, TrialRow]) -> str | None:
    """After one epoch at the smallest learning rate: is cross-entropy really ahead?"""
    quad, ce = pair
    first_q = [run.validation_accuracy[0] for run in quad.runs if run.validation_accuracy]
    first_c = [run.validation_accuracy[0] for run in ce.runs if run.validation_accuracy]
    if not first_q or not first_c:
        return None
    test = compare(first_c, first_q)
    measured = (
        f"after one epoch at η = {_eta(quad):g} the quadratic cost reached "
        f"{pct(statistics.fmean(first_q))} validation accuracy and cross-entropy "
        f"{pct(statistics.fmean(first_c))}"
    )
    if not (test.real and test.difference > 0):
        return f"The evidence is missing here: {measured}, not a real lead for cross-entropy."
    stuck_q = [run.diagnostics[0].output_stuck for run in quad.runs if run.diagnostics]
    stuck_c = [run.diagnostics[0].output_stuck for run in ce.runs if run.diagnostics]
    stuck = ""
    if stuck_q and stuck_c and None not in stuck_q + stuck_c:
        mean_q, mean_c = statistics.fmean(stuck_q), statistics.fmean(stuck_c)
        if mean_q > mean_c + 0.01:
            stuck = (
                f"; after that epoch {100 * mean_q:.1f} % of the quadratic network's outputs "
                f"were saturated at the wrong value, against {100 * mean_c:.1f} % with "
                "cross-entropy"
            )
    return f"The evidence: {measured} ({test.p_text()}){stuck}."


def _best_rates(pairs: list[tuple[TrialRow, TrialRow]]) -> str | None:
    """Each cost's best learning rate and whether the two bests differ."""
    best_q = max((q for q, _ in pairs), key=lambda r: r.value)
    best_c = max((c for _, c in pairs), key=lambda r: r.value)
    if _eta(best_q) == _eta(best_c):
        return None
    test = compare(best_q.accuracies, best_c.accuracies)
    return (
        f"Each cost's best learning rate: η = {_eta(best_q):g} for quadratic "
        f"({pct(best_q.value)}), η = {_eta(best_c):g} for cross-entropy ({pct(best_c.value)}); "
        "at their best the two costs "
        + ("differ" if test.real else "are not shown to differ")
        + f" ({difference(test)})."
    )


def _costs_by_rate(pairs: list[tuple[TrialRow, TrialRow]]) -> tuple[str, str] | None:
    """At each learning rate, which cost is ahead, seed by seed: the measured form of
    "the quadratic cost wants larger steps" (cross-entropy ahead at the small rates, the
    quadratic cost at the large ones), where the seeds show any difference.  Rates at
    which either cost diverged or stayed near chance are left out: two failures are no
    comparison of the costs."""
    ahead: dict[str, list[tuple[float, Comparison]]] = {"cross-entropy": [], "quadratic": []}
    for quad, ce in sorted(pairs, key=lambda pair: _eta(pair[0])):
        if not (healthy(quad) and healthy(ce)):
            continue
        test = compare_seed_by_seed(ce.by_seed(), quad.by_seed())
        if test.real:
            ahead["cross-entropy" if test.difference > 0 else "quadratic"].append(
                (_eta(quad), test)
            )
    if not ahead["cross-entropy"] and not ahead["quadratic"]:
        return None
    found = "; ".join(
        f"{cost} ahead at η "
        + ", ".join(f"{eta:g} ({points(abs(test.difference))})" for eta, test in items)
        for cost, items in ahead.items()
        if items
    )
    small, large = ahead["cross-entropy"], ahead["quadratic"]
    meaning = (
        ": the quadratic cost wants larger steps, as its smaller output gradient predicts"
        if small and large and max(eta for eta, _ in small) < min(eta for eta, _ in large)
        else ""
    )
    text = (
        "Cost against cost at each learning rate, seed by seed (a paired t-test, 5 % level, "
        "each rate on its own; rates where either diverged or stayed near chance left out): "
        f"{found}{meaning}; at the other rates not shown to differ."
    )
    return text, found + meaning


def _eta(row: TrialRow) -> float:
    return float((row.spec or {}).get("eta", row.params.get("eta", 0.0)))


@dataclass(frozen=True)
class Overfit:
    """Where one configuration's validation cost turned up (mean curves over seeds)."""

    row: TrialRow
    epochs: int
    lowest_epoch: int  # of the validation cost, from 1
    rise: float  # validation cost at the end minus its minimum
    train_fall_after: float  # training cost at the lowest epoch minus at the end
    gap: float  # training minus validation accuracy at the end
    peak_epoch: int  # of validation accuracy, from 1
    lowest: float  # the validation cost's minimum
    train_at_lowest: float  # the training cost in that epoch
    settled_epoch: int  # the first epoch after which more training was not shown to help
    later_gain: Estimate  # what the epochs after it added to each seed's best accuracy
    seeds: int  # the runs the curves average
    drop: float  # validation accuracy at its peak minus at the end
    drop_low: float | None  # the 95 % interval of that fall, seed by seed (None: 1 seed)
    drop_high: float | None

    @property
    def turned(self) -> bool:
        """The validation cost rose clearly (by over RISE of its minimum) after its lowest
        epoch while the training cost went on falling (by over RISE of its value then)."""
        return (
            self.train_fall_after > RISE * self.train_at_lowest and self.rise > RISE * self.lowest
        )


def overfitting_of(row: TrialRow) -> Overfit | None:
    runs = [r for r in row.runs if not r.diverged and len(r.validation_cost) > 1]
    if not runs:
        return None
    validation_cost = _curve_mean(runs, "validation_cost")
    train_cost = _curve_mean(runs, "train_cost")
    validation = _curve_mean(runs, "validation_accuracy")
    train = _curve_mean(runs, "train_accuracy")
    lowest = int(np.argmin(validation_cost))
    peak = int(np.argmax(validation))
    end = len(validation) - 1
    fall = estimate([run.validation_accuracy[peak] - run.validation_accuracy[end] for run in runs])
    gains = [_gain_after(runs, epoch) for epoch in range(end + 1)]
    helped = [epoch for epoch, gain in enumerate(gains) if _shown_positive(gain)]
    settled = helped[-1] + 1 if helped else 0  # no later epoch was shown to help after it
    return Overfit(
        row=row,
        epochs=len(validation_cost),
        lowest_epoch=lowest + 1,
        rise=float(validation_cost[-1] - validation_cost[lowest]),
        train_fall_after=float(train_cost[lowest] - train_cost[-1]),
        gap=float(train[-1] - validation[-1]),
        peak_epoch=peak + 1,
        lowest=float(validation_cost[lowest]),
        train_at_lowest=float(train_cost[lowest]),
        settled_epoch=settled + 1,
        later_gain=gains[settled],
        seeds=len(runs),
        drop=float(validation[peak] - validation[-1]),
        drop_low=fall.low,
        drop_high=fall.high,
    )


def _gain_after(runs: list[RunSummary], epoch: int) -> Estimate:
    """What training past ``epoch`` (counted from 0) added to each seed's best validation
    accuracy so far -- the figure a run reports, its best epoch's -- over the seeds."""
    return estimate(
        [max(run.validation_accuracy) - max(run.validation_accuracy[: epoch + 1]) for run in runs]
    )


def _shown_positive(gain: Estimate) -> bool:
    """Whether a gain's 95 % interval lies wholly above 0 (never, with one seed)."""
    return gain.low is not None and gain.low > 0


def settled_text(found: Overfit) -> str | None:
    """``the epochs after 10 of 60 added +0.26 points ... (at most +0.54 ...)``, where the
    seeds (two or more) show no gain from more training before the last epoch; None
    otherwise.  A gain to the best so far cannot be negative, so what the seeds bound is
    how much it could be: the upper end of its 95 % interval."""
    gain = found.later_gain
    if gain.high is None or found.settled_epoch >= found.epochs:
        return None
    return (
        f"the epochs after {found.settled_epoch} of {found.epochs} added "
        f"{points(gain.mean)} to each seed's best validation accuracy on average (at most "
        f"{points(gain.high)}, the upper end of its 95 % interval over {found.seeds} seeds; "
        "no later stretch of epochs was shown to add anything)"
    )


def describe_overfit(found: Overfit, label: str) -> str:
    if found.turned:
        turn = (
            f"validation cost was lowest at epoch {found.lowest_epoch} of {found.epochs} and "
            f"then rose by {found.rise:.3g} while the training cost kept falling (by "
            f"{found.train_fall_after:.3g}): overfitting from epoch {found.lowest_epoch}"
        )
    elif found.rise > RISE * found.lowest:
        turn = (
            f"validation cost was lowest at epoch {found.lowest_epoch} of {found.epochs} and "
            f"then rose by {found.rise:.3g} while the training cost stayed level (it "
            f"{'fell' if found.train_fall_after >= 0 else 'rose'} by "
            f"{abs(found.train_fall_after):.3g}): the cost on unseen images rose without the "
            "training cost falling, not quite the book's picture of overfitting"
        )
    else:
        turn = (
            f"validation cost was lowest at epoch {found.lowest_epoch} of {found.epochs} and "
            f"rose by no more than {100 * RISE:.0f} % of that after it: no clear sign of "
            "overfitting in the cost"
        )
    after = settled_text(found)
    settled = (
        f", but {after}"
        if after and found.settled_epoch < found.peak_epoch
        else f", and by the end it had fallen {100 * found.drop:.2f} points (95 % interval "
        f"{100 * found.drop_low:.2f} to {100 * found.drop_high:.2f}, each seed's last epoch "
        "against its accuracy at that peak epoch; the peak is the best of the epochs, so a "
        "little of the fall is chance): overfitting cost accuracy too"
        if found.drop_low is not None and found.drop_low > 0
        else ""
    )
    side = "above" if found.gap >= 0 else "below"
    return (
        f"{label}: {turn}; validation accuracy peaked at epoch {found.peak_epoch}{settled}; "
        f"at the end training accuracy was {abs(100 * found.gap):.2f} points {side} "
        "validation accuracy"
    )


def overfitting(rows: list[TrialRow], limit: int = 4) -> Cause | None:
    """The book's sign of overfitting -- validation cost turning up while the training
    cost keeps falling -- for the best configuration and, for contrast, those that
    overfit most (all of them when there are at most ``limit``)."""
    fits = [f for f in (overfitting_of(row) for row in finished(rows)) if f]
    if not fits:
        return None
    best, others = fits[0], fits[1:]
    if len(fits) > limit:
        others = sorted((f for f in others if f.turned), key=lambda f: -f.rise / f.lowest)
        others = others[: limit - 1]
    shown = [best, *others]
    parts = [describe_overfit(found, params_label(found.row.params)) for found in shown]
    turning = [f for f in shown if f.turned]
    if turning:
        short = (
            "overfitting: validation cost turns up at epoch "
            + ", ".join(f"{f.lowest_epoch} ({params_label(f.row.params)})" for f in turning[:2])
            + " while training cost keeps falling"
        )
        if not best.turned:
            short += f"; not in the best configuration ({params_label(best.row.params)})"
    else:
        short = "no clear sign of overfitting in the validation cost"
    if best.lowest_epoch == best.epochs:
        short += (
            f"; the best configuration's validation cost was still falling at its last epoch "
            f"({best.epochs}): train longer to see where it turns"
        )
    after = settled_text(best)
    if after:
        short = f"in the best configuration, {after}; {short}"
    return Cause(
        "Overfitting",
        "The book's sign of overfitting is the validation cost turning up while the training "
        "cost keeps falling: the network goes on fitting its training images' peculiarities "
        "instead of what digits share (curves averaged over seeds; the validation cost is the "
        "cost per image without the penalty). The best configuration first, then those that "
        "overfit most:\n\n" + "\n".join(f"- {p}." for p in parts),
        short,
    )


def _regularizer(row: TrialRow) -> tuple[str, float]:
    """('l2', 0.1) or ('none', 0) from a configuration's spec."""
    spec = row.spec or {}
    for kind, field_name in (("l2", "lmbda"), ("l1", "l1"), ("dropout", "dropout")):
        if spec.get(field_name):
            return kind, float(spec[field_name])
    return "none", 0.0


def _final_accuracy(split: str) -> Callable[[RunSummary], float | None]:
    """The run's accuracy on ``split`` ("train" or "validation") at its last epoch."""

    def final(run: RunSummary) -> float | None:
        curve = getattr(run, f"{split}_accuracy")
        return None if run.diverged or not curve else curve[-1]

    return final


def _final_norm(run: RunSummary) -> float | None:
    return _final(run, "weight_norm")


def _how_each_kind(base: TrialRow, rows: list[TrialRow]) -> str | None:
    """How each kind of regularisation got its gain, at its best setting against none,
    seed by seed at the last epoch: by fitting its training images less closely, by
    smaller weights, or by neither -- which tells a weight penalty from dropout."""
    sentences = []
    for kind in ("l2", "l1", "dropout"):
        ladder = [row for row in rows if _regularizer(row)[0] == kind]
        if not ladder:
            continue
        top = max(ladder, key=lambda r: r.value)
        train, validation, norm = (
            compare_seed_by_seed(top.by_seed(measure), base.by_seed(measure))
            for measure in (_final_accuracy("train"), _final_accuracy("validation"), _final_norm)
        )
        if norm.low is None or train.low is None:
            continue
        before = statistics.fmean(base.by_seed(_final_norm).values())
        after = statistics.fmean(top.by_seed(_final_norm).values())
        fit = _direction(train, "a looser", "no looser", "a closer") + " fit to its training images"
        weights = _direction(
            norm, "smaller weights", "weights not shown to differ in size", "larger weights"
        )
        if validation.real and validation.difference > 0:
            reading = f"its gain on unseen images came with {fit} and {weights}"
            if kind == "dropout" and not (norm.real and norm.difference < 0):
                reading += (
                    ", not as a weight penalty's does (the book's explanation is that the full "
                    "network averages the many thinned networks dropout trained; that is not "
                    "measured here)"
                )
        else:
            reading = f"no gain on unseen images was shown; it brought {fit} and {weights}"
        sentences.append(
            f"{kind} at {_regularizer(top)[1]:g}: training accuracy {points(train.difference)} "
            f"({train.verdict()}), validation accuracy {points(validation.difference)} "
            f"({validation.verdict()}), weight norm {before:.1f} → {after:.1f} "
            f"({norm.verdict()}): {reading}."
        )
    if not sentences:
        return None
    return (
        "How each kind got there, at its best setting against none, seed by seed at the "
        "last epoch: " + " ".join(sentences)
    )


def _direction(test: Comparison, lower: str, same: str, higher: str) -> str:
    """One of three words for a tested difference: below zero, not shown, above zero."""
    if not test.real:
        return same
    return lower if test.difference < 0 else higher


def _final(run: RunSummary, attribute: str, layer: int = 0) -> float | None:
    """A diagnostic of the run's last epoch; None for a run that diverged (its last
    diagnostics were measured on blown-up weights) or that recorded none."""
    if run.diverged or not run.diagnostics:
        return None
    return getattr(run.diagnostics[-1].layers[layer], attribute)


def regularization(rows: list[TrialRow], key: str) -> Cause | None:
    """What each penalty did against no regularisation: the first layer's weight norm,
    the train-validation gap, the rise of the validation cost, and where it starts to
    hurt."""
    if key not in ("regularization", "lmbda", "l1", "dropout"):
        return None
    done = finished(rows)
    plain = [r for r in done if _regularizer(r)[0] == "none"]
    if not plain:
        return None
    base = plain[0]
    measured = [(row, overfitting_of(row), _final_mean(row, "weight_norm")) for row in done]
    measured = [(row, fit, norm) for row, fit, norm in measured if fit and norm is not None]
    if base not in [row for row, _, _ in measured]:
        return None
    measured.sort(key=lambda item: _regularizer(item[0]))
    lines = [
        "| regularization | validation accuracy (best epoch) | against none (seed by seed) "
        "| weight norm "
        "(first layer, last epoch) | train − validation accuracy (last epoch) | validation "
        "cost: lowest epoch, rise after it |",
        "|---|---|---|---|---|---|",
    ]
    for row, fit, norm in measured:
        kind, amount = _regularizer(row)
        test = compare_seed_by_seed(row.by_seed(), base.by_seed())
        against = "" if row is base else f"{points(test.difference)} ({test.verdict()})"
        lines.append(
            f"| {kind}{'' if kind == 'none' else f' {amount:g}'} | {pct(row.value)} | {against} "
            f"| {norm:.1f} | {100 * fit.gap:.2f} points | {fit.lowest_epoch}, {fit.rise:+.3f} |"
        )
    base_fit = overfitting_of(base)
    base_norm = _final_mean(base, "weight_norm")
    best_row, best_fit, best_norm = max(measured, key=lambda item: item[0].value)
    text = (
        "Means over seeds: the validation accuracy at each seed's best epoch (as everywhere in "
        "this report), the rest at the last epoch. A weight penalty (L2, L1) pulls every "
        "weight towards zero at each step, so the weights stay small and the network cannot "
        "fit every peculiarity of its training images; dropout instead silences random "
        "hidden neurons, so no neuron can rely on another. Where it works, the gap between "
        "training and validation accuracy narrows and the validation cost stops turning up; "
        "the table shows where it did. A narrow gap with low accuracy is not that: there the "
        "network fits its training images badly too (underfitting).\n\n" + "\n".join(lines)
    )
    for extra in (_how_each_kind(base, [row for row, _, _ in measured]), _starts_to_hurt(done)):
        if extra:
            text += "\n\n" + extra
    kind, amount = _regularizer(best_row)
    short = (
        f"{kind} {amount:g}: weight norm {base_norm:.1f} → {best_norm:.1f}, train−validation gap "
        f"{100 * base_fit.gap:.1f} → {100 * best_fit.gap:.1f} points"
        if best_row is not base
        else "no penalty beat none"
    )
    return Cause("What regularisation does", text, short)


def ablation(study_file: StudyFile, rows: list[TrialRow]) -> Cause | None:
    """What each variant of an ablation changed besides its accuracy, at the last epoch
    and seed by seed against the reference: the gap between training and validation
    accuracy (how much better the network knows its own training images than unseen
    ones) and the validation cost (how sure it is of its answers, right or wrong)."""
    found = effect(study_file, rows, VARIANT) if study_file.variants else None
    if found is None or study_file.reference not in found.best:
        return None
    reference = found.best[study_file.reference]
    gap, cost = reference.by_seed(_final_gap), reference.by_seed(_final_cost)
    if not gap or not cost:
        return None
    lines = [
        "| variant | validation accuracy | against the reference | train − validation "
        "accuracy | against the reference | validation cost | against the reference |",
        "|---|---|---|---|---|---|---|",
    ]
    shorts = []
    accuracy_tests = dict(against_reference(study_file, found))
    for name in found.values:
        row = found.best[name]
        row_gap, row_cost = row.by_seed(_final_gap), row.by_seed(_final_cost)
        if not row_gap or not row_cost:
            continue
        mean_gap, mean_cost = (
            statistics.fmean(row_gap.values()),
            statistics.fmean(row_cost.values()),
        )
        cells = ["", "", ""]
        if row is not reference:
            gap_test = compare_seed_by_seed(row_gap, gap)
            cost_test = compare_seed_by_seed(row_cost, cost)
            cells = [
                _against(accuracy_tests[name], points),
                _against(gap_test, points),
                _against(cost_test, lambda value: f"{value:+.4f}"),
            ]
            shorts.append(
                f"{name}: gap {_against(gap_test, points)}, cost {cost_test.difference:+.3f}"
            )
        lines.append(
            f"| {name} | {pct(row.value)} | {cells[0]} | {100 * mean_gap:.2f} points "
            f"| {cells[1]} | {mean_cost:.4f} | {cells[2]} |"
        )
    text = (
        "Means over seeds at the last epoch, each difference taken seed by seed against "
        f"{study_file.reference}. The gap between training and validation accuracy is what "
        "the network knows of its own training images and not of unseen ones: augmentation "
        "and regularisation narrow it. The validation cost (the log-likelihood cost on the "
        "validation images) also measures how sure the network is: training towards "
        "smoothed labels keeps it from becoming certain, which shows as a higher cost at "
        "the same accuracy.\n\n" + "\n".join(lines)
    )
    return Cause("What each variant changed", text, "; ".join(shorts) or "nothing measured")


def _against(test: Comparison, show: Callable[[float], str]) -> str:
    """A difference and its verdict, for a table cell."""
    return f"{show(test.difference)} ({test.verdict()})"


def _final_gap(run: RunSummary) -> float | None:
    train, validation = _final_accuracy("train")(run), _final_accuracy("validation")(run)
    return None if train is None or validation is None else train - validation


def _final_cost(run: RunSummary) -> float | None:
    if run.diverged or not run.validation_cost:
        return None
    return run.validation_cost[-1]


def _final_mean(row: TrialRow, attribute: str) -> float | None:
    values = [v for v in (_final(run, attribute) for run in row.runs) if v is not None]
    return statistics.fmean(values) if values else None


def _starts_to_hurt(done: list[TrialRow]) -> str | None:
    """For each penalty with several strengths: the weakest strength above the best one
    that is really worse than the best."""
    sentences = []
    for kind in ("l2", "l1", "dropout"):
        ladder = sorted((r for r in done if _regularizer(r)[0] == kind), key=_regularizer)
        if len(ladder) < 2:
            continue
        top = max(ladder, key=lambda r: r.value)
        worse = [
            r
            for r in ladder[ladder.index(top) + 1 :]
            if compare(r.accuracies, top.accuracies).real and r.value < top.value
        ]
        amount = _regularizer(top)[1]
        if worse:
            listed = ", ".join(
                f"{_regularizer(r)[1]:g} ({points(r.value - top.value)})" for r in worse
            )
            sentences.append(
                f"{kind}: best at {amount:g}; worse than that ({TEST_NAME}, each on its own) "
                f"at {listed}: from {_regularizer(worse[0])[1]:g} more of it starts to hurt."
            )
        elif ladder[-1] is not top:
            sentences.append(
                f"{kind}: best at {amount:g}; up to {_regularizer(ladder[-1])[1]:g} no stronger "
                "setting was shown to be worse."
            )
    return " ".join(sentences) or None


def vanishing_gradients(rows: list[TrialRow]) -> Cause | None:
    """In networks with two or more hidden layers: the first hidden layer's gradient
    against the last hidden layer's, at initialisation and during training, per
    activation.  Not for batch-normalised networks: there a layer's bias is followed by
    the normalisation, which subtracts it again, so its gradient is zero whatever the
    layer learns."""
    by_activation: dict[str, list[tuple[float, float]]] = {}
    for row in finished(rows):
        if (row.spec or {}).get("batch_norm"):
            continue
        for run in row.runs:
            if not run.initial or len(run.initial.hidden) < 2 or not run.diagnostics:
                continue
            start = _first_to_last(run.initial.hidden)
            ratios = [_first_to_last(d.hidden) for d in run.diagnostics]
            ratios = [r for r in ratios if math.isfinite(r)]  # not a diverged epoch's
            if not math.isfinite(start) or not ratios:
                continue
            activation = (row.spec or {}).get("activation", "?")
            by_activation.setdefault(activation, []).append((start, statistics.median(ratios)))
    if not by_activation:
        return None
    parts = [
        f"{activation}: {statistics.median(s for s, _ in pairs):.2g}× at initialisation, "
        f"{statistics.median(d for _, d in pairs):.2g}× during training"
        for activation, pairs in by_activation.items()
    ]
    short = "first/last hidden layer's gradient: " + ", ".join(
        f"{activation} {statistics.median(s for s, _ in pairs):.2g}× at initialisation "
        f"({statistics.median(d for _, d in pairs):.2g}× in training)"
        for activation, pairs in by_activation.items()
    )
    return Cause(
        "Vanishing gradient",
        "In networks with several hidden layers: the first hidden layer's gradient ‖∂C/∂b‖ "
        "(the book's chapter-5 'speed of learning') as a fraction of the last hidden "
        "layer's, medians over runs and epochs: "
        + "; ".join(parts)
        + ". Below 1 the early layers learn more slowly than the late ones: backpropagation "
        "multiplies the error by each layer's weights and activation slope on the way back, "
        "and the sigmoid's slope is at most 1/4 while a ReLU's is 1 wherever it is active.",
        short,
    )


def _first_to_last(hidden: tuple) -> float:
    last = hidden[-1].bias_gradient_norm
    return hidden[0].bias_gradient_norm / last if last > 0 else float("nan")


def failures(rows: list[TrialRow]) -> Cause | None:
    """Configurations that diverged (cost NaN/inf) or stayed near chance, with what the
    diagnostics show about them."""
    parts, failed, kinds = [], [], set()
    for row in finished(rows):
        diverged = [r for r in row.runs if r.diverged]
        label = params_label(row.params)
        if diverged or row.value < NEAR_CHANCE:
            failed.append(label)
        if diverged:
            epochs = sorted(len(r.validation_accuracy) for r in diverged)
            last = [r.train_cost[-2] for r in diverged if len(r.train_cost) > 1]
            growth = [
                r.diagnostics[-2].layers[0].weight_norm / r.initial.layers[0].weight_norm
                for r in diverged
                if r.initial and len(r.diagnostics) > 1
            ]
            parts.append(
                f"{label}: {len(diverged)} of {len(row.runs)} runs diverged (cost NaN/inf) in "
                f"epoch {_span(epochs)}"
                + (f", the last finite training cost {max(last):.3g}" if last else "")
                + (
                    f", the first layer's weights {statistics.median(growth):.3g}× their "
                    "initial norm one epoch before: the steps overshoot and the weights blow up"
                    if growth and statistics.median(growth) > BLOW_UP
                    else f", the first layer's weights {statistics.median(growth):.3g}× their "
                    "initial norm one epoch before (no blow-up measured before the NaN)"
                    if growth
                    else ""
                )
            )
            kinds.add("NaN")
        elif row.value < NEAR_CHANCE:
            clause, kind = _stuck_cause(row)
            parts.append(f"{label}: stayed near chance ({pct(row.value)}){clause}")
            kinds.add(kind)
    if not parts:
        return None
    return Cause(
        "Failures",
        "A configuration fails in one of two ways. A step too large overshoots: it drives "
        "the weighted inputs far from zero, where sigmoid and tanh units saturate and ReLUs "
        "fall silent, so almost no gradient passes back -- or it makes the weights grow until "
        "the cost is NaN. A step too small, or a deep network whose first layers receive "
        "almost no gradient, has not left chance within the epochs it was given: there the "
        "units are neither saturated nor dead, and more epochs or a larger step would tell "
        "the two apart. What the diagnostics showed in each failed configuration:\n\n"
        + "\n".join(f"- {p}." for p in parts),
        ("; ".join(failed) if len(failed) <= 2 else f"{len(failed)} configurations")
        + " diverged or stayed near chance ("
        + ", ".join(sorted(kinds))
        + ")",
    )


def _span(values: list[int]) -> str:
    return str(values[0]) if values[0] == values[-1] else f"{values[0]}–{values[-1]}"


def _stuck_cause(row: TrialRow) -> tuple[str, str]:
    """Saturated or dead hidden units after the first epoch, where measured: the clause
    for the report and a one-word kind for the index."""
    first = [r.diagnostics[0] for r in row.runs if r.diagnostics]
    if not first:
        return "; no diagnostics recorded, cause not measured", "cause not measured"
    saturated = [d.layers[0].saturated for d in first if d.layers[0].saturated is not None]
    dead = [d.layers[0].dead for d in first if d.layers[0].dead is not None]
    if saturated and statistics.fmean(saturated) > 0.5:
        share = 100 * statistics.fmean(saturated)
        return (
            f", with {share:.0f} % of the first hidden layer's sigmoid/tanh "
            "values saturated after epoch 1 (slope under 1 % of its maximum), which passes "
            "almost no gradient",
            "saturated units",
        )
    if dead and statistics.fmean(dead) > 0.5:
        share = 100 * statistics.fmean(dead)
        return (
            f", with {share:.0f} % of the first hidden layer's ReLUs dead after "
            "epoch 1 (zero for every probe image), which passes no gradient",
            "dead ReLUs",
        )
    return (
        "; the diagnostics show no majority of saturated or dead units, so the cause is not "
        "measured",
        "cause not measured",
    )
