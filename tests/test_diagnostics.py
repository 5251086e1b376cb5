"""Diagnostics on real MNIST: the probe's numbers are backpropagation's, measuring them
changes nothing in the run, and they say when units saturate or die."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from digitlab.data.mnist import one_hot
from digitlab.nn.build import build_network
from digitlab.nn.layers import Dense
from digitlab.spec import make_spec
from digitlab.train import History, Trainer
from digitlab.train.diagnostics import PROBE_SIZE, Diagnostics


def small_spec(**changes):
    fields = {"layers": [784, 30, 10], "epochs": 2, "train_size": 1500}
    return make_spec({**fields, **changes})


def norm(array: np.ndarray) -> float:
    return float(np.linalg.norm(array.astype(np.float64)))


def backprop_norms(spec, arrays, images, labels) -> list[tuple[float, float, float]]:
    """(weight norm, weight gradient norm, bias gradient norm) of each dense layer, from
    ``network.gradients`` on a copy of the network without dropout."""
    network = build_network(spec.with_overrides(dropout=0.0), np.random.default_rng(1))
    network.load_arrays([a.copy() for a in arrays])
    network.gradients(images, one_hot(labels))
    return [
        (norm(layer.weights.value), norm(layer.weights.grad), norm(layer.biases.grad))
        for layer in network.layers
        if isinstance(layer, Dense)
    ]


def reported(found: Diagnostics) -> list[tuple[float, float, float]]:
    return [(d.weight_norm, d.weight_gradient_norm, d.bias_gradient_norm) for d in found.layers]


@pytest.mark.parametrize(
    "changes", [{}, {"dropout": 0.5}, {"batch_norm": True}], ids=["plain", "dropout", "batch-norm"]
)
def test_probe_reports_the_gradient_backpropagation_gives(mnist, changes: dict) -> None:
    """At the initial weights and at the end of training, on the first PROBE_SIZE
    training images (with dropout the probe leaves it out: a function of the weights)."""
    spec = small_spec(**changes)
    trainer = Trainer(spec, mnist)
    images, labels = mnist.train.images[:PROBE_SIZE], mnist.train.labels[:PROBE_SIZE]

    initial = trainer.diagnose()
    assert [d.layer for d in initial.layers] == ["dense 1", "dense 2"]
    expected = backprop_norms(spec, trainer.network.arrays(), images, labels)
    np.testing.assert_allclose(reported(initial), expected, rtol=1e-5)

    history = trainer.run().history
    final = history[-1].diagnostics
    expected = backprop_norms(spec, trainer.network.arrays(), images, labels)
    np.testing.assert_allclose(reported(final), expected, rtol=1e-5)
    assert reported(final) != reported(initial)


def test_probe_uses_the_whole_training_set_when_it_is_smaller(mnist) -> None:
    spec = small_spec(train_size=300)
    trainer = Trainer(spec, mnist)
    images, labels = mnist.train.images[:300], mnist.train.labels[:300]
    expected = backprop_norms(spec, trainer.network.arrays(), images, labels)
    np.testing.assert_allclose(reported(trainer.diagnose()), expected, rtol=1e-5)


def metrics(history: History) -> list[dict]:
    """Everything but the wall-clock times and the diagnostics."""
    return [
        {**row, "seconds": None, "evaluation_seconds": None, "diagnostics": None}
        for row in history.to_dicts()
    ]


@pytest.mark.parametrize(
    "changes",
    [{}, {"dropout": 0.3}, {"batch_norm": True}, {"dropout": 0.3, "batch_norm": True}],
    ids=["plain", "dropout", "batch-norm", "both"],
)
def test_measuring_does_not_change_training(mnist, changes: dict) -> None:
    spec = small_spec(**changes, seed=4)
    measured = Trainer(spec, mnist, diagnostics=True)
    plain = Trainer(spec, mnist, diagnostics=False)
    with_diagnostics, without = measured.run(), plain.run()

    assert all(r.diagnostics is not None for r in with_diagnostics.history)
    assert all(r.diagnostics is None for r in without.history)
    assert metrics(with_diagnostics.history) == metrics(without.history)
    # parameters and batch norm's running averages, at the end and at the best epoch
    for a, b in zip(measured.network.arrays(), plain.network.arrays(), strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(measured.best_arrays, plain.best_arrays, strict=True):
        assert np.array_equal(a, b)
    assert measured.rng.bit_generator.state == plain.rng.bit_generator.state


def test_diagnose_leaves_weights_running_averages_and_random_state_alone(mnist) -> None:
    trainer = Trainer(small_spec(batch_norm=True, dropout=0.3, epochs=1), mnist)
    trainer.run()
    running_mean, running_var = trainer.network.buffers[:2]
    assert running_mean.any() and not np.allclose(running_var, 1)  # trained averages
    before = [a.copy() for a in trainer.network.arrays()]
    state = trainer.rng.bit_generator.state
    first, second = trainer.diagnose(), trainer.diagnose()
    assert first == second  # measuring twice gives the same numbers
    for a, b in zip(trainer.network.arrays(), before, strict=True):
        assert np.array_equal(a, b)
    assert trainer.rng.bit_generator.state == state


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_saturated_units(mnist, activation: str) -> None:
    """Weights 100 times too large put |z| far past the sigmoid's (tanh's) knee for most
    (image, unit) pairs: measured 0.85 (sigmoid) and 0.92 (tanh); fresh weights 0."""
    trainer = Trainer(small_spec(activation=activation), mnist)
    fresh = trainer.diagnose().layers[0]
    assert fresh.saturated < 0.01 and fresh.dead is None
    trainer.network.layers[0].weights.value *= np.float32(100)
    scaled = trainer.diagnose().layers[0]
    assert scaled.saturated > 0.8
    assert scaled.bias_gradient_norm < fresh.bias_gradient_norm / 10  # hardly any gradient


def test_dead_relus(mnist) -> None:
    trainer = Trainer(small_spec(activation="relu", init="he"), mnist)
    fresh = trainer.diagnose().layers[0]
    assert fresh.dead < 0.5 and fresh.saturated is None
    trainer.network.layers[0].biases.value[:] = -1000
    dead = trainer.diagnose().layers[0]
    assert dead.dead == 1.0
    assert dead.bias_gradient_norm == 0.0 and dead.weight_gradient_norm == 0.0


def test_output_saturation_only_for_sigmoid_outputs(mnist) -> None:
    sigmoid = Trainer(small_spec(cost="quadratic"), mnist).diagnose()
    assert sigmoid.output_stuck is not None and 0 <= sigmoid.output_stuck <= 1
    assert sigmoid.layers[-1].saturated is not None
    softmax = Trainer(small_spec(cost="log-likelihood"), mnist).diagnose()
    assert softmax.output_stuck is None and softmax.layers[-1].saturated is None


def test_diagnose_before_run_gives_finite_initial_diagnostics(mnist) -> None:
    trainer = Trainer(small_spec(layers=[784, 30, 20, 10]), mnist)
    initial = trainer.diagnose()
    assert len(trainer.history) == 0
    assert [d.layer for d in initial.layers] == ["dense 1", "dense 2", "dense 3"]
    assert len(initial.hidden) == 2
    numbers = [v for v in initial.flat().values() if v is not None]
    assert len(numbers) == 3 * 4 + 1  # three norms and saturation per layer, output_stuck
    assert all(math.isfinite(v) for v in numbers)
    assert all(d.weight_norm > 0 and d.bias_gradient_norm > 0 for d in initial.layers)
    trainer.run()
    assert trainer.history[0].diagnostics != initial


def test_convolutional_layers_are_named_and_measured(mnist) -> None:
    spec = make_spec(
        {
            "layers": ["conv:4:5", "pool:2", "dense:10"],
            "activation": "relu",
            "init": "he",
            "cost": "log-likelihood",
            "train_size": 500,
        }
    )
    found = Trainer(spec, mnist).diagnose()
    assert [d.layer for d in found.layers] == ["conv 1", "dense 1"]
    assert found.layers[0].dead is not None and found.layers[0].saturated is None
    assert all(math.isfinite(d.bias_gradient_norm) for d in found.layers)


def trained_history(mnist) -> History:
    return Trainer(small_spec(), mnist).run().history


def test_history_round_trip_keeps_diagnostics(mnist, tmp_path: Path) -> None:
    history = trained_history(mnist)
    assert all(isinstance(r.diagnostics, Diagnostics) for r in history)
    assert History.from_dicts(history.to_dicts()) == history

    history.write(tmp_path / "h.json")
    assert History.from_dicts(json.loads((tmp_path / "h.json").read_text())) == history

    history.write(tmp_path / "h.csv")
    with open(tmp_path / "h.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        columns = reader.fieldnames
    assert len(rows) == len(history) == 2
    flat = history[0].diagnostics.flat()
    assert "dense1_bias_gradient_norm" in columns and "diagnostics" not in columns
    assert [c for c in columns if c in flat] == list(flat)  # one column per number
    assert len(columns) == len(set(columns))
    for row, record in zip(rows, history, strict=True):
        for key, value in record.diagnostics.flat().items():
            assert row[key] == ("" if value is None else str(value))
        assert float(row["dense1_bias_gradient_norm"]) == (
            record.diagnostics.layers[0].bias_gradient_norm
        )


def test_history_without_diagnostics_has_no_diagnostic_columns(mnist, tmp_path: Path) -> None:
    history = Trainer(small_spec(epochs=1), mnist, diagnostics=False).run().history
    history.write(tmp_path / "h.csv")
    with open(tmp_path / "h.csv", newline="") as handle:
        columns = csv.DictReader(handle).fieldnames
    assert not any("norm" in c for c in columns) and "output_stuck" not in columns
    history.write(tmp_path / "h.json")
    assert History.from_dicts(json.loads((tmp_path / "h.json").read_text())) == history
