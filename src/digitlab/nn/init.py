"""Weight initialisers: where gradient descent starts from.

The book's chapter 1 draws every weight from N(0, 1) ("large"); with hundreds of
inputs that makes weighted inputs large, sigmoid neurons saturate and learning starts
slowly.  Chapter 3 scales the weights to N(0, 1/n_in) ("normal"), keeping z of order
one.  Glorot (uniform, scaled by fan-in plus fan-out) suits tanh; He (N(0, 2/n_in))
suits ReLU.
"""

from __future__ import annotations

import numpy as np


def init_weights(
    name: str,
    shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    dtype: np.dtype = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights of ``shape`` and one bias per output unit (the last axis: a dense layer's
    outputs, a convolution's filters), given the fan-in and fan-out of one unit."""
    units = shape[-1]
    if name == "large":
        weights = rng.standard_normal(shape, dtype=np.float32)
        biases = rng.standard_normal(units, dtype=np.float32)
    elif name == "normal":
        weights = rng.standard_normal(shape, dtype=np.float32) / np.sqrt(fan_in, dtype=np.float32)
        biases = rng.standard_normal(units, dtype=np.float32)
    elif name == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights = rng.uniform(-limit, limit, shape)
        biases = np.zeros(units)
    elif name == "he":
        weights = rng.standard_normal(shape, dtype=np.float32) * np.sqrt(2.0 / fan_in)
        biases = np.zeros(units)
    else:
        raise ValueError(f"unknown initialiser {name!r}")
    return weights.astype(dtype), biases.astype(dtype)
