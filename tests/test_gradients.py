"""Every layer, activation and cost: backward pass versus finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.nn.activations import ACTIVATIONS, make_activation
from digitlab.nn.build import build_network
from digitlab.nn.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost
from digitlab.nn.layers import Dense, Dropout, across_positions, per_example
from digitlab.nn.optimizers import SGD
from digitlab.spec import make_spec
from digitlab.train.trainer import smooth_labels

from .gradcheck import assert_close, numerical_gradient

rng = np.random.default_rng(1234)


def probe(shape: tuple[int, ...]) -> np.ndarray:
    """Random weights for turning a layer's output into a scalar: L = sum(probe * out)."""
    return rng.standard_normal(shape)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradient(name: str) -> None:
    layer = make_activation(name)
    x = rng.standard_normal((4, 7)) * 2
    x[np.abs(x) < 1e-3] = 0.5  # keep away from ReLU's kink
    weights = probe((4, 7))
    layer.forward(x, training=True)
    analytic = layer.backward(weights)
    numeric = numerical_gradient(lambda: float((weights * layer.forward(x, True)).sum()), x)
    assert_close(analytic, numeric)


def check_weighted_layer(layer, x: np.ndarray) -> tuple[int, ...]:
    """Input, weight and bias gradients of ``layer`` against finite differences;
    returns the output shape."""
    out_shape = layer.forward(x, training=True).shape
    weights = probe(out_shape)

    def loss() -> float:
        return float((weights * layer.forward(x, True)).sum())

    layer.forward(x, training=True)
    grad_x = layer.backward(weights)
    assert_close(grad_x, numerical_gradient(loss, x))
    assert_close(layer.weights.grad, numerical_gradient(loss, layer.weights.value))
    assert_close(layer.biases.grad, numerical_gradient(loss, layer.biases.value))
    return out_shape


def test_dense_gradients() -> None:
    layer = Dense(rng.standard_normal((5, 3)), rng.standard_normal(3))
    assert check_weighted_layer(layer, rng.standard_normal((4, 5))) == (4, 3)


def test_dropout_gradient_with_fixed_mask() -> None:
    layer = Dropout(0.4, np.random.default_rng(0))
    x = rng.standard_normal((6, 8))
    weights = probe((6, 8))

    def loss() -> float:
        layer.rng = np.random.default_rng(0)  # the same mask on every evaluation
        return float((weights * layer.forward(x, True)).sum())

    loss()
    analytic = layer.backward(weights)
    assert_close(analytic, numerical_gradient(loss, x))
    assert 0 < (analytic == 0).mean() < 1  # some neurons really were dropped


def one_hot_targets(n: int, k: int) -> np.ndarray:
    y = np.zeros((n, k))
    y[np.arange(n), rng.integers(0, k, n)] = 1
    return y


COSTS = [
    *(
        pytest.param(lambda a=a: QuadraticCost(make_activation(a)), id=f"quadratic-{a}")
        for a in sorted(ACTIVATIONS)
    ),
    pytest.param(CrossEntropyCost, id="cross-entropy-sigmoid"),
    pytest.param(LogLikelihoodCost, id="log-likelihood-softmax"),
]


@pytest.mark.parametrize("make", COSTS)
def test_cost_delta_is_gradient_of_value(make) -> None:
    cost = make()
    z = rng.standard_normal((5, 10)) * 3
    z[np.abs(z) < 1e-3] = 0.5
    y = one_hot_targets(5, 10)
    numeric = numerical_gradient(lambda: cost.value(z, y), z)
    assert_close(cost.delta(z, y), numeric)


def test_log_likelihood_delta_with_smoothed_targets() -> None:
    """Label smoothing trains the log-likelihood towards targets that are not one-hot;
    its delta a - y is still the gradient, as y sums to one."""
    cost = LogLikelihoodCost()
    z = rng.standard_normal((5, 10)) * 3
    y = smooth_labels(one_hot_targets(5, 10), 0.1)
    assert y.min() == pytest.approx(0.01) and y.sum(axis=1) == pytest.approx(1)
    numeric = numerical_gradient(lambda: cost.value(z, y), z)
    assert_close(cost.delta(z, y), numeric)


