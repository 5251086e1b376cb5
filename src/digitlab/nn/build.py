"""Building a network from a spec."""

from __future__ import annotations

import itertools

import numpy as np

from digitlab.nn.activations import make_activation
from digitlab.nn.costs import make_cost
from digitlab.nn.init import init_dense
from digitlab.nn.layers import Dense, Dropout, Layer
from digitlab.nn.network import Network
from digitlab.spec import Spec


def build_network(spec: Spec, rng: np.random.Generator, dtype: np.dtype = np.float32) -> Network:
    """Dense layers of the spec's sizes, the hidden activation (and dropout) after each
    hidden layer, and the cost with its output activation on top."""
    layers: list[Layer] = []
    sizes = spec.layers
    for index, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(Dense(*init_dense(spec.init, n_in, n_out, rng, dtype)))
        if index < len(sizes) - 2:
            layers.append(make_activation(spec.activation))
            if spec.dropout:
                layers.append(Dropout(spec.dropout, rng))
    cost = make_cost(spec.cost, make_activation(spec.resolved_output_activation))
    return Network(layers, cost)
