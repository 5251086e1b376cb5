"""Learning-rate schedules and early stopping."""

from __future__ import annotations

import pytest

from digitlab.nn.schedules import learning_rate
from digitlab.spec import make_spec
from digitlab.train.history import EpochRecord, History


def spec(**fields):
    return make_spec({"eta": 1.0, "epochs": 100, **fields})


def test_constant() -> None:
    assert learning_rate(spec(), 57, [0.5] * 57) == 1.0


def test_step_cuts_every_step_size_epochs() -> None:
    s = spec(schedule="step", step_size=10, gamma=0.5)
    assert [learning_rate(s, e, []) for e in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]


def test_cosine_goes_from_eta_to_zero() -> None:
    s = spec(schedule="cosine", epochs=10)
    assert learning_rate(s, 0, []) == 1.0
    assert learning_rate(s, 5, []) == pytest.approx(0.5)
    assert learning_rate(s, 9, []) < 0.03


def test_warmup_cosine_rises_to_eta_then_falls_to_its_floor() -> None:
    s = spec(schedule="warmup-cosine", epochs=10, warmup_epochs=3, min_eta_ratio=0.01)
    rates = [learning_rate(s, e, []) for e in range(10)]
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # linear up to eta in epoch 3
    assert rates[-1] == pytest.approx(0.01)  # the floor, in the last epoch
    assert rates[3:] == sorted(rates[3:], reverse=True)
    # epoch 6 is halfway from the peak (3) to the end (9): halfway between eta and the floor
    assert rates[6] == pytest.approx((1.0 + 0.01) / 2)


def test_warmup_cosine_without_warmup_starts_at_eta() -> None:
    s = spec(schedule="warmup-cosine", epochs=5, warmup_epochs=0, min_eta_ratio=0.1)
    assert learning_rate(s, 0, []) == pytest.approx(1.0)
    assert learning_rate(s, 4, []) == pytest.approx(0.1)


def test_warmup_longer_than_the_run_ends_in_its_last_epoch() -> None:
    """A preset shortened for a quick look (--epochs 1) still trains at eta."""
    s = spec(schedule="warmup-cosine", epochs=3, warmup_epochs=5)
    assert [learning_rate(s, e, []) for e in range(3)] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert learning_rate(s.with_overrides(epochs=1), 0, []) == pytest.approx(1.0)


def test_plateau_halves_after_patience_and_stops_at_eta_over_128() -> None:
    s = spec(schedule="plateau", patience=3)
    improving = [0.1, 0.2, 0.3]
    assert learning_rate(s, 3, improving) == 1.0
    assert learning_rate(s, 6, [*improving, 0.3, 0.3, 0.3]) == 0.5
    flat = [0.5] + [0.4] * (3 * 6)  # six halvings: 1/64
    assert learning_rate(s, len(flat), flat) == pytest.approx(1 / 64)
    assert learning_rate(s, len(flat) + 3, flat + [0.4] * 3) is None  # 1/128: stop


def record(epoch: int, accuracy: float) -> EpochRecord:
    return EpochRecord(epoch, 0.1, 1.0, accuracy, 1.0, accuracy, None, 0.1)


def test_history_best_and_epochs_since_best() -> None:
    history = History(record(e, a) for e, a in enumerate([0.5, 0.9, 0.7, 0.9, 0.8]))
    assert history.best.epoch == 1  # earliest of the ties
    assert history.epochs_since_best() == 3
