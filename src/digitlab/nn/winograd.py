"""Winograd's minimal filtering, F(2x2, 3x3): a 3 x 3 convolution in fewer multiplications.

A 3 x 3 filter slid over a 4 x 4 tile of the input gives a 2 x 2 tile of the output: 36
multiplications done directly.  Lavin & Gray (2016) apply Winograd's algorithm: take the
tile and the filter to a 4 x 4 "transform domain" by fixed matrices of 0, 1/2 and +-1,
multiply there element by element (16 multiplications), and come back by a third such
matrix:

    y = A^T [(G g G^T) * (B^T d B)] A

In a layer, the element-by-element product over channels becomes 16 matrix products,
one per position of the 4 x 4 transform domain, each (tiles x channels) @ (channels x
filters).  They do 16/36 of the multiply-adds of the direct method.  The transforms add
products by 16 x 16 and 4 x 16 matrices and a few strided copies, whose cost grows with
the channels or the filters alone, not with their product: for cnn-best's 32 and 64
channels and filters the whole is 40-60 % of the direct method's multiply-adds, for a
handful of channels it would be more than the direct method's.
Tiles overlap by two rows and columns (a stride of 2), so an odd output side is met
with one more row or column of zeros at the input's end, and the extra output dropped.

The backward pass runs the same chain in reverse: each of the three matrices is
applied transposed, and the 16 products are turned around for the filters' gradient
and for the input's.  The arithmetic rounds differently from the direct method, with
errors of the same size (the transforms only add, subtract and halve).
"""

from __future__ import annotations

import numpy as np

#: The input transform B^T, the filter transform G and the output transform A^T.
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

#: The transforms of a tile flattened row by row (the Kronecker products): a 4 x 4 tile
#: ``d`` as a 16-vector is taken to B^T d B by ``INPUT @ d``, a 3 x 3 filter to G g G^T
#: by ``FILTER @ g``, and a transformed 4 x 4 product back to its 2 x 2 outputs by
#: ``OUTPUT @ m``.
INPUT = np.kron(B_T, B_T)
FILTER = np.kron(G, G)
OUTPUT = np.kron(A_T, A_T)


class Tiling:
    """How an input of ``height`` x ``width`` is cut into overlapping 4 x 4 tiles, at a
    stride of 2, for a valid 3 x 3 convolution: ``rows`` x ``cols`` tiles, each giving
    2 x 2 outputs, after ``extra_rows`` and ``extra_cols`` of zeros at the input's
    bottom and right make both output sides even."""

    def __init__(self, height: int, width: int) -> None:
        if height < 3 or width < 3:
            raise ValueError(f"a 3 x 3 filter does not fit a {height} x {width} input")
        self.out_h, self.out_w = height - 2, width - 2
        self.rows, self.cols = -(-self.out_h // 2), -(-self.out_w // 2)
        self.extra_rows = 2 * self.rows - self.out_h
        self.extra_cols = 2 * self.cols - self.out_w


def transformed_filters(weights: np.ndarray) -> np.ndarray:
    """The (3 * 3 * channels, filters) weight matrix as its 16 (channels, filters)
    transform-domain matrices, G g G^T for every channel and filter: (16, channels,
    filters)."""
    per_offset = weights.reshape(9, -1)
    filters = FILTER.astype(weights.dtype) @ per_offset
    return filters.reshape(16, -1, weights.shape[1])


def filters_gradient(transformed: np.ndarray) -> np.ndarray:
    """The gradient of the (3 * 3 * channels, filters) weight matrix, given that of its
    transform-domain form (16, channels, filters)."""
    _, channels, filters = transformed.shape
    back = FILTER.T.astype(transformed.dtype) @ transformed.reshape(16, -1)
    return back.reshape(9 * channels, filters)


def transformed_tiles(x: np.ndarray, tiling: Tiling) -> np.ndarray:
    """The input's tiles, each taken to the transform domain (B^T d B): (16, tiles,
    channels), the tiles in batch-then-row-then-column order."""
    n, _, _, c = x.shape
    if tiling.extra_rows or tiling.extra_cols:
        x = np.pad(x, ((0, 0), (0, tiling.extra_rows), (0, tiling.extra_cols), (0, 0)))
    rows, cols = tiling.rows, tiling.cols
    tiles = np.empty((16, n, rows, cols, c), dtype=x.dtype)
    for i in range(4):
        for j in range(4):
            tiles[4 * i + j] = x[:, i : i + 2 * rows : 2, j : j + 2 * cols : 2, :]
    transformed = INPUT.astype(x.dtype) @ tiles.reshape(16, -1)
    return transformed.reshape(16, n * rows * cols, c)


def outputs(products: np.ndarray, n: int, tiling: Tiling) -> np.ndarray:
    """The 16 transform-domain products (16, tiles, filters) back as the output feature
    maps (n, out_h, out_w, filters): A^T m A for every tile, the tiles laid side by side."""
    f = products.shape[-1]
    rows, cols = tiling.rows, tiling.cols
    corners = OUTPUT.astype(products.dtype) @ products.reshape(16, -1)
    maps = corners.reshape(2, 2, n, rows, cols, f).transpose(2, 3, 0, 4, 1, 5)
    maps = maps.reshape(n, 2 * rows, 2 * cols, f)
    if tiling.extra_rows or tiling.extra_cols:
        maps = maps[:, : tiling.out_h, : tiling.out_w, :]
    return np.ascontiguousarray(maps)


def products_gradient(grad: np.ndarray, tiling: Tiling) -> np.ndarray:
    """The gradient of the 16 transform-domain products (16, tiles, filters), given the
    output's (n, out_h, out_w, filters): A g A^T for every tile's 2 x 2 gradient."""
    n, _, _, f = grad.shape
    rows, cols = tiling.rows, tiling.cols
    if tiling.extra_rows or tiling.extra_cols:  # the dropped outputs had no effect
        grad = np.pad(grad, ((0, 0), (0, tiling.extra_rows), (0, tiling.extra_cols), (0, 0)))
    corners = grad.reshape(n, rows, 2, cols, 2, f).transpose(2, 4, 0, 1, 3, 5)
    corners = np.ascontiguousarray(corners).reshape(4, -1)
    return (OUTPUT.T.astype(grad.dtype) @ corners).reshape(16, n * rows * cols, f)


def input_gradient(
    tiles_grad: np.ndarray, input_shape: tuple[int, ...], tiling: Tiling
) -> np.ndarray:
    """The gradient of the input (``input_shape``), given that of its transformed tiles
    (16, tiles, channels): each tile's gradient taken back by B d B^T, and the
    overlapping tiles added where they came from."""
    n, h, w, c = input_shape
    rows, cols = tiling.rows, tiling.cols
    back = INPUT.T.astype(tiles_grad.dtype) @ tiles_grad.reshape(16, -1)
    back = back.reshape(16, n, rows, cols, c)
    dx = np.zeros((n, h + tiling.extra_rows, w + tiling.extra_cols, c), dtype=tiles_grad.dtype)
    for i in range(4):
        for j in range(4):
            dx[:, i : i + 2 * rows : 2, j : j + 2 * cols : 2, :] += back[4 * i + j]
    return dx[:, :h, :w, :] if tiling.extra_rows or tiling.extra_cols else dx
