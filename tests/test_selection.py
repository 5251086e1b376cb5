"""Choosing an ensemble's members on the validation set."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.evaluation.selection import choose_from

LABELS = np.arange(100) % 10


def answers(right: float, wrong_from: int, wrong_to: int, offset: int, doubt: float) -> np.ndarray:
    """Probabilities that put ``right`` on the true digit, except for images
    ``wrong_from`` to ``wrong_to`` - 1, where they put ``doubt`` on the true digit and
    more on digit (true + offset) % 10."""
    votes = np.full((len(LABELS), 10), (1 - right) / 9)
    votes[np.arange(len(LABELS)), LABELS] = right
    wrong = np.arange(wrong_from, wrong_to)
    votes[wrong] = (1 - doubt - 0.4) / 8
    votes[wrong, LABELS[wrong]] = doubt
    votes[wrong, (LABELS[wrong] + offset) % 10] = 0.4
    return votes


def test_two_networks_wrong_in_different_places_are_both_taken_and_a_third_is_not() -> None:
    first = answers(0.9, 90, 100, 1, 0.3)  # 90 % alone, unsure where it is wrong
    second = answers(0.9, 0, 10, 2, 0.3)  # 90 % alone, wrong on other images
    confidently_wrong = np.roll(answers(0.9, 0, 0, 0, 0.3), 3, axis=1)  # 0 % alone
    choice = choose_from([first, second, confidently_wrong], LABELS)
    assert choice.alone == [0.9, 0.9, 0.0]
    assert sorted(choice.members) == [0, 1]
    assert [step.accuracy for step in choice.steps] == [0.9, 1.0]
    assert choice.steps[1].nll < choice.steps[0].nll


def test_a_copy_of_a_member_adds_nothing_and_is_left_out() -> None:
    network = answers(0.8, 0, 5, 1, 0.1)
    choice = choose_from([network, network.copy()], LABELS)
    assert choice.members == [0]  # the copy leaves accuracy and NLL exactly as they were


def test_the_best_network_alone_comes_first_even_when_listed_last() -> None:
    weak, strong = answers(0.9, 0, 30, 1, 0.1), answers(0.9, 0, 5, 1, 0.1)
    choice = choose_from([weak, strong], LABELS)
    assert choice.members[0] == 1
    assert choice.steps[0].accuracy == pytest.approx(0.95)


def test_no_candidates_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        choose_from([], LABELS)
