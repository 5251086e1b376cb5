"""Findings from synthetic trial tables: ties within the seed noise, real gaps, and the
causes the diagnostics support -- each stated only where its numbers are present."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

import numpy as np
import pytest

from digitlab.experiments.causes import (
    ablation,
    failures,
    learning_slowdown,
    overfitting,
    overfitting_of,
    regularization,
    vanishing_gradients,
)
from digitlab.experiments.effects import (
    compare_seed_by_seed,
    describe_parameter,
    effect_table,
    training_compute,
    verdict,
)
from digitlab.experiments.findings import answer, findings
from digitlab.experiments.report import headline
from digitlab.experiments.results import RunSummary, TrialRow
from digitlab.experiments.statistics import (
    FAMILY_NAME,
    SIGNIFICANCE,
    compare,
    compare_paired,
    decide,
    estimate,
)
from digitlab.experiments.study_file import StudyFile
from digitlab.spec import make_spec
from digitlab.train.diagnostics import Diagnostics, LayerDiagnostics

TIE = ([0.9800, 0.9810, 0.9790], [0.9805, 0.9795, 0.9812])  # 30 vs 100 hidden units
GAP = ([0.97, 0.9705, 0.9698], [0.98, 0.9805, 0.9798])


def spec(hidden: int | list[int] = 30, **fields) -> dict:
    hidden = hidden if isinstance(hidden, list) else [hidden]
    base = {"layers": [784, *hidden, 10], "epochs": 10, "train_size": 10_000}
    return make_spec({**base, **fields}).model_dump()


def diagnostics(*bias_gradient_norms: float, weight_norm: float = 1.0, **extra) -> Diagnostics:
    """One dense layer per bias gradient norm, input side first."""
    return Diagnostics(
        tuple(
            LayerDiagnostics(f"dense {i}", weight_norm, 1.0, norm)
            for i, norm in enumerate(bias_gradient_norms, 1)
        ),
        **extra,
    )


def run(seed: int, accuracy: float, epochs: int = 3, **fields) -> RunSummary:
    """A run whose validation accuracy climbs to ``accuracy`` in its last epoch."""
    curve = [accuracy - 0.01 * (epochs - 1 - e) for e in range(epochs)]
    row = {
        "seed": seed,
        "best_validation_accuracy": accuracy,
        "best_epoch": epochs,
        "test_accuracy": accuracy,
        "seconds": 1.0,
        "diverged": False,
        "train_accuracy": [a + 0.01 for a in curve],
        "validation_accuracy": curve,
        "train_cost": [0.5 / (e + 1) for e in range(epochs)],
        "validation_cost": [0.6 / (e + 1) for e in range(epochs)],
    }
    return RunSummary(**{**row, **fields})


def trial(number: int, params: dict, accuracies: list[float], spec_fields: dict, **run_fields):
    runs = [run(seed, a, **run_fields) for seed, a in enumerate(accuracies)]
    return TrialRow(number, params, "complete", statistics.fmean(accuracies), runs, spec_fields)


def best_first(rows: list[TrialRow]) -> list[TrialRow]:
    """As trial_rows returns them."""
    return sorted(rows, key=lambda r: -r.value)


def hidden_study() -> StudyFile:
    return StudyFile.model_validate(
        {
            "name": "hidden",
            "question": "How many hidden neurons?",
            "space": {"hidden_units": [30, 100]},
            "search": {"sampler": "grid", "repeats": 3},
        }
    )


def hidden_rows(small: list[float], large: list[float]) -> list[TrialRow]:
    return best_first(
        [
            trial(0, {"hidden_units": 30}, small, spec(30)),
            trial(1, {"hidden_units": 100}, large, spec(100)),
        ]
    )


def by_units(rows: list[TrialRow]) -> dict[int, TrialRow]:
    return {r.params["hidden_units"]: r for r in rows}


# statistics -------------------------------------------------------------------------------


def test_compare_without_noise_or_without_repeats() -> None:
    same = compare([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    assert same.difference == 0 and not same.real
    different = compare([0.1, 0.1, 0.1], [0.098, 0.098, 0.098])
    assert different.real and different.difference == pytest.approx(0.002)
    single = compare([0.97], [0.98])
    assert single.p_value is None and not single.real
    assert compare([0.97], [0.98, 0.99]).p_value is None


def test_planted_values_compare_as_intended() -> None:
    assert not compare(*TIE).real
    gap = compare(*GAP)
    assert gap.real and gap.difference == pytest.approx(-0.01)


def test_estimate_interval() -> None:
    one = estimate([0.9])
    assert (one.mean, one.low, one.high, one.half_width, one.runs) == (0.9, None, None, None, 1)
    three = estimate(GAP[1])
    assert three.low < three.minimum <= three.mean <= three.maximum < three.high
    assert three.half_width == pytest.approx(three.high - three.mean)
    with pytest.raises(ValueError, match="no runs"):
        estimate([])


def test_decide_prefers_the_higher_mean_at_equal_cost() -> None:
    runs = {"a": TIE[0], "b": TIE[1]}
    chosen = decide(["a", "b"], runs.__getitem__, lambda _: 1.0)
    assert (chosen.best, chosen.ties, chosen.recommended, chosen.tested) == ("b", ["a"], "b", True)


def test_run_summary_round_trip_keeps_diagnostics() -> None:
    summary = run(
        0,
        0.95,
        initial=diagnostics(0.1, 0.2),
        diagnostics=[diagnostics(0.3, 0.4, output_stuck=0.1)] * 3,
    )
    assert RunSummary.from_dict(summary.to_dict()) == summary


# effects ----------------------------------------------------------------------------------


def test_training_compute_is_parameters_times_images_times_epochs() -> None:
    row = TrialRow(0, {}, "complete", 0.9, [], spec(30, epochs=4, train_size=1000))
    assert training_compute(row) == (784 * 30 + 30 + 30 * 10 + 10) * 1000 * 4
    full = TrialRow(0, {}, "complete", 0.9, [], spec(30, epochs=1, train_size=None, expand=True))
    assert training_compute(full) == (784 * 30 + 30 + 30 * 10 + 10) * 50_000 * 5
    assert training_compute(TrialRow(0, {}, "complete", 0.9)) == float("inf")


def test_planted_tie_is_called_a_tie_and_the_cheaper_network_recommended() -> None:
    rows = hidden_rows(*TIE)
    units = by_units(rows)
    assert units[30].value < units[100].value  # the cheaper one is a hair lower
    v = verdict(rows)
    assert v.tested and v.best is units[100]
    assert v.ties == [units[30]] and v.recommended is units[30]

    text = describe_parameter(hidden_study(), rows, "hidden_units")
    assert "best mean at hidden_units = 100 (98.04 %)" in text
    assert f"Not shown to differ from it ({FAMILY_NAME}): 30: -0.04 points (95 % interval" in text
    assert "**Use hidden_units = 30**: not shown to differ from 100, at 0.3× its training" in text
    assert "Within noise: 30 → 100 +0.04 points" in text
    assert "worse by more than" not in text and "Real steps" not in text


def test_planted_gap_names_the_winner_even_though_it_costs_more() -> None:
    rows = hidden_rows(*GAP)
    units = by_units(rows)
    assert training_compute(units[100]) > 3 * training_compute(units[30])
    v = verdict(rows)
    assert v.tested and v.best is units[100] and v.recommended is units[100]
    assert v.ties == []

    text = describe_parameter(hidden_study(), rows, "hidden_units")
    assert "best mean at hidden_units = 100 (98.01 %)" in text
    assert f"Every other value is worse ({FAMILY_NAME})." in text
    assert "Real steps: 30 → 100 +1.00 points (p < 0.001)" in text
    assert "Not shown to differ" not in text and "**Use" not in text


def test_a_table_cell_says_untested_rather_than_within_noise_for_one_seed() -> None:
    assert compare([0.97], [0.95]).verdict() == "untested: one seed"
    assert compare([0.97, 0.9702], [0.95, 0.9504]).verdict().startswith("p ")
    assert compare([0.97, 0.95], [0.96, 0.955]).verdict() == "not shown to differ"


def test_one_seed_per_configuration_tells_nothing_apart() -> None:
    rows = hidden_rows([0.97], [0.98])
    v = verdict(rows)
    assert not v.tested and v.ties == [] and v.best is v.recommended is by_units(rows)[100]
    text = describe_parameter(hidden_study(), rows, "hidden_units")
    assert "nothing can be told apart from noise (quick mode)" in text
    assert (
        "Not shown to differ" not in text
        and "worse by more than" not in text
        and "**Use" not in text
    )
    assert "±" not in effect_table(hidden_study(), rows, "hidden_units")

    cells = answer(hidden_study(), rows)
    assert cells.noise == "not measured (one seed)"
    assert cells.use == (
        "none: one seed each, so no difference was tested (highest: hidden_units=100, 98.00 %)"
    )
    assert headline(verdict(rows), quick=True) == (
        "quick look, one seed each, no difference tested; highest: hidden_units=100 — "
        "validation 98.00 %, test 98.00 %"
    )


def test_effect_table_has_a_row_per_value_with_its_interval() -> None:
    rows = hidden_rows(*GAP)
    lines = effect_table(hidden_study(), rows, "hidden_units").splitlines()
    assert lines[0] == "| hidden_units | validation accuracy |"
    half = estimate(GAP[0]).half_width
    assert lines[2] == f"| 30 | 97.01 % ± {100 * half:.2f} |"
    assert lines[3].startswith("| 100 | 98.01 % ± ")


def test_effect_is_stated_within_each_value_of_a_crossed_hyperparameter() -> None:
    """hidden_units x cost: with cross-entropy 100 units win beyond the noise, with the quadratic
    cost the two tie; each is said separately, and the table has a column per cost."""
    study = StudyFile.model_validate(
        {
            "name": "crossed",
            "space": {"hidden_units": [30, 100], "cost": ["quadratic", "cross-entropy"]},
        }
    )
    quad, ce = {"cost": "quadratic"}, {"cost": "cross-entropy"}
    rows = best_first(
        [
            trial(0, {"hidden_units": 30, "cost": "cross-entropy"}, GAP[0], spec(30, **ce)),
            trial(1, {"hidden_units": 100, "cost": "cross-entropy"}, GAP[1], spec(100, **ce)),
            trial(
                2, {"hidden_units": 30, "cost": "quadratic"}, [0.95, 0.951, 0.949], spec(30, **quad)
            ),
            trial(
                3,
                {"hidden_units": 100, "cost": "quadratic"},
                [0.9505, 0.9495, 0.9512],
                spec(100, **quad),
            ),
        ]
    )
    text = describe_parameter(study, rows, "hidden_units")
    assert "| hidden_units | cost = quadratic | cost = cross-entropy |" in text
    lines = {line.split(":", 1)[0]: line for line in text.splitlines() if line.startswith("- ")}
    assert (
        f"Every other value is worse ({FAMILY_NAME})"
        in lines["- Overall (each value at the best setting of the other hyperparameters)"]
    )
    assert f"Every other value is worse ({FAMILY_NAME})" in lines["- With cost = cross-entropy"]
    assert f"Not shown to differ from it ({FAMILY_NAME}): 30" in lines["- With cost = quadratic"]
    assert "**Use" not in lines["- With cost = quadratic"]  # no compute note within a group


def ablation_study() -> StudyFile:
    return StudyFile.model_validate(
        {
            "name": "ablation",
            "variants": {
                "all": {},
                "no dropout": {"dropout": 0.0},
                "small": {"layers": "784,10,10"},
            },
            "search": {"repeats": 3},
        }
    )


def test_an_ablation_compares_every_variant_with_the_first() -> None:
    study = ablation_study()
    assert list(study.space) == ["variant"] and study.reference == "all"
    rows = best_first(
        [
            trial(0, {"variant": "all"}, GAP[1], spec(30, dropout=0.5)),
            trial(1, {"variant": "no dropout"}, TIE[1], spec(30)),
            trial(2, {"variant": "small"}, GAP[0], spec(10, dropout=0.5)),
        ]
    )
    text = describe_parameter(study, rows, "variant")
    assert "Against **all**, the reference (seed by seed, a paired t-test" in text
    no_dropout = next(line for line in text.splitlines() if "no dropout (dropout=0)" in line)
    assert "not shown to differ" in no_dropout
    assert f"{100 * compare(TIE[1], GAP[1]).difference:+.2f} points" in no_dropout
    small = next(line for line in text.splitlines() if "small (layers=784,10,10)" in line)
    assert "-1.00 points" in small and small.endswith("worse.")
    without_reference = [r for r in rows if r.params["variant"] != "all"]
    unfinished = describe_parameter(study, without_reference, "variant")
    assert "Against all: it has not finished yet." in unfinished
    alone = describe_parameter(study, [r for r in rows if r.params["variant"] == "all"], "variant")
    assert alone.endswith("  - no other variant has finished yet.")

    cells = answer(study, rows)
    assert cells.effect.startswith("all 98.01 %; no dropout +0.03 points (not shown to differ); ")
    assert cells.effect.endswith("; small -1.00 points (p < 0.001)")
    assert cells.changes == "variant all / no dropout / small"  # every variant named
    assert answer(study, without_reference).effect.endswith("(variant=no dropout)")


# causes -----------------------------------------------------------------------------------


def overfit_row(validation_cost: list[float], train_cost: list[float]) -> TrialRow:
    epochs = len(validation_cost)
    return trial(
        0,
        {"eta": 0.5},
        [0.97, 0.971, 0.969],
        spec(30),
        epochs=epochs,
        validation_cost=validation_cost,
        train_cost=train_cost,
    )


def test_planted_overfitting_is_found_at_the_epoch_of_the_minimum() -> None:
    row = overfit_row([0.50, 0.40, 0.35, 0.38, 0.42, 0.45], [0.5, 0.35, 0.25, 0.18, 0.12, 0.08])
    found = overfitting_of(row)
    assert found.turned and found.lowest_epoch == 3 and found.epochs == 6
    assert found.rise == pytest.approx(0.10) and found.train_fall_after == pytest.approx(0.17)
    cause = overfitting([row])
    assert "lowest at epoch 3 of 6" in cause.text and "overfitting from epoch 3" in cause.text
    assert cause.short.startswith("overfitting: validation cost turns up at epoch 3 (eta=0.5)")


@pytest.mark.parametrize(
    "validation_cost",
    [[0.5, 0.4, 0.35, 0.33, 0.32], [0.5, 0.5, 0.5, 0.5, 0.5], [0.5, 0.4, 0.35, 0.351, 0.352]],
    ids=["falling", "flat", "within-rise"],
)
def test_no_overfitting_without_a_clear_rise(validation_cost: list[float]) -> None:
    row = overfit_row(validation_cost, [0.5, 0.4, 0.3, 0.2, 0.1])
    assert not overfitting_of(row).turned
    cause = overfitting([row])
    assert "no clear sign of overfitting" in cause.text
    assert cause.short.startswith("no clear sign of overfitting in the validation cost")
    falling = validation_cost[-1] < min(validation_cost[:-1])
    assert ("still falling at its last epoch (5)" in cause.short) == falling


def test_overfitting_needs_curves() -> None:
    row = overfit_row([0.5], [0.5])
    assert overfitting_of(row) is None and overfitting([row]) is None


def slowdown_row(number, cost, eta, accuracies, output_gradient, first_epoch, stuck):
    runs = [
        run(
            seed,
            a,
            epochs=2,
            validation_accuracy=[first_epoch + 0.001 * seed, a],
            initial=diagnostics(0.5, output_gradient),
            diagnostics=[diagnostics(0.5, output_gradient, output_stuck=stuck)] * 2,
        )
        for seed, a in enumerate(accuracies)
    ]
    params = {"cost": cost, "eta": eta}
    return TrialRow(
        number, params, "complete", statistics.fmean(accuracies), runs, spec(30, **params)
    )


def slowdown_rows(
    eta: float = 0.5,
    quadratic=(0.95, 0.951, 0.949),
    cross_entropy=(0.96, 0.961, 0.959),
    number: int = 0,
) -> list[TrialRow]:
    """Quadratic against cross-entropy, same seeds: the output layer's initial bias
    gradient is 0.02 with the quadratic cost, 0.1 with cross-entropy."""
    return [
        slowdown_row(number, "quadratic", eta, list(quadratic), 0.02, 0.60, 0.30),
        slowdown_row(number + 1, "cross-entropy", eta, list(cross_entropy), 0.1, 0.90, 0.02),
    ]


def test_learning_slowdown_states_the_gradient_ratio() -> None:
    cause = learning_slowdown(best_first(slowdown_rows()))
    assert "‖∂C/∂b‖ was 0.20× as large with the quadratic cost" in cause.text
    assert "(median of 3 runs)" in cause.text
    assert (
        "the quadratic cost reached 60.10 % validation accuracy and cross-entropy 90.10 %"
        in cause.text
    )
    assert cause.text.count("The evidence: after one epoch") == 1
    assert "30.0 % of the quadratic network's outputs were saturated" in cause.text
    assert "output gradient 0.20× cross-entropy's" in cause.short
    assert "best learning rate differs" not in cause.text


def test_learning_slowdown_compares_the_costs_rate_by_rate() -> None:
    """Cross-entropy ahead at the small rate, the quadratic cost at the large one, seed by
    seed: the quadratic cost wants larger steps, and the index says where that was seen."""
    small = slowdown_rows(0.5, (0.95, 0.951, 0.949), (0.96, 0.962, 0.9595))
    large = slowdown_rows(3.0, (0.97, 0.971, 0.969), (0.94, 0.943, 0.939), number=2)
    cause = learning_slowdown(best_first(small + large))
    assert "η = 3 for quadratic (97.00 %), η = 0.5 for cross-entropy (96.05 %)" in cause.text
    assert "at their best the two costs differ (+0.95 points" in cause.text
    ahead = (
        "cross-entropy ahead at η 0.5 (+1.05 points); quadratic ahead at η 3 (+2.93 points): "
        "the quadratic cost wants larger steps, as its smaller output gradient predicts"
    )
    assert cause.short.endswith(ahead) and ahead in cause.text


def test_rates_where_the_costs_tie_or_fail_are_no_evidence() -> None:
    tie = slowdown_rows(3.0, (0.97, 0.971, 0.969), (0.9695, 0.972, 0.9685), number=2)
    cause = learning_slowdown(best_first(slowdown_rows(0.5, (0.95, 0.951, 0.949)) + tie))
    assert cause.short.endswith("cross-entropy ahead at η 0.5 (+1.00 points)")
    failed = slowdown_rows(30.0, (0.10, 0.098, 0.101), (0.30, 0.28, 0.35), number=2)
    cause = learning_slowdown(best_first(slowdown_rows(0.5, (0.95, 0.951, 0.949)) + failed))
    assert "30" not in cause.short.split("σ' factor")[1]  # near chance: left out


def test_learning_rates_are_not_compared_with_one_seed_each() -> None:
    one_seed = slowdown_rows(0.5, (0.95,), (0.96,)) + slowdown_rows(3.0, (0.97,), (0.94,), 2)
    cause = learning_slowdown(best_first(one_seed))
    assert "ahead at" not in cause.short and "ahead at" not in cause.text


def test_learning_slowdown_says_nothing_without_a_quadratic_pair() -> None:
    quadratic, cross_entropy = slowdown_rows()
    assert learning_slowdown([cross_entropy]) is None
    other_eta = slowdown_rows(eta=3.0)[1]
    assert learning_slowdown([quadratic, other_eta]) is None  # they differ in eta too
    for row in (quadratic, cross_entropy):
        row.runs = [replace(r, initial=None) for r in row.runs]
    assert learning_slowdown([quadratic, cross_entropy]) is None


def test_vanishing_gradient_states_the_first_to_last_hidden_ratio() -> None:
    epochs = [diagnostics(0.02, 0.1, 0.5), diagnostics(0.03, 0.1, 0.5), diagnostics(0.05, 0.1, 0.5)]
    deep = trial(
        0,
        {"hidden_layers": 2},
        [0.95, 0.951, 0.949],
        spec([30, 30]),
        initial=diagnostics(0.01, 0.1, 0.5),
        diagnostics=epochs,
    )
    cause = vanishing_gradients([deep])
    assert "sigmoid: 0.1× at initialisation, 0.3× during training" in cause.text
    assert cause.short == (
        "first/last hidden layer's gradient: sigmoid 0.1× at initialisation (0.3× in training)"
    )

    shallow = trial(
        1,
        {"hidden_layers": 1},
        [0.95, 0.951, 0.949],
        spec(30),
        initial=diagnostics(0.01, 0.5),
        diagnostics=[diagnostics(0.02, 0.5)],
    )
    assert vanishing_gradients([shallow]) is None

    # Batch norm subtracts a layer's bias again, so its gradient is zero: no ratio to state.
    normalised = replace(deep, spec=spec([30, 30], batch_norm=True))
    assert vanishing_gradients([normalised]) is None


def test_a_diverged_epoch_does_not_turn_the_vanishing_gradient_into_nan() -> None:
    """A run that diverged has the NaN diagnostics of its last epoch (the probe measured
    the blown-up weights); like overfitting_of, the median should leave them out."""
    healthy = run(
        0,
        0.95,
        initial=diagnostics(0.01, 0.1, 0.5),
        diagnostics=[diagnostics(0.03, 0.1, 0.5)] * 3,
    )
    exploded = run(
        1,
        0.94,
        epochs=2,
        diverged=True,
        train_cost=[0.5, math.nan],
        initial=diagnostics(0.01, 0.1, 0.5),
        diagnostics=[diagnostics(0.03, 0.1, 0.5), diagnostics(math.nan, math.nan, math.nan)],
    )
    row = TrialRow(0, {"hidden_layers": 2}, "diverged", 0.945, [healthy, exploded], spec([30, 30]))
    cause = vanishing_gradients([row])
    assert "nan" not in cause.text and "nan" not in cause.short
    assert "sigmoid: 0.1× at initialisation, 0.3× during training" in cause.text


def test_a_diverged_run_is_reported_with_its_epoch() -> None:
    exploded = run(
        0,
        0.91,
        validation_accuracy=[0.90, 0.91, 0.098],
        train_cost=[0.5, 0.4, math.nan],
        diverged=True,
        initial=diagnostics(1.0, 1.0, weight_norm=10.0),
        diagnostics=[
            diagnostics(1.0, 1.0, weight_norm=12.0),
            diagnostics(1.0, 1.0, weight_norm=50.0),
            diagnostics(math.nan, math.nan, weight_norm=math.inf),
        ],
    )
    fine = [run(seed, 0.95) for seed in (1, 2)]
    row = TrialRow(0, {"eta": 100.0}, "diverged", 0.9367, [exploded, *fine], spec(30, eta=100.0))
    healthy = trial(1, {"eta": 0.5}, [0.95, 0.951, 0.949], spec(30))
    cause = failures([healthy, row])
    assert "eta=100: 1 of 3 runs diverged (cost NaN/inf) in epoch 3" in cause.text
    assert "the last finite training cost 0.4" in cause.text
    assert "the first layer's weights 5× their initial norm one epoch before" in cause.text
    assert "eta=0.5" not in cause.text
    assert cause.short == "eta=100 diverged or stayed near chance (NaN)"


def test_a_run_near_chance_names_its_saturated_units() -> None:
    stuck = trial(
        0,
        {"eta": 30.0},
        [0.1, 0.1, 0.1],
        spec(30, eta=30.0),
        diagnostics=[Diagnostics((LayerDiagnostics("dense 1", 1, 1, 1, saturated=0.98),))],
    )
    cause = failures([stuck])
    assert "eta=30: stayed near chance (10.00 %), with 98 % of the first hidden layer" in cause.text


def test_no_failures_says_nothing() -> None:
    assert failures(hidden_rows(*GAP)) is None


def regularization_rows() -> list[TrialRow]:
    def row(number, text, accuracies, final_norm, lmbda):
        return trial(
            number,
            {"regularization": text},
            accuracies,
            spec(30, lmbda=lmbda),
            diagnostics=[
                diagnostics(0.1, 0.1, weight_norm=final_norm + 5),
                diagnostics(0.1, 0.1, weight_norm=final_norm),
            ],
        )

    return best_first(
        [
            row(0, "none", [0.965, 0.966, 0.964], 40.0, 0.0),
            row(1, "l2:5", [0.98, 0.981, 0.979], 12.5, 5.0),
        ]
    )


def test_regularization_states_the_weight_norms_of_the_last_epoch() -> None:
    cause = regularization(regularization_rows(), "regularization")
    assert "| none | 96.50 % |  | 40.0 |" in cause.text
    assert "| l2 5 | 98.00 % | +1.50 points (p < 0.001) |" in cause.text
    assert "| 12.5 |" in cause.text
    assert cause.short.startswith("l2 5: weight norm 40.0 → 12.5")


def regularized_row(number: int, text: str, fields: dict, finals: list[tuple]) -> TrialRow:
    """A configuration whose runs end at (training accuracy, validation accuracy, weight
    norm), one triple per seed."""
    runs = [
        run(seed, validation, epochs=2, train_accuracy=[train - 0.05, train],
            validation_accuracy=[validation - 0.05, validation],
            diagnostics=[diagnostics(0.1, weight_norm=norm + 5),
                         diagnostics(0.1, weight_norm=norm)])
        for seed, (train, validation, norm) in enumerate(finals)
    ]  # fmt: skip
    mean = statistics.fmean(validation for _, validation, _ in finals)
    return TrialRow(number, {"regularization": text}, "complete", mean, runs, spec(30, **fields))


def test_each_kind_of_regularisation_says_how_it_got_its_gain() -> None:
    """A weight penalty gains on unseen images with a looser fit and smaller weights;
    dropout here with neither, which the text tells apart and does not explain away."""
    rows = best_first(
        [
            regularized_row(0, "none", {},
                            [(1.0, 0.84, 150), (1.0, 0.85, 155), (0.999, 0.83, 160)]),
            regularized_row(1, "l2:3", {"lmbda": 3.0},
                            [(0.98, 0.89, 13), (0.975, 0.895, 13.5), (0.978, 0.885, 12.8)]),
            regularized_row(2, "dropout:0.2", {"dropout": 0.2},
                            [(1.0, 0.865, 158), (1.0, 0.87, 162), (0.999, 0.86, 166)]),
        ]
    )  # fmt: skip
    text = regularization(rows, "regularization").text
    assert (
        "l2 at 3: training accuracy -2.20 points (p = 0.0048), validation accuracy +5.00 points "
        "(p = 0.0033), "
        in text
        and "weight norm 155.0 → 13.1 (p < 0.001): its gain on unseen images came with a looser "
        "fit to its training images and smaller weights."
        in text
    )
    assert (
        "dropout at 0.2: training accuracy +0.00 points (not shown to differ), validation "
        "accuracy +2.50 points (p = 0.013), weight norm 155.0 → 162.0 (p = 0.0067): its gain on "
        "unseen images came with no looser fit to its training images and larger weights, not "
        "as a weight penalty's does (the book's explanation" in text
    )
    # without a gain, it says so rather than how the gain came
    flat = [r for r in rows if r.params["regularization"] != "l2:3"]
    flat[0] = regularized_row(
        2,
        "dropout:0.2",
        {"dropout": 0.2},
        [(1.0, 0.845, 158), (1.0, 0.84, 162), (0.999, 0.835, 166)],
    )
    assert "dropout at 0.2: training accuracy" in (
        text := regularization(flat, "regularization").text
    )
    assert "no gain on unseen images was shown; it brought no looser fit" in text


def test_a_diverged_seed_does_not_make_the_weight_norm_nan() -> None:
    """The weight norm "at the end" of a diverged run is that of its blown-up weights."""
    rows = regularization_rows()
    l2 = next(r for r in rows if r.params["regularization"] == "l2:5")
    last = diagnostics(math.nan, math.nan, weight_norm=math.nan)
    l2.runs[2] = replace(l2.runs[2], diverged=True, diagnostics=[l2.runs[2].diagnostics[0], last])
    l2.state = "diverged"
    cause = regularization(rows, "regularization")
    assert "nan" not in cause.text and "nan" not in cause.short
    assert "| 12.5 |" in cause.text


def test_regularization_needs_a_regularization_key_and_a_plain_baseline() -> None:
    rows = regularization_rows()
    assert regularization(rows, "eta") is None
    assert (
        regularization([r for r in rows if r.params["regularization"] != "none"], "lmbda") is None
    )


# findings ---------------------------------------------------------------------------------


def test_answer_recommends_the_cheaper_of_a_tie() -> None:
    rows = hidden_rows(*TIE)
    cells = answer(hidden_study(), rows)
    assert cells.changes == "hidden_units 30 / 100"
    assert cells.effect == "98.00 % (hidden_units=30) to 98.04 % (hidden_units=100)"
    # the noise a difference is read against: the interval of that difference, not of a mean
    width = (lambda t: (t.high - t.low) / 2)(compare(*TIE))
    assert cells.noise == (
        f"±{100 * width:.2f} points (95 % interval of a difference against the best mean; "
        "median over the configurations)"
    )
    assert cells.use == (
        "hidden_units=30 (98.00 %): the cheapest of 2 not shown to differ from the best mean"
    )
    assert headline(verdict(rows), quick=False) == (
        "use: hidden_units=30 — validation 98.00 %, test 98.00 % (1 other not shown to differ)"
    )


def test_answer_when_the_best_is_also_the_cheapest_of_a_tie() -> None:
    small, large = TIE
    cells = answer(hidden_study(), hidden_rows(large, small))  # the small network leads now
    assert cells.use == (
        "any of 2 not shown to differ; hidden_units=30 has the best mean (98.04 %) and none "
        "of the others is cheaper"
    )


def test_answer_on_a_real_gap_uses_the_winner() -> None:
    cells = answer(hidden_study(), hidden_rows(*GAP))
    assert cells.use == "hidden_units=100 (98.01 %): every other worse beyond the noise"


def test_answer_without_finished_trials_is_none() -> None:
    rows = [TrialRow(0, {"hidden_units": 30}, "running", None)]
    assert answer(hidden_study(), rows) is None


def test_findings_collect_effects_noise_and_causes() -> None:
    rows = hidden_rows(*TIE)
    found = findings(hidden_study(), rows)
    assert [key for key, _ in found.effects] == ["hidden_units"]
    assert "Not shown to differ from it" in found.effects[0][1]
    assert len(found.notes) == 1 and found.notes[0].startswith("**noise**")
    [cause] = found.causes
    assert cause.short.startswith("no clear sign of overfitting in the validation cost")


def test_a_study_continued_with_fewer_repeats_says_how_many_seeds_each_ran() -> None:
    from digitlab.experiments.report import describe_runs, runs_per_configuration

    rows = [trial(0, {"variant": "a"}, [0.98] * 4, spec()), trial(1, {}, [0.97] * 3, spec())]
    assert runs_per_configuration(rows, repeats=4) == (3, 4)
    assert describe_runs(3, 4, 0) == "3–4 runs per configuration (seeds 0–2, some 0–3)"
    assert runs_per_configuration(rows[:1], repeats=3) == (4, 4)
    assert runs_per_configuration([], repeats=2) == (2, 2)
    assert describe_runs(2, 2, 5) == "2 run(s) per configuration (seeds 5–6)"
    assert describe_runs(1, 1, 0) == "1 run per configuration (seed 0)"


def test_pairs_by_seed_show_an_effect_smaller_than_the_seed_noise() -> None:
    """Seeds spread 0.2 points; the variant adds 0.05 at each (give or take 0.01): Welch's
    test cannot see it, the paired test does -- and the ablation uses the paired one."""
    reference = [0.9900, 0.9920, 0.9910, 0.9930]
    variant = [0.9906, 0.9924, 0.9915, 0.9935]
    assert not compare(variant, reference).real
    paired = compare_paired(variant, reference)
    assert paired.real and paired.paired and paired.difference == pytest.approx(0.0005)
    assert paired.low < 0.0005 < paired.high
    assert compare_paired([0.99], [0.98]).p_value is None
    # two seeds one image apart each (0.9970 - 0.9969 and 0.9968 - 0.9967, as in the
    # moving average's table): the pairs have no spread, so Welch's test on the sides'
    # own spread judges it -- not shown to differ, where zero spread once read as certain
    agreeing = compare_paired([0.9970, 0.9968], [0.9969, 0.9967])
    assert agreeing == compare([0.9970, 0.9968], [0.9969, 0.9967]) and not agreeing.real
    assert agreeing.difference == pytest.approx(0.0001) and agreeing.low < 0 < agreeing.high
    alike = compare_paired([0.9970, 0.9968], [0.9970, 0.9968])
    assert alike.p_value == 1.0 and not alike.real
    with pytest.raises(ValueError, match="pairs"):
        compare_paired([0.99, 0.98], [0.98])

    study = ablation_study()
    rows = [
        trial(0, {"variant": "all"}, reference, spec(30, dropout=0.5)),
        trial(1, {"variant": "no dropout"}, variant, spec(30)),
    ]
    text = describe_parameter(study, best_first(rows), "variant")
    assert "paired t-test" in text
    line = next(line for line in text.splitlines() if "no dropout (dropout=0)" in line)
    assert line.endswith("; better.") and "Welch" not in line


def test_variants_without_two_shared_seeds_fall_back_to_welch() -> None:
    study = ablation_study()
    reference = trial(0, {"variant": "all"}, GAP[1], spec(30, dropout=0.5))
    other = trial(1, {"variant": "small"}, GAP[0], spec(10, dropout=0.5))
    other = replace(other, runs=[replace(r, seed=r.seed + 10) for r in other.runs])
    text = describe_parameter(study, best_first([reference, other]), "variant")
    line = next(line for line in text.splitlines() if "small (layers=784,10,10)" in line)
    assert ", Welch's t-test; worse." in line and "paired t-test" not in text


def test_an_ablation_says_what_each_variant_changed_in_the_gap_and_the_cost() -> None:
    """Smoothed labels: the same accuracy, a higher validation cost at every seed."""
    study = ablation_study()
    sure = trial(0, {"variant": "all"}, GAP[1], spec(30, dropout=0.5))
    unsure = trial(1, {"variant": "no dropout"}, GAP[1], spec(30), validation_cost=[0.6, 0.3, 0.25])
    cause = ablation(study, [unsure, sure])
    assert cause.title == "What each variant changed"
    table = [line for line in cause.text.splitlines() if line.startswith("| ")]
    assert table[1] == "| all | 98.01 % |  | 1.00 points |  | 0.2000 |  |"
    assert table[2] == (
        "| no dropout | 98.01 % | +0.00 points (not shown to differ) | 1.00 points "
        "| +0.00 points (not shown to differ) | 0.2500 | +0.0500 (p < 0.001) |"
    )
    assert cause.short == "no dropout: gap +0.00 points (not shown to differ), cost +0.050"
    assert ablation(hidden_study(), hidden_rows(*GAP)) is None  # no variants: nothing to say
    assert ablation(study, [unsure]) is None  # the reference has not finished
    assert "What each variant changed" in [c.title for c in findings(study, [sure, unsure]).causes]


def test_the_speed_of_learning_plot_leaves_out_batch_normalised_networks(tmp_path) -> None:
    from digitlab.experiments.plots import gradient_plot

    deep = trial(
        0,
        {"hidden_layers": 2},
        [0.95, 0.951, 0.949],
        spec([30, 30]),
        initial=diagnostics(0.01, 0.1, 0.5),
        diagnostics=[diagnostics(0.02, 0.1, 0.5)] * 3,
    )
    assert gradient_plot([deep], tmp_path / "plain.png")
    assert (tmp_path / "plain.png").stat().st_size > 0
    normalised = replace(deep, spec=spec([30, 30], batch_norm=True))
    assert not gradient_plot([normalised], tmp_path / "normalised.png")
    assert not (tmp_path / "normalised.png").exists()


def test_a_quick_look_says_so_under_each_figure(tmp_path) -> None:
    """The note is drawn under the figure in red: a copied-out plot of a quick study
    still says what it is."""
    from PIL import Image

    from digitlab.experiments.plots import history_plot

    rows = [trial(n, {"hidden_units": 10 + n}, [0.9 + n / 100], spec([30])) for n in range(3)]
    history_plot(rows, tmp_path / "plain.png")
    history_plot(rows, tmp_path / "quick.png", note="quick look (500 training images, 1 epoch)")
    plain = np.asarray(Image.open(tmp_path / "plain.png").convert("RGB")).astype(int)
    quick = np.asarray(Image.open(tmp_path / "quick.png").convert("RGB")).astype(int)
    assert quick.shape[0] > plain.shape[0]  # a line more, under the plot
    bottom = quick[plain.shape[0] :]
    red = (bottom[..., 0] > 150) & (bottom[..., 1] < 100) & (bottom[..., 2] < 100)
    assert red.sum() > 50


def test_holm_reads_many_tests_together() -> None:
    from digitlab.experiments.statistics import holm

    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5] and holm([]) == []
    assert holm([0.3, 0.4]) == pytest.approx([0.6, 0.6]) and max(holm([0.9, 0.8])) == 1.0


def test_every_other_worse_also_says_how_many_stay_worse_read_together() -> None:
    """Three configurations each just past 5 % against the best: each is worse on its
    own test (so none is recommended in the best's place), and the sentence saying so
    adds that read together, as three tries at finding a difference, none stays worse."""
    best = [0.950, 0.952, 0.954]
    marginal = [[0.946, 0.947, 0.948], [0.945, 0.946, 0.947], [0.944, 0.946, 0.948]]
    for runs in marginal:
        assert 0.01 < compare(best, runs).p_value < SIGNIFICANCE
    found = decide([best, *marginal], lambda r: r, lambda r: 0)
    assert found.ties == [] and found.compared == 3 and found.worse_together == 0
    assert (
        found.together() == "; read together (Holm's correction for 3 tests), 0 of those 3 stay so"
    )
    far = [[0.90, 0.901, 0.902], [0.80, 0.801, 0.802]]
    clear = decide([best, *far], lambda r: r, lambda r: 0)
    assert clear.together() == "; read together (Holm's correction for 2 tests), all 2 stay so"


def test_the_report_names_what_every_run_shared() -> None:
    from digitlab.experiments.report import fixed_settings

    rows = [
        trial(0, {"eta": 0.1}, [0.95, 0.96], spec(30, eta=0.1, init="large")),
        trial(1, {"eta": 0.5}, [0.97, 0.96], spec(30, eta=0.5, init="large")),
    ]
    text = fixed_settings(rows)
    assert text.startswith("The same in every run: layers=784,30,10, activation=sigmoid, ")
    assert "init=large" in text and "epochs=10" in text and "train_size=10000" in text
    assert "eta=" not in text and "seed=" not in text and "momentum" not in text
    assert fixed_settings([]) == ""


def test_a_fall_after_the_peak_is_measured_seed_by_seed() -> None:
    """The fall from the peak epoch to the last is tested on each seed's own two
    epochs, not set beside one mean's interval."""
    from digitlab.experiments.causes import describe_overfit, overfitting_of

    falling = [0.90, 0.95, 0.93]  # every seed: peak at epoch 2, then 2 points down
    row = trial(
        0,
        {},
        [0.95, 0.951, 0.952],
        spec(),
        validation_accuracy=falling,
    )
    row = replace(
        row,
        runs=[
            replace(r, validation_accuracy=[v + r.seed / 1000 for v in falling]) for r in row.runs
        ],
    )
    found = overfitting_of(row)
    assert found.peak_epoch == 2 and found.drop == pytest.approx(0.02)
    text = describe_overfit(found, "x")
    assert "by the end it had fallen 2.00 points (95 % interval 2.00 to 2.00" in text
    level = replace(
        row,
        runs=[
            replace(r, validation_accuracy=[0.90, 0.95 + d, 0.95 - d])
            for r, d in zip(row.runs, (0.01, -0.01, 0.0), strict=True)
        ],
    )
    assert "had fallen" not in describe_overfit(overfitting_of(level), "x")


def baseline_study(baseline: dict | None = None) -> StudyFile:
    return StudyFile.model_validate(
        {
            "name": "hidden",
            "space": {"hidden_units": [10, 30, 100]},
            "baseline": {"hidden_units": 30} if baseline is None else baseline,
            "search": {"sampler": "grid", "repeats": 3},
        }
    )


def test_a_baseline_is_what_every_configuration_is_measured_from() -> None:
    rows = best_first(
        [
            trial(0, {"hidden_units": 10}, [0.900, 0.905, 0.902], spec(10)),
            trial(1, {"hidden_units": 30}, [0.950, 0.952, 0.951], spec(30)),
            trial(2, {"hidden_units": 100}, [0.970, 0.969, 0.971], spec(100)),
        ]
    )
    study = baseline_study()
    found = answer(study, rows)
    assert found is not None
    assert found.effect.startswith(
        "from the baseline hidden_units=30 (95.10 %) to hidden_units=100 (97.00 %): +1.90 points"
    )
    assert found.effect.endswith(
        "seed by seed: better, and stays so read with all 2 comparisons (Holm); the best of 3 "
        "means, so its lead is a little optimistic"
    )
    # the noise is measured as the effect is: paired differences against the baseline
    widths = [
        (test.high - test.low) / 2
        for test in (
            compare_seed_by_seed(row.by_seed(), rows[1].by_seed()) for row in (rows[0], rows[2])
        )
    ]
    assert found.noise == (
        f"±{100 * statistics.median(widths):.2f} points (95 % interval of a difference "
        "against the baseline, seed by seed; median over the configurations)"
    )
    note = dict(findings(study, rows).effects)["against the baseline"]
    assert "\n- hidden_units=100: +1.90 points" in note
    assert "\n- hidden_units=10: -4.87 points" in note and "worse" in note
    assert "hidden_units=30:" not in note  # not against itself
    assert "Holm's correction for 2 tests leaves 2 of the differences real" in note
    # a study without one answers worst to best, as before
    plain = answer(hidden_study(), rows[:1] + rows[2:])
    assert plain is not None and not plain.effect.startswith("from the baseline")


def test_a_baseline_with_the_best_mean_says_so() -> None:
    rows = best_first(
        [
            trial(0, {"hidden_units": 30}, [0.95, 0.951, 0.952], spec(30)),
            trial(1, {"hidden_units": 100}, [0.94, 0.941, 0.942], spec(100)),
        ]
    )
    found = answer(baseline_study(), rows)
    assert found is not None and found.effect.endswith("none better (it has the best mean)")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"baseline": {"hidden_units": 50}}, "50 is not among the values searched"),
        ({"baseline": {"eta": 0.1}}, "give a value for each of hidden_units"),
        ({"search": {"sampler": "random", "trials": 3}}, "only a grid runs every"),
        ({"variants": {"a": {}, "b": {"eta": 1.0}}}, "measured from its first variant"),
    ],
)
def test_a_baseline_outside_the_grid_is_refused(fields: dict, message: str) -> None:
    content = {
        "name": "hidden",
        "space": {"hidden_units": [10, 30]},
        "baseline": {"hidden_units": 30},
        **fields,
    }
    with pytest.raises(ValueError, match=message):
        StudyFile.model_validate(content)


