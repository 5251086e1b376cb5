"""Cost functions, each paired with the output activation it is applied after.

A cost sees the output layer's weighted input ``z`` and gives (a) its value, the mean
over the mini-batch, and (b) ``delta``, the gradient of that mean with respect to
``z`` -- the output error backpropagation starts from.

The pairing matters.  With sigmoid outputs the cross-entropy's delta is simply
``a - y`` (the sigma' that slows the quadratic cost's learning cancels out), and the
same holds for softmax outputs with the log-likelihood.  Computing those two from the
logits ``z`` also keeps them finite when an output saturates at 0 or 1.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from scipy.special import logsumexp

from digitlab.nn.activations import Sigmoid, Softmax, sigmoid
from digitlab.nn.layers import Layer


class Cost(ABC):
    """Base class: ``activation`` maps ``z`` to the network's outputs ``a``."""

    def __init__(self, activation: Layer) -> None:
        self.activation = activation

    def output(self, z: np.ndarray) -> np.ndarray:
        return self.activation.forward(z)

    @abstractmethod
    def value(self, z: np.ndarray, y: np.ndarray) -> float:
        """The cost averaged over the mini-batch (targets ``y`` one-hot)."""

    @abstractmethod
    def delta(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The gradient of :meth:`value` with respect to ``z``."""


class QuadraticCost(Cost):
    """C = 1/2 ||y - a||^2 per example: the book's first cost, any output activation."""

    def value(self, z: np.ndarray, y: np.ndarray) -> float:
        diff = self.output(z) - y
        return 0.5 * float(np.einsum("ij,ij->", diff, diff)) / len(z)

    def delta(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        grad = self.output(z) - y
        grad *= grad.dtype.type(1 / len(z))
        return self.activation.backward(grad)


class CrossEntropyCost(Cost):
    """C = -sum_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)] per example, sigmoid outputs.

    Written in terms of z as sum_j [softplus(z_j) - y_j z_j], which never takes the log
    of 0.
    """

    def __init__(self) -> None:
        super().__init__(Sigmoid())

    def value(self, z: np.ndarray, y: np.ndarray) -> float:
        return float((np.logaddexp(0, z) - y * z).sum()) / len(z)

    def delta(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        grad = sigmoid(z)
        grad -= y
        grad *= grad.dtype.type(1 / len(z))
        return grad


class LogLikelihoodCost(Cost):
    """C = -ln a_y per example (the log-probability of the right digit), softmax outputs."""

    def __init__(self) -> None:
        super().__init__(Softmax())

    def value(self, z: np.ndarray, y: np.ndarray) -> float:
        return float((logsumexp(z, axis=1) - np.einsum("ij,ij->i", y, z)).sum()) / len(z)

    def delta(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        grad = self.output(z) - y
        grad *= grad.dtype.type(1 / len(z))
        return grad


def make_cost(name: str, output_activation: Layer) -> Cost:
    """The cost called ``name``; cross-entropy and log-likelihood bring their own output."""
    if name == "quadratic":
        return QuadraticCost(output_activation)
    return {"cross-entropy": CrossEntropyCost, "log-likelihood": LogLikelihoodCost}[name]()
