"""Winograd's F(2x2, 3x3) against the direct convolution it replaces for 3 x 3 filters:
the same outputs and gradients, to float32's rounding, for odd and even sizes and both
paddings (each path is checked on its own by finite differences and against PyTorch
in test_gradients and test_torch_reference)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from digitlab.nn.conv import WINOGRAD_FROM, Conv2D


def twins(rng: np.random.Generator, channels: int, filters: int, padding: str):
    weights = rng.standard_normal((3, 3, channels, filters)).astype(np.float32)
    biases = rng.standard_normal(filters).astype(np.float32)
    fast = Conv2D(weights, biases, padding=padding)
    fast.winograd = True  # below WINOGRAD_FROM training would not: the maths is the same
    direct = copy.deepcopy(fast)
    direct.winograd = False
    return fast, direct


def test_three_by_three_filters_from_many_channels_into_many_take_winograd() -> None:
    def layer(kernel: int, channels: int, filters: int) -> Conv2D:
        return Conv2D(np.zeros((kernel, kernel, channels, filters)), np.zeros(filters))

    assert layer(3, WINOGRAD_FROM, WINOGRAD_FROM).winograd
    assert not layer(3, WINOGRAD_FROM // 2, 2 * WINOGRAD_FROM).winograd
    assert not layer(3, 2 * WINOGRAD_FROM, WINOGRAD_FROM // 2).winograd
    assert not layer(5, 2 * WINOGRAD_FROM, 2 * WINOGRAD_FROM).winograd


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize(
    ("batch", "height", "width"), [(4, 12, 12), (4, 7, 9), (1, 3, 4), (2, 10, 5), (1, 4, 3)]
)
def test_winograd_gives_the_direct_convolution(
    batch: int, height: int, width: int, padding: str
) -> None:
    rng = np.random.default_rng(height * width)
    fast, direct = twins(rng, channels=5, filters=6, padding=padding)
    x = rng.standard_normal((batch, height, width, 5)).astype(np.float32)
    out = fast.forward(x, training=True)
    expected = direct.forward(x, training=True)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    dx, dx_expected = fast.backward(grad), direct.backward(grad)
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, dx_expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(fast.weights.grad, direct.weights.grad, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(fast.biases.grad, direct.biases.grad)


def test_winograd_keeps_float64() -> None:
    rng = np.random.default_rng(1)
    fast, direct = twins(rng, channels=2, filters=3, padding="valid")
    for layer in (fast, direct):
        layer.weights.value = layer.weights.value.astype(np.float64)
        layer.weights.grad = np.zeros_like(layer.weights.value)
    x = rng.standard_normal((2, 6, 6, 2))
    out = fast.forward(x, training=True)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, direct.forward(x, training=True), rtol=1e-12, atol=1e-12)
    grad = rng.standard_normal(out.shape)
    dx = fast.backward(grad)
    assert dx.dtype == np.float64
    np.testing.assert_allclose(dx, direct.backward(grad), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast.weights.grad, direct.weights.grad, rtol=1e-12, atol=1e-12)


def test_a_first_layer_fills_its_gradients_without_the_inputs() -> None:
    rng = np.random.default_rng(2)
    fast, direct = twins(rng, channels=3, filters=2, padding="same")
    fast.propagate = direct.propagate = False
    x = rng.standard_normal((2, 5, 6, 3)).astype(np.float32)
    grad = rng.standard_normal(fast.forward(x, training=True).shape).astype(np.float32)
    direct.forward(x, training=True)
    assert fast.backward(grad) is grad and direct.backward(grad) is grad
    np.testing.assert_allclose(fast.weights.grad, direct.weights.grad, rtol=1e-5, atol=1e-4)


def test_an_input_smaller_than_the_filter_is_refused() -> None:
    fast, _ = twins(np.random.default_rng(3), channels=2, filters=2, padding="valid")
    with pytest.raises(ValueError, match="does not fit a 2 x 5 input"):
        fast.forward(np.zeros((1, 2, 5, 2), dtype=np.float32))
