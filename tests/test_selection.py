"""Choosing an ensemble's members on the validation set."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from digitlab.evaluation.scoring import Vote, evaluate
from digitlab.evaluation.selection import choose_from, choose_members, scores
from digitlab.nn.model_file import Answers
from digitlab.spec import make_spec
from digitlab.train import Trainer

LABELS = np.arange(100) % 10


def answers(right: float, wrong_from: int, wrong_to: int, offset: int, doubt: float) -> Vote:
    """An uncalibrated member's vote that puts ``right`` on the true digit, except for
    images ``wrong_from`` to ``wrong_to`` - 1, where it puts ``doubt`` on the true digit
    and 0.4 on digit (true + offset) % 10."""
    votes = np.full((len(LABELS), 10), (1 - right) / 9)
    votes[np.arange(len(LABELS)), LABELS] = right
    wrong = np.arange(wrong_from, wrong_to)
    votes[wrong] = (1 - doubt - 0.4) / 8
    votes[wrong, LABELS[wrong]] = doubt
    votes[wrong, (LABELS[wrong] + offset) % 10] = 0.4
    return Vote(votes, None)


def test_two_networks_wrong_in_different_places_are_both_taken_and_a_third_is_not() -> None:
    first = answers(0.9, 90, 100, 1, 0.3)  # 90 % alone, unsure where it is wrong
    second = answers(0.9, 0, 10, 2, 0.3)  # 90 % alone, wrong on other images
    # always wrong and sure of it: added to the pair it keeps 100 % but worsens the NLL
    always_wrong = Vote(np.roll(answers(0.9, 0, 0, 0, 0.3).raw, 3, axis=1), None)
    choice = choose_from([first, second, always_wrong], LABELS)
    assert choice.alone == [0.9, 0.9, 0.0]
    assert sorted(choice.members) == [0, 1] and choice.step_of(2) is None
    assert [step.accuracy for step in choice.steps] == [0.9, 1.0]
    assert choice.steps[1].nll < choice.steps[0].nll


def test_a_copy_of_a_member_adds_nothing_and_is_left_out() -> None:
    network = answers(0.8, 0, 5, 1, 0.1)
    choice = choose_from([network, Vote(network.raw.copy(), None)], LABELS)
    assert choice.members == [0]  # the copy leaves accuracy and NLL exactly as they were


def test_on_a_full_tie_the_earlier_candidate_is_taken() -> None:
    network = answers(0.8, 0, 5, 1, 0.1)
    assert choose_from([network, network, network], LABELS).members == [0]


def test_the_best_network_alone_comes_first_even_when_listed_last() -> None:
    weak, strong = answers(0.9, 0, 30, 1, 0.1), answers(0.9, 0, 5, 1, 0.1)
    choice = choose_from([weak, strong], LABELS)
    assert choice.members[0] == 1
    assert choice.steps[0].accuracy == pytest.approx(0.95)


def test_an_addition_that_raises_accuracy_is_taken_though_it_worsens_the_nll() -> None:
    first = answers(0.9, 0, 10, 1, 0.3)  # sure and right but on 0-9: 90 %
    # sure and right on 0-9, barely right on 10-84, wrong on 85-99: 85 % alone
    timid = answers(0.15, 85, 100, 2, 0.001).raw
    timid[:10] = answers(0.9, 0, 0, 0, 0.0).raw[:10]
    choice = choose_from([first, Vote(timid, None)], LABELS)
    assert choice.members == [0, 1]
    assert [step.accuracy for step in choice.steps] == [0.9, 1.0]
    assert choice.steps[1].nll > choice.steps[0].nll


def test_a_diverged_candidate_is_never_taken() -> None:
    network = answers(0.8, 5, 10, 1, 0.1)  # right on every image of a 0
    diverged = network.raw.copy()
    diverged[LABELS == 0] = np.nan  # NaN answers 0 there: as accurate, but a NaN NLL
    choice = choose_from([Vote(diverged, None), network], LABELS)
    assert choice.alone == [0.95, 0.95]
    assert choice.members == [1]


def test_taking_an_uncalibrated_member_switches_to_the_networks_own_probabilities() -> None:
    first, second = answers(0.9, 90, 100, 1, 0.3), answers(0.9, 0, 10, 2, 0.3)
    tempered = first.raw**2 / (first.raw**2).sum(axis=1, keepdims=True)  # a sharper copy
    calibrated = Vote(first.raw, Answers(tempered, None, None, None))
    choice = choose_from([calibrated, second], LABELS)
    assert choice.members == [0, 1]
    assert [step.calibrated for step in choice.steps] == [True, False]
    assert choice.steps[0].nll == scores(tempered, LABELS)[1]
    assert choice.steps[1].nll == scores(np.mean([first.raw, second.raw], axis=0), LABELS)[1]


def test_no_candidates_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        choose_from([], LABELS)


def test_every_step_is_what_evaluate_reports_for_those_members(mnist) -> None:
    """Calibrated and uncalibrated candidates mixed: each step's figures are those of
    evaluate() on the members taken so far, whichever probabilities it averages."""
    spec = make_spec({"layers": [784, 30, 10], "cost": "log-likelihood", "epochs": 1,
                      "train_size": 1000})  # fmt: skip
    models = [Trainer(spec.with_overrides(seed=s), mnist).run().model for s in range(4)]
    assert all(model.calibration is not None for model in models)
    # one candidate, not the best alone, loses its calibration: the first step averages
    # calibrated probabilities, and a step that takes that one the networks' own
    alone = [evaluate([model], mnist.validation).accuracy for model in models]
    worst = int(np.argmin(alone))
    models[worst] = replace(models[worst], calibration=None)
    choice = choose_members(models, mnist.validation)
    assert choice.members[0] == int(np.argmax(alone)) and len(choice.steps) >= 2
    for taken in range(1, len(choice.steps) + 1):
        members = [models[i] for i in choice.members[:taken]]
        result = evaluate(members, mnist.validation)
        step = choice.steps[taken - 1]
        assert result.accuracy == step.accuracy
        scores = result.calibrated if result.calibrated is not None else result.uncalibrated
        assert scores.nll == pytest.approx(step.nll, rel=1e-12)
