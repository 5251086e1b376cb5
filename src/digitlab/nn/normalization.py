"""Batch normalisation (Ioffe & Szegedy, 2015).

Each feature -- a dense layer's neuron, or a convolution's channel -- is shifted and
scaled to zero mean and unit variance over the mini-batch, then given back a learned
scale and shift.  The next layer then sees inputs whose distribution does not drift
as the earlier weights change, which lets larger learning rates train stably.

Because feature maps are channels-last (see :mod:`digitlab.nn.conv`), "every axis but
the last" is the batch for dense rows (batch, features) and the batch plus the pixels
for feature maps (batch, height, width, channels): one layer serves both.

At test time the batch's statistics are replaced by running averages gathered during
training, so a single image gets the same answer whatever batch it arrives in.  Those
averages are not trained; they are the layer's ``buffers``, saved with the weights.
"""

from __future__ import annotations

import numpy as np

from digitlab.nn.layers import Layer, Parameter

#: Added to the variance before the square root, so a constant feature cannot divide by 0.
EPSILON = 1e-5
#: Weight of the newest mini-batch in the running mean and variance.
RUNNING_MOMENTUM = 0.1


class BatchNorm(Layer):
    """``y = scale * (x - mean) / sqrt(var + eps) + shift`` per feature (the last axis)."""

    def __init__(self, features: int, dtype: np.dtype = np.float32) -> None:
        self.scale = Parameter(np.ones(features, dtype=dtype), regularize=False)
        self.shift = Parameter(np.zeros(features, dtype=dtype), regularize=False)
        self.params = (self.scale, self.shift)
        self.running_mean = np.zeros(features, dtype=dtype)
        self.running_var = np.ones(features, dtype=dtype)
        self.buffers = (self.running_mean, self.running_var)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        axes = tuple(range(x.ndim - 1))
        if training:
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            count = x.size // x.shape[-1]
            momentum = x.dtype.type(RUNNING_MOMENTUM)
            self.running_mean += momentum * (mean - self.running_mean)
            # the running variance is the unbiased estimate, as at test time it stands in
            # for the population's
            unbiased = var * x.dtype.type(count / max(count - 1, 1))
            self.running_var += momentum * (unbiased - self.running_var)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = (1 / np.sqrt(var + x.dtype.type(EPSILON))).astype(x.dtype)
        normalized = (x - mean) * inv_std
        if training:
            self._normalized, self._inv_std = normalized, inv_std
        return normalized * self.scale.value + self.shift.value

    def backward(self, grad: np.ndarray) -> np.ndarray:
        axes = tuple(range(grad.ndim - 1))
        normalized = self._normalized
        self.shift.grad[...] = grad.sum(axis=axes)
        self.scale.grad[...] = (grad * normalized).sum(axis=axes)
        count = grad.size // grad.shape[-1]
        # d/dx of the normalisation, with the mean and variance depending on x as well:
        # (scale / std) * (g - mean(g) - x_hat * mean(g * x_hat))
        return (self.scale.value * self._inv_std) * (
            grad
            - self.shift.grad / grad.dtype.type(count)
            - normalized * (self.scale.grad / grad.dtype.type(count))
        )
