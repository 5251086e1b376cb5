"""Convolutional layers: convolution, pooling and the reshapes around them.

Arrays are (batch, channels, height, width).  A convolution is one matrix product: the
input's K x K patches are laid out as rows (im2col, through NumPy's
``sliding_window_view``, which makes the patches without copying until the reshape) and
multiplied by the filters as columns.  The backward pass is the same product turned
around; scattering the patch gradients back onto the input adds K x K shifted slices,
a loop over kernel offsets (25 for a 5 x 5 kernel), never over pixels.  Pooling
reshapes each s x s block into its own axis and reduces over it.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from digitlab.nn.layers import Layer, Parameter


class Conv2D(Layer):
    """``filters`` feature maps from K x K patches, stride 1, 'valid' or 'same' padding."""

    def __init__(self, weights: np.ndarray, biases: np.ndarray, padding: str = "valid") -> None:
        # weights: (filters, channels, K, K), stored flat as (channels*K*K, filters) for the product
        self.filters, self.channels, self.kernel, _ = weights.shape
        self.weights = Parameter(weights.reshape(self.filters, -1).T.copy(), regularize=True)
        self.biases = Parameter(biases, regularize=False)
        self.params = (self.weights, self.biases)
        self.pad = (self.kernel - 1) // 2 if padding == "same" else 0
        self.propagate = True

    def output_shape(self, channels: int, height: int, width: int) -> tuple[int, int, int]:
        size = 2 * self.pad - self.kernel + 1
        return self.filters, height + size, width + size

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if self.pad:
            x = np.pad(x, ((0, 0), (0, 0), (self.pad,) * 2, (self.pad,) * 2))
        n, c, h, w = x.shape
        k = self.kernel
        out_h, out_w = h - k + 1, w - k + 1
        patches = sliding_window_view(x, (k, k), axis=(2, 3))  # (n, c, out_h, out_w, k, k)
        columns = patches.transpose(0, 2, 3, 1, 4, 5).reshape(n * out_h * out_w, c * k * k)
        if training:
            self._columns, self._input_shape = columns, x.shape
        z = columns @ self.weights.value
        z += self.biases.value
        return z.reshape(n, out_h, out_w, self.filters).transpose(0, 3, 1, 2)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        n, f, out_h, out_w = grad.shape
        rows = grad.transpose(0, 2, 3, 1).reshape(n * out_h * out_w, f)
        np.dot(self._columns.T, rows, out=self.weights.grad)
        np.sum(rows, axis=0, out=self.biases.grad)
        if not self.propagate:
            return grad
        k, c = self.kernel, self.channels
        patch_grads = (rows @ self.weights.value.T).reshape(n, out_h, out_w, c, k, k)
        patch_grads = patch_grads.transpose(0, 3, 4, 5, 1, 2)  # (n, c, k, k, out_h, out_w)
        dx = np.zeros(self._input_shape, dtype=grad.dtype)
        for i in range(k):
            for j in range(k):
                dx[:, :, i : i + out_h, j : j + out_w] += patch_grads[:, :, i, j]
        if self.pad:
            p = self.pad
            dx = dx[:, :, p:-p, p:-p]
        return dx


class Pool2D(Layer):
    """Max or average over non-overlapping s x s blocks (height and width divisible by s)."""

    def __init__(self, size: int, mode: str = "max") -> None:
        self.size = size
        self.mode = mode

    def output_shape(self, channels: int, height: int, width: int) -> tuple[int, int, int]:
        return channels, height // self.size, width // self.size

    def _blocks(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        s = self.size
        blocks = x.reshape(n, c, h // s, s, w // s, s).transpose(0, 1, 2, 4, 3, 5)
        return blocks.reshape(n, c, h // s, w // s, s * s)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        blocks = self._blocks(x)
        if self.mode == "avg":
            out = blocks.mean(axis=-1)
        else:
            winners = blocks.argmax(axis=-1)
            out = np.take_along_axis(blocks, winners[..., None], axis=-1)[..., 0]
            if training:
                self._winners = winners
        if training:
            self._input_shape = x.shape
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        n, c, h, w = self._input_shape
        s = self.size
        if self.mode == "avg":
            blocks = np.repeat(grad[..., None] / (s * s), s * s, axis=-1)
        else:
            blocks = np.zeros((*grad.shape, s * s), dtype=grad.dtype)
            np.put_along_axis(blocks, self._winners[..., None], grad[..., None], axis=-1)
        blocks = blocks.reshape(n, c, h // s, w // s, s, s).transpose(0, 1, 2, 4, 3, 5)
        return blocks.reshape(n, c, h, w)


class Reshape(Layer):
    """Rows of pixels <-> images (or feature maps <-> a flat vector for dense layers)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._input_shape = x.shape
        return x.reshape(len(x), *self.shape)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad.reshape(self._input_shape)