def test_the_epoch_after_which_more_training_is_not_shown_to_help_is_named() -> None:
    """Every seed reaches its plateau at epoch 3 and wobbles there, the mean peaking at
    epoch 6: what the epochs after 3 add to each seed's best accuracy is not shown to be
    more than nothing, so the index says more training stopped helping at 3."""
    curves = [
        [0.90, 0.95, 0.968, 0.970, 0.967, 0.969],
        [0.90, 0.95, 0.970, 0.966, 0.969, 0.970],
        [0.90, 0.95, 0.966, 0.969, 0.970, 0.9695],
    ]
    row = curve_row(curves)
    found = overfitting_of(row)
    assert (found.settled_epoch, found.peak_epoch) == (3, 6)
    after = (
        "the epochs after 3 of 6 added +0.20 points to each seed's best validation accuracy "
        "on average (at most +0.70 points, the upper end of its 95 % interval over 3 seeds; "
        "no later stretch of epochs was shown to add anything)"
    )
    assert overfitting([row]).short.startswith(f"in the best configuration, {after}; overfitting")
    assert f"validation accuracy peaked at epoch 6, but {after}" in overfitting([row]).text


def test_a_gain_every_seed_shares_is_help_however_small() -> None:
    """Every seed's best accuracy gains 0.15 points from epoch 3 to 6: small beside the
    spread between seeds, but each seed against itself shows it, so later epochs helped."""
    plateau = [0.90, 0.95, 0.968, 0.969, 0.968, 0.9695]
    row = curve_row([[a + offset for a in plateau] for offset in (-0.002, 0.0, 0.002)])
    assert overfitting_of(row).settled_epoch == 6
    assert overfitting([row]).short.startswith("overfitting:")
    one_seed = curve_row([[0.9, 0.95, 0.96, 0.961]])
    assert not overfitting([one_seed]).short.startswith("more training")


def curve_row(curves: list[list[float]]) -> TrialRow:
    """A configuration whose seeds have these validation accuracy curves, the validation
    cost turning up after epoch 3 of them."""
    epochs = len(curves[0])
    runs = [
        run(
            seed,
            max(curve),
            epochs=epochs,
            validation_accuracy=curve,
            validation_cost=[0.5, 0.4, 0.35, 0.38, 0.42, 0.45][:epochs],
            train_cost=[0.5, 0.35, 0.25, 0.18, 0.12, 0.08][:epochs],
        )
        for seed, curve in enumerate(curves)
    ]
    return TrialRow(
        0, {"eta": 0.5}, "complete", statistics.fmean(max(c) for c in curves), runs, spec(30)
    )