@pytest.mark.parametrize(
    ("activation", "cost", "dropout", "batch_norm"),
    [
        ("sigmoid", "quadratic", 0.0, False),
        ("tanh", "cross-entropy", 0.0, False),
        ("relu", "log-likelihood", 0.3, False),
        ("leaky-relu", "log-likelihood", 0.0, False),
        ("tanh", "log-likelihood", 0.0, True),
    ],
)
def test_whole_network_backpropagation(
    activation: str, cost: str, dropout: float, batch_norm: bool
) -> None:
    spec = make_spec(
        {
            "layers": [6, 5, 4, 3],
            "activation": activation,
            "cost": cost,
            "dropout": dropout,
            "batch_norm": batch_norm,
        }
    )
    network = build_network(spec, np.random.default_rng(3), dtype=np.float64)
    x = rng.standard_normal((4, 6))
    y = one_hot_targets(4, 3)

    def loss() -> float:
        for layer in network.layers:
            if isinstance(layer, Dropout):
                layer.rng = np.random.default_rng(7)
        return network.cost.value(network.forward(x, training=True), y)

    loss()
    for layer in network.layers:
        if isinstance(layer, Dropout):
            layer.rng = np.random.default_rng(7)
    network.gradients(x, y)
    analytic = [p.grad.copy() for p in network.params]
    for param, grad in zip(network.params, analytic, strict=True):
        assert_close(grad, numerical_gradient(loss, param.value))


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_conv_network_backpropagation(activation: str) -> None:
    """A whole convolutional network, on 28x28 images, with max-pooling moved in front of
    its activation (see nn.build): the gradients still are those of the spec's network."""
    spec = make_spec(
        {
            "layers": ["conv:2:5", "pool:4", "dense:3"],
            "activation": activation,
            "cost": "log-likelihood",
            "init": "glorot",
        }
    )
    network = build_network(spec, np.random.default_rng(3), dtype=np.float64)
    kinds = [type(layer).__name__ for layer in network.layers]
    assert kinds[1:4] == ["Conv2D", "Pool2D", make_activation(activation).__class__.__name__]
    x = rng.random((2, 784))
    reshape, conv, pool, act = network.layers[:4]
    z = conv.forward(reshape.forward(x))
    assert np.allclose(act.forward(pool.forward(z)), pool.forward(act.forward(z)))
    y = one_hot_targets(2, 3)
    network.gradients(x, y)
    for param in network.params:
        numeric = numerical_gradient(
            lambda: network.cost.value(network.forward(x, training=True), y), param.value
        )
        assert_close(param.grad, numeric)


def test_penalty_gradients_match_penalty() -> None:
    weights = Dense(rng.standard_normal((4, 3)), rng.standard_normal(3))
    optimizer = SGD(list(weights.params), eta=0.1, l2=0.3, l1=0.2)
    for param in weights.params:
        param.grad[...] = 0
        if param.regularize:
            optimizer._add_penalty_gradient(param, slice(None), 1.0)
    numeric = numerical_gradient(optimizer.penalty, weights.weights.value)
    assert_close(weights.weights.grad, numeric)
    assert not weights.biases.grad.any()  # biases are never penalised


@pytest.mark.parametrize(("kernel", "winograd"), [(3, False), (3, True), (5, False)])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d_gradients(padding: str, kernel: int, winograd: bool) -> None:
    """By im2col, and for 3 x 3 filters by Winograd's transforms (which training takes
    for wider layers than this)."""
    from digitlab.nn.conv import Conv2D

    # (kernel, kernel, channels, filters); feature maps are (batch, height, width, channels)
    weights = rng.standard_normal((kernel, kernel, 3, 4))
    layer = Conv2D(weights, rng.standard_normal(4), padding=padding)
    layer.winograd = winograd
    out_shape = check_weighted_layer(layer, rng.standard_normal((2, kernel + 3, kernel + 2, 3)))
    assert out_shape == ((2, 4, 3, 4) if padding == "valid" else (2, kernel + 3, kernel + 2, 4))


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool2d_gradient(mode: str) -> None:
    from digitlab.nn.conv import Pool2D

    layer = Pool2D(2, mode)
    x = rng.standard_normal((2, 4, 6, 3))  # distinct values: max is differentiable here
    out = layer.forward(x, training=True)
    assert out.shape == (2, 2, 3, 3)
    weights = probe(out.shape)
    analytic = layer.backward(weights)
    numeric = numerical_gradient(lambda: float((weights * layer.forward(x, True)).sum()), x)
    assert_close(analytic, numeric)


