"""Diagnostics: what is happening inside a network while it learns, measured once per epoch.

Accuracy says *whether* a network learns; these numbers say *why* it learns slowly or not
at all.  They are the quantities the book reasons with:

- the gradient of the cost with respect to each layer's biases and weights.  The length
  of the bias gradient is what chapter 5 calls the layer's "speed of learning"; when the
  first hidden layer's is a hundred times smaller than the last's, the gradient is
  vanishing on its way back;
- the length of each layer's weights, which L2 and L1 regularisation keep small;
- the fraction of saturated sigmoid or tanh units, whose slope is so flat that almost no
  gradient passes them (the cause of the quadratic cost's learning slowdown, when the
  output neurons saturate at the wrong value), and of dead ReLUs, silent for every image.

They are measured on a fixed batch of training images (the first ``PROBE_SIZE``, or
``PROBE_SIZE_CONV`` for convolutional networks, whose patch matrices are large) by a
separate copy of the network without dropout, so measuring changes nothing in the run:
not its weights, not its random numbers, not batch normalisation's running averages.
The gradients are those of the cost alone, without the L1/L2 penalty.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from digitlab.nn.activations import ReLU, Sigmoid, Tanh
from digitlab.nn.build import build_network
from digitlab.nn.conv import Conv2D
from digitlab.nn.layers import Dense, Dropout
from digitlab.nn.network import Network
from digitlab.spec import Spec

PROBE_SIZE = 1_000
PROBE_SIZE_CONV = 256


@dataclass(frozen=True)
class LayerDiagnostics:
    """One dense or convolutional layer.  ``saturated`` is the fraction of (image, unit)
    pairs at which the sigmoid/tanh after this layer (or the sigmoid output, for the
    output layer) is saturated; ``dead`` the fraction of the ReLU units after it that
    were zero for every image of the batch (for a convolution a unit is one filter at
    one position, so positions the digits never reach, such as the borders, count as
    dead).  Each is None where it does not apply."""

    layer: str
    weight_norm: float
    weight_gradient_norm: float
    bias_gradient_norm: float
    saturated: float | None = None
    dead: float | None = None


@dataclass(frozen=True)
class Diagnostics:
    """Every dense and convolutional layer, input side first (the last is the output
    layer), and for sigmoid outputs the fraction of (image, output) pairs that are
    saturated at the wrong end: more than 0.5 from their target, where the quadratic
    cost's gradient, carrying sigma', nearly vanishes."""

    layers: tuple[LayerDiagnostics, ...]
    output_stuck: float | None = None

    @property
    def hidden(self) -> tuple[LayerDiagnostics, ...]:
        return self.layers[:-1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnostics:
        return cls(
            layers=tuple(LayerDiagnostics(**layer) for layer in data["layers"]),
            output_stuck=data.get("output_stuck"),
        )

    def flat(self) -> dict[str, float | None]:
        """``{"dense1_weight_norm": ..., ...}``: one column per number, for CSV."""
        row: dict[str, float | None] = {}
        for layer in self.layers:
            prefix = layer.layer.replace(" ", "")
            for key, value in asdict(layer).items():
                if key != "layer":
                    row[f"{prefix}_{key}"] = value
        row["output_stuck"] = self.output_stuck
        return row


class Probe:
    """Measures :class:`Diagnostics` of a network on one fixed batch."""

    def __init__(self, spec: Spec, images: np.ndarray, targets: np.ndarray) -> None:
        built = build_network(spec, np.random.default_rng(0))
        # Without dropout the measurement is a function of the weights alone.
        self.network = Network(
            [layer for layer in built.layers if not isinstance(layer, Dropout)], built.cost
        )
        size = PROBE_SIZE_CONV if self.network.convolutional else PROBE_SIZE
        self.images, self.targets = images[:size], targets[:size]

    def measure(self, network: Network) -> Diagnostics:
        """The diagnostics of ``network``'s current weights.  Batch normalisation uses the
        probe batch's own statistics, as in training."""
        probe = self.network
        probe.load_arrays(network.arrays())
        with np.errstate(over="ignore", invalid="ignore"):
            z = probe.gradients(self.images, self.targets)
            rows: list[LayerDiagnostics] = []
            counts = {"dense": 0, "conv": 0}
            for layer in probe.layers:
                if isinstance(layer, Dense | Conv2D):
                    kind = "dense" if isinstance(layer, Dense) else "conv"
                    counts[kind] += 1
                    rows.append(
                        LayerDiagnostics(
                            layer=f"{kind} {counts[kind]}",
                            weight_norm=_norm(layer.weights.value),
                            weight_gradient_norm=_norm(layer.weights.grad),
                            bias_gradient_norm=_norm(layer.biases.grad),
                        )
                    )
                elif rows and isinstance(layer, Sigmoid | Tanh):
                    rows[-1] = replace(rows[-1], saturated=float(layer.saturated().mean()))
                elif rows and isinstance(layer, ReLU):
                    rows[-1] = replace(rows[-1], dead=float(layer.silent().mean()))
            stuck = None
            output = probe.cost.activation
            if isinstance(output, Sigmoid):
                activations = output.forward(z)
                saturated = output.saturated()
                rows[-1] = replace(rows[-1], saturated=float(saturated.mean()))
                stuck = float((saturated & (np.abs(activations - self.targets) > 0.5)).mean())
        return Diagnostics(tuple(rows), stuck)


def _norm(array: np.ndarray) -> float:
    return float(np.linalg.norm(array.astype(np.float64, copy=False)))
