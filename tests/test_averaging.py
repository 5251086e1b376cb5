"""The moving average of the weights: its arithmetic, its warm-up, and how training uses it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from digitlab.errors import ModelFileError
from digitlab.nn.averaging import WeightAverage
from digitlab.nn.build import build_network
from digitlab.nn.model_file import read_container, write_container
from digitlab.spec import make_spec
from digitlab.train import Trainer
from digitlab.train.checkpoint import FORMAT, read_checkpoint
from digitlab.train.history import EpochRecord, History

from .interrupt import StopAfter

#: A small network with batch norm, so the average covers running statistics too.
SPEC = make_spec({"layers": [784, 6, 10], "batch_norm": True, "ema": 0.5})


def average_of_fresh_networks(decay: float = 0.5) -> WeightAverage:
    source = build_network(SPEC, np.random.default_rng(1))
    return WeightAverage(source, build_network(SPEC, np.random.default_rng(2)), decay)


def move(average: WeightAverage, rng: np.random.Generator) -> None:
    """Give the source network new values everywhere, as an optimiser step would."""
    for array in average.source.arrays():
        array[...] = rng.standard_normal(array.shape)


def test_the_warm_up_decay_rises_to_the_decay_and_stays() -> None:
    average = average_of_fresh_networks(decay=0.5)
    decays = []
    for _ in range(12):
        decays.append(average.current_decay())
        average.update()
    # (1 + t) / (10 + t) for t = 0, 1, ... until it passes 0.5 (at t = 8)
    assert decays[:8] == pytest.approx([(1 + t) / (10 + t) for t in range(8)])
    assert decays[8:] == [0.5] * 4


def test_the_average_starts_at_the_source_and_follows_the_formula() -> None:
    average = average_of_fresh_networks(decay=0.9)
    source, averaged = average.source, average.network
    assert source.buffers and all(
        np.array_equal(a, b) for a, b in zip(averaged.arrays(), source.arrays(), strict=True)
    )
    expected = [a.astype(np.float64) for a in source.arrays()]
    rng = np.random.default_rng(3)
    for _ in range(40):
        move(average, rng)
        d = average.current_decay()
        expected = [d * e + (1 - d) * w for e, w in zip(expected, source.arrays(), strict=True)]
        average.update()
    for kept, wanted in zip(averaged.arrays(), expected, strict=True):
        assert kept.dtype == np.float32
        np.testing.assert_allclose(kept, wanted, rtol=1e-5, atol=1e-6)


def test_an_average_restored_from_its_state_continues_identically() -> None:
    first = average_of_fresh_networks()
    rng = np.random.default_rng(4)
    for _ in range(5):
        move(first, rng)
        first.update()
    state = {key: array.copy() for key, array in first.state().items()}
    second = average_of_fresh_networks()
    second.source.load_arrays(first.source.arrays())
    second.load_state(state)
    for average in (first, second):
        move(average, np.random.default_rng(5))
        average.update()
    assert int(second.updates[0]) == 6
    for a, b in zip(first.network.arrays(), second.network.arrays(), strict=True):
        assert np.array_equal(a, b)


def ema_spec(**changes):
    fields = {
        "layers": [784, 30, 10],
        "cost": "log-likelihood",
        "optimizer": "adam",
        "eta": 0.01,
        "batch_norm": True,
        "train_size": 1000,
        "epochs": 1,
        "ema": 0.9,
        "seed": 2,
    }
    return make_spec({**fields, **changes})


def test_training_measures_and_keeps_the_averaged_weights(mnist) -> None:
    trainer = Trainer(ema_spec(), mnist, use_test=False)
    result = trainer.run()
    averaged, raw = trainer.average.network, trainer.network
    assert trainer.measured_network is averaged
    record = result.history[-1]
    assert (record.validation_cost, record.validation_accuracy) == averaged.evaluate(
        mnist.validation.images, trainer.validation_targets
    )
    kept = result.model.network.arrays()
    assert all(np.array_equal(a, b) for a, b in zip(kept, averaged.arrays(), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(kept, raw.arrays(), strict=True))


def test_a_checkpoint_without_the_average_is_damaged(mnist, tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        Trainer(ema_spec(epochs=2), mnist, [StopAfter(1)], checkpoint, use_test=False).run()
    assert "updates" in read_checkpoint(checkpoint).average_state
    header, arrays = read_container(checkpoint, FORMAT)
    header.pop("format"), header.pop("format_version")
    arrays = {k: v for k, v in arrays.items() if not k.startswith("average/")}
    write_container(checkpoint, FORMAT, header, arrays)
    with pytest.raises(ModelFileError, match="damaged checkpoint"):
        Trainer.resume(checkpoint, mnist, use_test=False)


def test_without_an_average_a_checkpoint_holds_none(mnist, tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.checkpoint.npz"
    Trainer(ema_spec(ema=0.0), mnist, checkpoint_path=checkpoint, use_test=False).run()
    assert read_checkpoint(checkpoint).average_state == {}


def test_the_raw_weights_measured_are_those_of_the_same_run_without_an_average(mnist) -> None:
    """The average never feeds back into training, so an averaged run's raw accuracies
    are exactly what the same seed measures with no average at all."""
    averaged = Trainer(ema_spec(epochs=2), mnist).run().history
    plain = Trainer(ema_spec(epochs=2, ema=0.0), mnist).run().history
    assert averaged.column("raw_validation_accuracy") == plain.column("validation_accuracy")
    assert averaged.column("raw_test_accuracy") == plain.column("test_accuracy")
    assert averaged.averaging_effect().raw_epoch == plain.best.epoch
    assert plain.column("raw_validation_accuracy") == [None, None]
    assert plain.averaging_effect() is None


def test_the_averaging_effect_compares_each_version_at_its_own_best_epoch() -> None:
    def record(epoch: int, averaged: float, raw: float) -> EpochRecord:
        return EpochRecord(
            epoch,
            0.1,
            0.1,
            0.9,
            0.1,
            averaged,
            averaged - 0.01,
            1.0,
            raw_validation_accuracy=raw,
            raw_test_accuracy=raw - 0.02,
        )

    history = History([record(1, 0.95, 0.97), record(2, 0.98, 0.96), record(3, 0.97, 0.95)])
    effect = history.averaging_effect()
    assert (effect.averaged.epoch, effect.raw_epoch) == (2, 1)
    assert effect.validation_gain == pytest.approx(0.98 - 0.97)
    assert effect.test_gain == pytest.approx(0.97 - 0.95)
    plain = History([replace(r, raw_validation_accuracy=None) for r in history])
    assert plain.averaging_effect() is None
    # resumed from before raw accuracies were recorded: no comparison over fewer epochs
    resumed = History([replace(history[0], raw_validation_accuracy=None), *history[1:]])
    assert resumed.averaging_effect() is None


@pytest.mark.parametrize("reads_the_average", [{"schedule": "plateau"}, {"early_stop": 1}])
def test_no_raw_accuracies_when_the_run_reads_the_averages(mnist, reads_the_average) -> None:
    """A plateau schedule or early stopping acts on the average's accuracies, so the raw
    weights are no longer the same run without the average: none are recorded."""
    history = Trainer(ema_spec(epochs=2, **reads_the_average), mnist, use_test=False).run().history
    assert history.column("raw_validation_accuracy") == [None] * len(history)
    assert history.averaging_effect() is None
