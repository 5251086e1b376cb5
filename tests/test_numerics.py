"""Numerical behaviour: stability at extreme inputs, float32 throughout, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.data.mnist import one_hot
from digitlab.nn.activations import ACTIVATIONS, make_activation
from digitlab.nn.build import build_network
from digitlab.nn.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost
from digitlab.presets import PRESETS
from digitlab.spec import make_spec
from digitlab.train import Trainer

EXTREME = np.array([[-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4, 88.8, -88.8, 3e4]], dtype=np.float32)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_finite_at_extremes(name: str) -> None:
    # pytest turns RuntimeWarnings (overflow, invalid) into failures: see pyproject.toml
    layer = make_activation(name)
    out = layer.forward(EXTREME, training=True)
    grad = layer.backward(np.ones_like(out))
    assert np.isfinite(out).all() and np.isfinite(grad).all()
    assert out.dtype == np.float32 and grad.dtype == np.float32


@pytest.mark.parametrize(
    "cost", [QuadraticCost(make_activation("sigmoid")), CrossEntropyCost(), LogLikelihoodCost()]
)
def test_costs_finite_when_saturated(cost) -> None:
    y = one_hot(np.array([9]))
    value = cost.value(EXTREME, y)
    delta = cost.delta(EXTREME, y)
    assert np.isfinite(value) and np.isfinite(delta).all() and delta.dtype == np.float32


def test_log_likelihood_of_confident_right_answer_is_near_zero() -> None:
    z = np.array([[0.0] * 9 + [1e4]], dtype=np.float32)
    assert LogLikelihoodCost().value(z, one_hot(np.array([9]))) == pytest.approx(0.0, abs=1e-6)


def test_parameters_and_gradients_stay_float32() -> None:
    network = build_network(make_spec({"layers": [784, 20, 10]}), np.random.default_rng(0))
    x = np.random.default_rng(1).random((10, 784), dtype=np.float32)
    network.gradients(x, one_hot(np.arange(10)))
    assert all(p.value.dtype == np.float32 and p.grad.dtype == np.float32 for p in network.params)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_builds_a_network_giving_each_image_ten_outputs(name: str) -> None:
    """Each preset's layers fit together (e.g. no pooling of an odd-sized feature map)."""
    network = build_network(PRESETS[name].spec, np.random.default_rng(0))
    x = np.random.default_rng(1).random((3, 784), dtype=np.float32)
    outputs = network.probabilities(x)
    assert outputs.shape == (3, 10) and outputs.dtype == np.float32
    assert np.all((outputs >= 0) & (outputs <= 1))


def test_same_seed_same_weights_different_seed_different(mnist) -> None:
    fields = {"layers": [784, 20, 10], "epochs": 1, "train_size": 2000, "dropout": 0.2}

    def weights(seed: int) -> list[np.ndarray]:
        trainer = Trainer(make_spec({**fields, "seed": seed}), mnist, use_test=False)
        trainer.run()
        return trainer.network.arrays()

    first, again, other = weights(1), weights(1), weights(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_sgd_step_is_w_minus_eta_times_the_penalised_gradient() -> None:
    """SGD folds eta into the output error; the step must still be the book's rule."""
    from digitlab.nn.optimizers import make_optimizer

    spec = make_spec({"layers": [6, 5, 3], "cost": "log-likelihood"})
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((4, 6)), one_hot(np.array([0, 2, 1, 2]))[:, :3]
    network = build_network(spec, np.random.default_rng(1), dtype=np.float64)
    network.gradients(x, y)
    before = [p.value.copy() for p in network.params]
    gradients = [p.grad.copy() for p in network.params]
    eta, lmbda, n = 0.3, 2.0, 50
    optimizer = make_optimizer("sgd", network.params, eta, 0.0, lmbda, 0.0, n)
    network.gradients(x, y, optimizer.gradient_scale)
    optimizer.step()
    for param, old, grad in zip(network.params, before, gradients, strict=True):
        penalty = (lmbda / n) * old if param.regularize else 0
        assert np.allclose(param.value, old - eta * (grad + penalty))
