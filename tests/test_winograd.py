"""Winograd's F(2x2, 3x3) against the direct convolution it replaces for 3 x 3 filters:
the same outputs and gradients, to float32's rounding, for odd and even sizes and both
paddings (each path is checked on its own by finite differences and against PyTorch
in test_gradients and test_torch_reference)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from digitlab.nn.conv import Conv2D


def twins(rng: np.random.Generator, channels: int, filters: int, padding: str):
    weights = rng.standard_normal((3, 3, channels, filters)).astype(np.float32)
    biases = rng.standard_normal(filters).astype(np.float32)
    fast = Conv2D(weights, biases, padding=padding)
    direct = copy.deepcopy(fast)
    direct.winograd = False
    return fast, direct


def test_three_by_three_filters_over_several_channels_take_winograd() -> None:
    rng = np.random.default_rng(0)
    assert Conv2D(rng.standard_normal((3, 3, 2, 4)), np.zeros(4)).winograd
    assert not Conv2D(rng.standard_normal((3, 3, 1, 4)), np.zeros(4)).winograd
    assert not Conv2D(rng.standard_normal((5, 5, 2, 4)), np.zeros(4)).winograd


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize(("height", "width"), [(12, 12), (7, 9), (3, 4), (10, 5)])
def test_winograd_gives_the_direct_convolution(height: int, width: int, padding: str) -> None:
    rng = np.random.default_rng(height * width)
    fast, direct = twins(rng, channels=5, filters=6, padding=padding)
    x = rng.standard_normal((4, height, width, 5)).astype(np.float32)
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
    np.testing.assert_allclose(fast.backward(grad), direct.backward(grad), rtol=1e-12, atol=1e-12)
