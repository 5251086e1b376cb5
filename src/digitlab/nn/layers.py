"""Layers: the pieces a network is a stack of.

A layer turns a batch of inputs (batch-first) into a batch of outputs in ``forward``
and, in ``backward``, turns the gradient of the cost with respect to its outputs into
the gradient with respect to its inputs -- filling in the gradients of its own
parameters on the way.  That is backpropagation, one layer at a time: each layer only
needs to know its own derivative.
"""

from __future__ import annotations

import math

import numpy as np


class Parameter:
    """A trainable array, its gradient, and whether weight penalties (L1/L2) apply to it."""

    __slots__ = ("grad", "regularize", "value")

    def __init__(self, value: np.ndarray, regularize: bool) -> None:
        self.value = value
        self.grad = np.zeros_like(value)
        self.regularize = regularize


def column_sums(rows: np.ndarray) -> np.ndarray:
    """Each column's sum, as a matrix-vector product: for a tall array of a few dozen
    columns (a feature map's pixels by its channels) many times faster than NumPy's sum
    down the first axis, which adds one short row at a time."""
    return np.ones(len(rows), dtype=rows.dtype) @ rows


def per_example(x: np.ndarray) -> np.ndarray:
    """``x`` (batch-first, channels last) seen as one row per example: a free reshape."""
    return x.reshape(len(x), math.prod(x.shape[1:]))


def across_positions(vector: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A per-channel ``vector`` (a bias, batch norm's factors) repeated for every position
    of one example of ``x``, to act on :func:`per_example` rows of ``x``.

    Broadcast over (pixels, channels) rows, NumPy applies a vector of c channels c
    elements at a time, one short inner loop per pixel, and for a few dozen channels
    that loop's overhead costs more than its arithmetic; over rows of a whole example it
    runs one long loop instead.  The numbers are the same either way."""
    return np.tile(vector, math.prod(x.shape[1:]) // len(vector))


class Layer:
    """Base class: no parameters, identity in both directions."""

    params: tuple[Parameter, ...] = ()
    #: State that is saved with the weights but not trained (batch norm's running averages).
    buffers: tuple[np.ndarray, ...] = ()
    #: An elementwise non-decreasing function (an activation such as the sigmoid or ReLU):
    #: then max(f(a), f(b)) = f(max(a, b)), so max-pooling may come first.
    increasing: bool = False
    #: Whether ``backward`` returns the gradient for the layer's input.  The network turns
    #: it off for its first layer with weights, whose input is the data: nothing needs
    #: that gradient, and for a large layer it is the largest product of the pass.
    propagate: bool = True

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad


class Dense(Layer):
    """A fully-connected layer: ``z = x @ W + b``, one matrix product per mini-batch.

    ``W`` has shape (inputs, outputs) so that a batch of row vectors multiplies it from
    the left -- the transpose of the book's ``w`` -- and the whole mini-batch is one
    matrix product instead of a Python loop over examples.
    """

    def __init__(self, weights: np.ndarray, biases: np.ndarray) -> None:
        self.weights = Parameter(weights, regularize=True)
        self.biases = Parameter(biases, regularize=False)
        self.params = (self.weights, self.biases)
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if training:
            self._x = x
        z = x @ self.weights.value
        z += self.biases.value
        return z

    def backward(self, grad: np.ndarray) -> np.ndarray:
        np.dot(self._x.T, grad, out=self.weights.grad)
        np.sum(grad, axis=0, out=self.biases.grad)
        return grad @ self.weights.value.T if self.propagate else grad


class Dropout(Layer):
    """Randomly silence a fraction ``p`` of the neurons during training.

    "Inverted" dropout: the survivors are scaled by 1/(1-p) while training, so the
    network needs no rescaling at test time (the book halves the outgoing weights
    instead; the two are equivalent).
    """

    def __init__(self, p: float, rng: np.random.Generator) -> None:
        self.p = p
        self.rng = rng
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.p == 0:
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        self._mask = keep.astype(x.dtype)
        self._mask *= x.dtype.type(1 / (1 - self.p))
        return x * self._mask

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad if self.p == 0 else grad * self._mask  # p = 0 drew no mask
