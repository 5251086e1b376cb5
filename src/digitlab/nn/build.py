"""Building a network from a spec: its layer plan, activations, dropout and cost."""

from __future__ import annotations

import numpy as np

from digitlab.errors import SpecError
from digitlab.nn.activations import make_activation
from digitlab.nn.conv import Conv2D, Pool2D, Reshape
from digitlab.nn.costs import make_cost
from digitlab.nn.init import init_weights
from digitlab.nn.layers import Dense, Dropout, Layer
from digitlab.nn.network import Network
from digitlab.nn.normalization import BatchNorm
from digitlab.spec import INPUT_SHAPE, ConvPlan, DensePlan, PoolPlan, Spec

#: The most weights a network may have: 100 million (400 MB as float32, three times that
#: again with Adam's state) -- cnn-best has 1.7 million.  Checked layer by layer before
#: the weights are allocated, so an absurd spec (a billion units) fails at once.
MAX_WEIGHTS = 100_000_000


def _check_size(total: int, shape: tuple[int, ...]) -> int:
    """``total`` plus the weights of a layer of ``shape``, or a SpecError past the limit."""
    total += int(np.prod(shape, dtype=object))
    if total > MAX_WEIGHTS:
        raise SpecError(
            f"layers: the network would have over {MAX_WEIGHTS:,} weights; use fewer units"
        )
    return total


def build_network(spec: Spec, rng: np.random.Generator, dtype: np.dtype = np.float32) -> Network:
    """Layers as the spec plans them, the hidden activation after every convolution and
    hidden dense layer (batch-normalised before it if the spec asks, with the spec's
    dropout after hidden dense layers), and the cost with its output activation on top.
    A max-pooling layer goes in front of the activation it follows when that activation
    is increasing: the same function, at a quarter of the activation's work."""
    plan = spec.layer_plan()
    layers: list[Layer] = []
    shape: tuple[int, ...] = (spec.input_size,)  # flat rows, or (height, width, channels)
    channels, height, width = INPUT_SHAPE
    last_dense = max(i for i, layer in enumerate(plan) if isinstance(layer, DensePlan))
    weights_so_far = 0
    for index, layer in enumerate(plan):
        if isinstance(layer, ConvPlan | PoolPlan) and len(shape) == 1:
            shape = (height, width, channels)  # channels-last inside the network: see nn.conv
            layers.append(Reshape(shape))
        if isinstance(layer, ConvPlan):
            filters, kernel = layer.filters, layer.kernel
            weights_so_far = _check_size(weights_so_far, (kernel, kernel, shape[2], filters))
            weights, biases = init_weights(
                spec.init,
                (kernel, kernel, shape[2], filters),
                shape[2] * kernel**2,
                filters * kernel**2,
                rng,
                dtype,
            )
            conv = Conv2D(weights, biases, layer.padding)
            shape = conv.output_shape(*shape)
            if min(shape[:2]) < 1:
                raise SpecError(f"layers: {filters} {kernel}x{kernel} filters do not fit the image")
            layers += [
                conv,
                *_normalization(spec, filters, dtype),
                make_activation(spec.activation),
            ]
        elif isinstance(layer, PoolPlan):
            size, mode = layer.size, layer.mode
            if shape[0] % size or shape[1] % size:
                raise SpecError(
                    f"layers: pool:{size} cannot divide {shape[0]}x{shape[1]} feature maps"
                )
            pool = Pool2D(size, mode)
            if mode == "max" and layers[-1].increasing:
                # Max-pooling commutes with an increasing activation, and pooling first
                # leaves the activation a quarter of the values (for 2 x 2) to compute and
                # differentiate: a book-ch6-conv2 step took 5 % less time at mini-batches
                # 10 and 64 (medians of 15 alternating runs, 1.46 -> 1.39 and 9.2 -> 8.8 ms).
                layers.insert(len(layers) - 1, pool)
            else:
                layers.append(pool)
            shape = pool.output_shape(*shape)
        elif isinstance(layer, DensePlan):
            if len(shape) == 3:
                layers.append(Reshape((shape[0] * shape[1] * shape[2],)))
                shape = (shape[0] * shape[1] * shape[2],)
            units = layer.units
            weights_so_far = _check_size(weights_so_far, (shape[0], units))
            weights, biases = init_weights(
                spec.init, (shape[0], units), shape[0], units, rng, dtype
            )
            layers.append(Dense(weights, biases))
            shape = (units,)
            if index < last_dense:
                layers += [*_normalization(spec, units, dtype), make_activation(spec.activation)]
                if spec.dropout:
                    layers.append(Dropout(spec.dropout, rng))
        else:  # an explicit dropout layer
            layers.append(Dropout(layer.p, rng))
    cost = make_cost(spec.cost, make_activation(spec.resolved_output_activation))
    return Network(layers, cost)


def _normalization(spec: Spec, features: int, dtype: np.dtype) -> list[Layer]:
    """A batch-norm layer before an activation when the spec asks for one, else nothing."""
    return [BatchNorm(features, dtype)] if spec.batch_norm else []
