"""How the accuracy benchmark names the seeds a row stands for."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import cnn


def test_consecutive_seeds_read_as_a_range() -> None:
    assert cnn.seed_list([0, 1, 2, 3]) == "0–3"
    assert cnn.seed_list([2, 3, 4]) == "2–4"


def test_two_seeds_and_gaps_are_listed() -> None:
    assert cnn.seed_list([0, 1]) == "0, 1"
    assert cnn.seed_list([0, 2, 3]) == "0, 2, 3"
    assert cnn.seed_list([5]) == "5"
