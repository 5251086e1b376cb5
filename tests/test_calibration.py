"""Honest confidence: temperature scaling, ECE, the unsure threshold and doubt scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digitlab.data import Split
from digitlab.errors import ModelFileError
from digitlab.evaluation.calibration import (
    CalibrationScores,
    calibrate,
    calibrated,
    expected_calibration_error,
    fit_temperature,
    tempered,
    unsure_threshold,
)
from digitlab.evaluation.doubt import auroc, doubt_scores
from digitlab.evaluation.scoring import evaluate
from digitlab.nn.build import build_network
from digitlab.nn.model_file import Answers, Calibration, Model, load_model, save_model
from digitlab.spec import make_spec


def sampled(temperature: float, n: int = 20_000, seed: int = 0):
    """Logits, and labels drawn from softmax(logits / temperature): data whose true
    temperature is known."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, (n, 10))
    p = tempered(logits, temperature)
    labels = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return logits, labels


@pytest.mark.parametrize("truth", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with(truth) -> None:
    logits, labels = sampled(truth)
    assert fit_temperature(logits, labels) == pytest.approx(truth, rel=0.08)


def test_calibrated_probabilities_have_a_small_ece_and_overconfident_ones_do_not() -> None:
    logits, labels = sampled(2.0)
    assert expected_calibration_error(tempered(logits, 2.0), labels) < 0.015
    assert expected_calibration_error(tempered(logits, 1.0), labels) > 0.05


def test_calibration_lowers_nll_and_changes_no_answer() -> None:
    logits, labels = sampled(3.0)
    found = calibrate(logits, labels)
    assert found.validation_nll[1] < found.validation_nll[0]
    assert found.validation_ece[1] < found.validation_ece[0]
    answers = tempered(logits, found.temperature).argmax(axis=1)
    assert np.array_equal(answers, logits.argmax(axis=1))


def test_the_unsure_threshold_flags_the_chosen_share() -> None:
    confidences = np.linspace(0, 1, 10_001)
    threshold = unsure_threshold(confidences, share=0.02)
    assert (confidences < threshold).mean() == pytest.approx(0.02, abs=1e-3)


def test_reliability_bins_hold_every_image_once() -> None:
    logits, labels = sampled(1.0, n=1000)
    scores = CalibrationScores.of(tempered(logits, 1.0), labels)
    assert scores.reliability.count.sum() == 1000 and scores.nll > 0


def test_auroc_is_one_for_a_perfect_separation_and_a_half_for_none() -> None:
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2, 0.3])) == 1.0
    assert auroc(np.array([0.1, 0.2]), np.array([0.8, 0.9])) == 0.0
    assert auroc(np.full(5, 0.5), np.full(7, 0.5)) == 0.5

    def answers(top: list[float], threshold: float = 0.5) -> Answers:
        top_probability = np.array(top)
        probabilities = np.column_stack([top_probability, 1 - top_probability])
        return Answers(probabilities, top_probability < threshold, None, None)

    rows = doubt_scores(answers([0.9, 0.95, 0.3]), {"other": answers([0.2, 0.6])})
    assert rows[0].flagged == pytest.approx(1 / 3) and rows[1].flagged == 0.5
    assert rows[0].auroc is None and rows[1].auroc == pytest.approx(5 / 6)
    assert rows[1].distance_auroc is None


@pytest.fixture
def small_model(mnist) -> Model:
    from digitlab.train import Trainer

    spec = make_spec(
        {"layers": [784, 30, 10], "cost": "log-likelihood", "epochs": 1, "train_size": 2000}
    )
    return Trainer(spec, mnist, use_test=False, diagnostics=False).run().model


def test_training_ends_calibrated_and_the_file_keeps_it(small_model, tmp_path: Path, mnist):
    assert small_model.calibration is not None
    save_model(tmp_path / "m.npz", small_model)
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.calibration == small_model.calibration
    images = mnist.test.images[:100]
    raw, honest = loaded.raw_probabilities(images), loaded.probabilities(images)
    assert np.array_equal(raw.argmax(axis=1), honest.argmax(axis=1))
    assert np.allclose(honest.sum(axis=1), 1, atol=1e-5)
    expected = tempered(np.log(raw.astype(np.float64)), loaded.calibration.temperature)
    assert np.allclose(honest, expected, atol=1e-5)


def test_a_damaged_calibration_record_is_refused(small_model, tmp_path: Path) -> None:
    from dataclasses import replace

    broken = replace(small_model, calibration=Calibration(float("nan"), 0.5, (1, 1), (0, 0)))
    save_model(tmp_path / "m.npz", broken)
    with pytest.raises(ModelFileError, match="calibration"):
        load_model(tmp_path / "m.npz")


def test_evaluation_reports_confidence_before_and_after(small_model, mnist) -> None:
    test = mnist.test.head(500)
    uncalibrated = Model(small_model.spec, small_model.network, small_model.metrics)
    plain = evaluate([uncalibrated], test)
    assert plain.calibrated is None and plain.unsure is None and plain.images == 500
    honest = evaluate([small_model], test)
    assert honest.accuracy == plain.accuracy  # a temperature changes no answer
    assert honest.calibrated is not None and 0 <= honest.unsure <= 1
    ensemble = evaluate([small_model, small_model], test)
    assert ensemble.members == [honest.accuracy] * 2 and ensemble.unsure is None


def test_a_model_with_non_finite_outputs_is_left_uncalibrated(small_model, mnist) -> None:
    spec = small_model.spec
    network = build_network(spec, np.random.default_rng(0))
    for array in network.arrays():
        array[...] = np.nan
    model = calibrated(
        Model(spec, network), Split(mnist.validation.images[:50], mnist.validation.labels[:50])
    )
    assert model.calibration is None
