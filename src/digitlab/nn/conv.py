"""Convolutional layers: convolution, pooling and the reshapes around them.

Feature maps are batch-first and channels-last: (batch, height, width, channels).  On a
CPU that is the layout in which everything below is contiguous: a convolution is one
matrix product whose result *is* the next layer's input, with no transpose, and the
backward pass adds whole channel vectors.  (NumPy's usual NCHW would leave every
activation and pooling step working on strided views: measured 1.9x slower.)

A convolution lays the input's K x K patches out as rows (im2col, through
``sliding_window_view``) and multiplies them by the filters as columns.  (An input of one
channel is copied kernel offset by kernel offset instead, and its matrix of patches used
transposed: the same matrix, built by a faster copy.)  The backward
pass is the same product turned around (per kernel offset for the input's gradient);
scattering the patch gradients back onto the input adds K x K shifted slices -- a loop
over kernel offsets (25 for 5 x 5), never over pixels.  A 3 x 3 convolution of many
channels into many filters goes another way, by Winograd's minimal filtering
(:mod:`digitlab.nn.winograd`), whose products do 16/36 of the multiplications.
Pooling compares the s x s strided views of a feature map (4 for 2 x 2).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from digitlab.nn import winograd
from digitlab.nn.layers import Layer, Parameter, across_positions, column_sums, per_example

#: The fewest input channels and filters for which a 3 x 3 convolution goes by Winograd's
#: transforms: below, they cost more than the products they save
#: (``python benchmarks/winograd.py``, docs/results/winograd.md).
WINOGRAD_FROM = 32


class Conv2D(Layer):
    """``filters`` feature maps from K x K patches, stride 1, 'valid' or 'same' padding.

    ``weights`` has shape (K, K, channels, filters); it is kept as the
    (K*K*channels, filters) matrix the patches multiply."""

    def __init__(self, weights: np.ndarray, biases: np.ndarray, padding: str = "valid") -> None:
        self.kernel, _, self.channels, self.filters = weights.shape
        self.weights = Parameter(weights.reshape(-1, self.filters).copy(), regularize=True)
        self.biases = Parameter(biases, regularize=False)
        self.params = (self.weights, self.biases)
        # 'same' adds K - 1 rows and columns in all, the odd one of an even K after the
        # image (as PyTorch and TensorFlow do), so the output keeps the input's size
        same = padding == "same"
        self.pad = (self.kernel - 1) // 2 if same else 0  # before: top and left
        self.pad_after = self.kernel // 2 if same else 0  # bottom and right
        #: 3 x 3 filters over many channels into many filters go by Winograd's F(2x2,
        #: 3x3), which multiplies less (see digitlab.nn.winograd and WINOGRAD_FROM).
        self.winograd = self.kernel == 3 and min(self.channels, self.filters) >= WINOGRAD_FROM

    def output_shape(self, height: int, width: int, channels: int) -> tuple[int, int, int]:
        change = self.pad + self.pad_after - self.kernel + 1
        return height + change, width + change, self.filters

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if self.pad_after:
            pad = (self.pad, self.pad_after)
            x = np.pad(x, ((0, 0), pad, pad, (0, 0)))
        if training:
            self._input_shape = x.shape
        if self.winograd:
            z = self._winograd_forward(x, training)
        else:
            z = self._direct_forward(x, training)
        rows = per_example(z)
        rows += across_positions(self.biases.value, z)
        return z

    def _direct_forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        n, h, w, c = x.shape
        k = self.kernel
        out_h, out_w = h - k + 1, w - k + 1
        patches = sliding_window_view(x, (k, k), axis=(1, 2))  # (n, out_h, out_w, c, k, k)
        if c == 1:
            # One channel (usually the image itself): a patch row would be K*K single
            # floats from K image rows, a copy of short strided pieces.  Built transposed
            # instead, the whole batch shifted and cropped once per kernel offset, the copy
            # streams through memory, and the matrix products take the transpose as it is.
            by_offset = np.ascontiguousarray(patches.transpose(4, 5, 3, 0, 1, 2))
            columns = by_offset.reshape(k * k * c, n * out_h * out_w).T
        else:
            columns = patches.transpose(0, 1, 2, 4, 5, 3).reshape(n * out_h * out_w, k * k * c)
        if training:
            self._columns = columns
        return (columns @ self.weights.value).reshape(n, out_h, out_w, self.filters)

    def _winograd_forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        tiling = winograd.Tiling(*x.shape[1:3])
        filters = winograd.transformed_filters(self.weights.value)
        tiles = winograd.transformed_tiles(x, tiling)
        if training:
            self._tiling, self._tiles, self._filters = tiling, tiles, filters
        return winograd.outputs(np.matmul(tiles, filters), len(x), tiling)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        n, out_h, out_w, f = grad.shape
        rows = grad.reshape(n * out_h * out_w, f)
        self.biases.grad[...] = column_sums(rows)
        if self.winograd:
            dx = self._winograd_backward(grad)
        else:
            dx = self._direct_backward(grad)
        if dx is None:
            return grad
        if self.pad_after:
            h, w = dx.shape[1:3]
            dx = dx[:, self.pad : h - self.pad_after, self.pad : w - self.pad_after, :]
        return dx

    def _direct_backward(self, grad: np.ndarray) -> np.ndarray | None:
        n, out_h, out_w, f = grad.shape
        rows = grad.reshape(n * out_h * out_w, f)
        np.dot(self._columns.T, rows, out=self.weights.grad)
        if not self.propagate:
            return None
        k, c = self.kernel, self.channels
        # One product per kernel offset, (rows x filters) @ (filters x channels), so each
        # offset's patch gradients come out contiguous and the slice-adds below stream
        # through memory (as rows of one big product they were 25-way interleaved, and
        # the adds took longer than the products).  book-ch6-conv2 at mini-batch 64:
        # a training step went from 9.1 to 8.3 ms (median of 6 alternating runs).
        per_offset = self.weights.value.reshape(k * k, c, self.filters).transpose(0, 2, 1)
        patch_grads = np.matmul(rows, per_offset).reshape(k, k, n, out_h, out_w, c)
        dx = np.zeros(self._input_shape, dtype=grad.dtype)
        for i in range(k):
            for j in range(k):
                dx[:, i : i + out_h, j : j + out_w, :] += patch_grads[i, j]
        return dx

    def _winograd_backward(self, grad: np.ndarray) -> np.ndarray | None:
        products_grad = winograd.products_gradient(grad, self._tiling)
        filters_grad = np.matmul(self._tiles.transpose(0, 2, 1), products_grad)
        self.weights.grad[...] = winograd.filters_gradient(filters_grad)
        if not self.propagate:
            return None
        tiles_grad = np.matmul(products_grad, self._filters.transpose(0, 2, 1))
        return winograd.input_gradient(tiles_grad, self._input_shape, self._tiling)


class Pool2D(Layer):
    """Max or average over non-overlapping s x s blocks (height and width divisible by s)."""

    def __init__(self, size: int, mode: str = "max") -> None:
        self.size = size
        self.mode = mode
        s = size
        self._offsets = [(i, j) for i in range(s) for j in range(s)]

    def output_shape(self, height: int, width: int, channels: int) -> tuple[int, int, int]:
        return height // self.size, width // self.size, channels

    def _views(self, x: np.ndarray) -> list[np.ndarray]:
        s = self.size
        return [x[:, i::s, j::s, :] for i, j in self._offsets]

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        views = self._views(x)
        if self.mode == "avg":
            out = views[0].copy()
            for view in views[1:]:
                out += view
            out *= out.dtype.type(1 / len(views))
        else:
            out = views[0].copy()
            for view in views[1:]:
                np.maximum(out, view, out=out)
        if training:
            self._input, self._out = x, out
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        # The input seen as (n, h/s, s, w/s, s, c) -- a free reshape of a contiguous array --
        # lines each block's s x s inputs up against its one output.
        x = np.ascontiguousarray(self._input)
        n, h, w, c = x.shape
        s = self.size
        blocks = (n, h // s, s, w // s, s, c)
        if self.mode == "avg":
            per_block = grad[:, :, None, :, None, :]
            dx = np.broadcast_to(per_block * grad.dtype.type(1 / s**2), blocks)
            return dx.reshape(x.shape)
        # A block's gradient goes to the first of its inputs that equals the maximum (blank
        # background gives ties), offset by offset, the last taking it where no earlier one
        # did.  Every mask is the size of the pooled map, not of the input: about 1.5-2.5x
        # faster than comparing the whole input at once and breaking the ties after.
        inputs = x.reshape(blocks)
        dx = np.empty(blocks, dtype=grad.dtype)
        claimed = None
        for number, (i, j) in enumerate(self._offsets, 1):
            if number == len(self._offsets):
                winner = True if claimed is None else np.logical_not(claimed, out=claimed)
            else:
                winner = np.equal(inputs[:, :, i, :, j, :], self._out)
                if claimed is None:
                    claimed = winner.copy()
                else:
                    np.greater(winner, claimed, out=winner)  # winner and not claimed
                    claimed |= winner
            np.multiply(grad, winner, out=dx[:, :, i, :, j, :])
        return dx.reshape(x.shape)


class Reshape(Layer):
    """Rows of pixels <-> images (or feature maps <-> a flat vector for dense layers)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._input_shape = x.shape
        return x.reshape(len(x), *self.shape)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad.reshape(self._input_shape)
