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

When a mini-batch is cut into shards that separate threads backpropagate (see
:mod:`digitlab.nn.parallel`), each shard's layer is given a ``gather``: the shards
exchange their partial sums there, so the statistics still are the whole batch's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from digitlab.nn.layers import Layer, Parameter, across_positions, column_sums, per_example

#: Added to the variance before the square root, so a constant feature cannot divide by 0.
EPSILON = 1e-5
#: Weight of the newest mini-batch in the running mean and variance.
RUNNING_MOMENTUM = 0.1


def combined_moments(parts: list[tuple[np.ndarray, np.ndarray, int]]) -> tuple:
    """The whole batch's (mean, variance, count) from its pieces' (mean, variance,
    count), by Chan et al.'s pairwise combination: exact, and stable where
    E[x^2] - E[x]^2 is not.  The pieces are added in the order given."""
    dtype = parts[0][0].dtype
    total = sum(part[2] for part in parts)
    mean = sum(part[0] * (part[2] / total) for part in parts).astype(dtype)
    var = sum((part[1] + (part[0] - mean) ** 2) * (part[2] / total) for part in parts)
    return mean, var.astype(dtype), total


def combined_sums(parts: list[tuple]) -> tuple:
    """Element by element, the sum of the pieces' tuples (in the order given)."""
    return tuple(sum(values) for values in zip(*parts, strict=True))


class BatchNorm(Layer):
    """``y = scale * (x - mean) / sqrt(var + eps) + shift`` per feature (the last axis)."""

    def __init__(self, features: int, dtype: np.dtype = np.float32) -> None:
        self.scale = Parameter(np.ones(features, dtype=dtype), regularize=False)
        self.shift = Parameter(np.zeros(features, dtype=dtype), regularize=False)
        self.params = (self.scale, self.shift)
        self.running_mean = np.zeros(features, dtype=dtype)
        self.running_var = np.ones(features, dtype=dtype)
        self.buffers = (self.running_mean, self.running_var)
        #: Set while this layer backpropagates one shard of a batch: takes this shard's
        #: partial results and a function that combines all shards' (given in shard
        #: order), and returns that combination, the same for every shard.
        self.gather: Callable[[tuple, Callable[[list[tuple]], tuple]], tuple] | None = None

    def _batch_statistics(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
        """Mean and (biased) variance of each feature (the last axis of ``x``) over the
        batch, the count, and ``x`` minus that mean, as :func:`per_example` rows."""
        rows = x.reshape(-1, x.shape[-1])
        count = len(rows)
        mean = column_sums(rows) / rows.dtype.type(count)
        centered = per_example(x) - across_positions(mean, x)
        features = centered.reshape(rows.shape)
        var = np.einsum("ij,ij->j", features, features) / rows.dtype.type(count)
        if self.gather is None:
            return mean, var, count, centered
        whole, var, total = self.gather((mean, var, count), combined_moments)
        centered -= across_positions(whole - mean, x)  # centred on the whole batch's mean
        return whole, var, total, centered

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # Per-feature statistics work on (everything but the last axis, features) rows;
        # the per-feature factors act on one row per example (see across_positions).
        if training:
            mean, var, count, centered = self._batch_statistics(x)
            momentum = x.dtype.type(RUNNING_MOMENTUM)
            self.running_mean += momentum * (mean - self.running_mean)
            # the running variance is the unbiased estimate, as at test time it stands in
            # for the population's
            unbiased = var * x.dtype.type(count / max(count - 1, 1))
            self.running_var += momentum * (unbiased - self.running_var)
        else:
            var = self.running_var
            centered = per_example(x) - across_positions(self.running_mean, x)
        inv_std = (1 / np.sqrt(var + x.dtype.type(EPSILON))).astype(x.dtype)
        if training:
            # the centred rows are kept, not the normalised ones (centred times inv_std):
            # the backward pass folds inv_std into its per-feature factors, and the
            # forward pass saves a whole pass over the feature maps
            self._centered, self._inv_std = centered, inv_std
        out = centered * across_positions(self.scale.value * inv_std, x)
        out += across_positions(self.shift.value, x)
        return out.reshape(x.shape)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        rows = grad.reshape(-1, grad.shape[-1])
        centered, inv_std = self._centered, self._inv_std
        shift_total = self.shift.grad[...] = column_sums(rows)
        # the sum of grad times the normalised input, x_hat = centred * inv_std
        features = centered.reshape(rows.shape)
        scale_total = self.scale.grad[...] = np.einsum("ij,ij->j", rows, features) * inv_std
        count = len(rows)
        if self.gather is not None:  # the whole batch's sums (each shard keeps its own part)
            shift_total, scale_total, count = self.gather(
                (shift_total, scale_total, count), combined_sums
            )
        # d/dx of the normalisation, with the mean and variance depending on x as well:
        # (scale / std) * (g - mean(g) - x_hat * mean(g * x_hat)), as three passes
        gain = self.scale.value * inv_std
        per_count = grad.dtype.type(1 / count)
        dx = per_example(grad) * across_positions(gain, grad)
        dx -= centered * across_positions(gain * inv_std * scale_total * per_count, grad)
        dx -= across_positions(gain * shift_total * per_count, grad)
        return dx.reshape(grad.shape)