def test_max_pool_picks_block_maxima() -> None:
    from digitlab.nn.conv import Pool2D

    x = np.arange(16.0).reshape(1, 4, 4, 1)
    assert Pool2D(2).forward(x)[0, :, :, 0].tolist() == [[5.0, 7.0], [13.0, 15.0]]
    assert Pool2D(2, "avg").forward(x)[0, :, :, 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]


def test_max_pool_gives_a_tie_to_one_input_only() -> None:
    from digitlab.nn.conv import Pool2D

    layer = Pool2D(2)
    x = np.zeros((1, 2, 2, 1))  # ReLU outputs are often tied at zero
    layer.forward(x, training=True)
    assert layer.backward(np.ones((1, 1, 1, 1))).sum() == 1


@pytest.mark.parametrize("size", [2, 3])
def test_max_pool_gives_a_tied_block_to_its_first_input(size: int) -> None:
    from digitlab.nn.conv import Pool2D

    layer = Pool2D(size)
    x = np.zeros((2, size, 2 * size, 3), dtype=np.float32)
    x[1, size - 1, size - 1, 2] = 1  # one block of one channel with a single maximum
    layer.forward(x, training=True)
    grad = np.arange(1, 13, dtype=np.float32).reshape(2, 1, 2, 3)
    expected = np.zeros_like(x)
    expected[:, 0, 0::size, :] = grad[:, 0]  # each block's first input takes it all
    expected[1, 0, 0, 2] = 0
    expected[1, size - 1, size - 1, 2] = grad[1, 0, 0, 2]
    np.testing.assert_array_equal(layer.backward(grad), expected)


def test_pooling_of_size_one_passes_the_gradient_through() -> None:
    from digitlab.nn.conv import Pool2D

    layer = Pool2D(1)
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 2)).astype(np.float32)
    layer.forward(x, training=True)
    grad = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(grad), grad)


def test_reshape_gradient() -> None:
    from digitlab.nn.conv import Reshape

    layer = Reshape((2, 3, 4))
    x = rng.standard_normal((5, 24))
    weights = probe((5, 2, 3, 4))
    layer.forward(x, training=True)
    assert_close(
        layer.backward(weights),
        numerical_gradient(lambda: float((weights * layer.forward(x)).sum()), x),
    )


@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 5, 2)], ids=["dense-rows", "feature-maps"])
def test_batch_norm_gradients(shape: tuple[int, ...]) -> None:
    """Per feature (the last axis), over the batch and, for feature maps, every pixel."""
    from digitlab.nn.normalization import BatchNorm

    layer = BatchNorm(shape[-1], dtype=np.float64)
    layer.scale.value[...] = rng.uniform(0.5, 2, shape[-1])
    layer.shift.value[...] = rng.standard_normal(shape[-1])
    x = rng.standard_normal(shape) * 3 + 1
    weights = probe(shape)

    def loss() -> float:
        return float((weights * layer.forward(x, True)).sum())

    loss()
    grad_x = layer.backward(weights)
    assert_close(grad_x, numerical_gradient(loss, x))
    assert_close(layer.scale.grad, numerical_gradient(loss, layer.scale.value))
    assert_close(layer.shift.grad, numerical_gradient(loss, layer.shift.value))


@pytest.mark.parametrize("shape", [(3, 5, 4, 7), (6, 9), (0, 5, 4, 7)])
def test_a_vector_across_positions_acts_as_broadcasting_does(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    vector = np.arange(shape[-1], dtype=np.float32) - 2.5
    wide = (per_example(x) * across_positions(vector, x)).reshape(shape)
    np.testing.assert_array_equal(wide, x * vector)
