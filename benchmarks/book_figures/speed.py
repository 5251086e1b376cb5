"""Chapter 5: the speed of learning of each hidden layer, measured and plotted.

The "speed of learning" of a hidden layer is the length of the gradient of the cost with
respect to its biases over the first 1,000 training images.  It is measured at
initialisation and during training for two, three and four hidden layers of 30 sigmoid
neurons, and for the same networks with ReLU.  As the book's generate_gradient.py:
N(0,1/n_in) weights, cross-entropy, eta 0.1, lambda 5.0, and 500 epochs of full-batch
gradient descent on those 1,000 images (mini-batch 1,000).  The Markdown section that sets
the measurements beside the book's is :mod:`.speed_section`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from digitlab.data import Dataset
from digitlab.spec import make_spec
from digitlab.train import Trainer
from digitlab.train.diagnostics import Diagnostics

from .plotting import STYLES, epoch_axes, save
from .training import Budget, train

SPEED = {
    "cost": "cross-entropy",
    "init": "normal",
    "eta": 0.1,
    "lmbda": 5.0,
    "batch_size": 1_000,
    "train_size": 1_000,
}
DEPTHS = (2, 3, 4)
ACTIVATIONS = ("sigmoid", "relu")
#: The book's speeds of the hidden layers, first to last: at initialisation from its
#: text; at the end of training (the last point of its curves, after 499 epochs) from its
#: data files fig/norms_during_training_{2,3,4}_layers.json.
BOOK_SPEED_START = {2: (0.07, 0.31), 3: (0.012, 0.060, 0.283), 4: (0.003, 0.017, 0.070, 0.285)}
BOOK_SPEED_END = {
    2: (0.003435, 0.009630),
    3: (8.556e-05, 0.0002182, 0.001261),
    4: (8.212e-06, 2.614e-05, 0.0001825, 0.0009247),
}


@dataclass(frozen=True)
class SpeedRun:
    """One network: its hidden layers' speeds at initialisation for every seed, and for
    seed 0 at initialisation and after every epoch."""

    activation: str
    depth: int
    command: str
    start: list[Diagnostics]  # one per seed, seed 0 first
    speeds: np.ndarray  # (epochs + 1, depth), seed 0; row 0: initialisation

    @property
    def start_speeds(self) -> np.ndarray:
        """(seeds, depth): each seed's speeds at initialisation."""
        return np.array([speeds(diagnostics) for diagnostics in self.start])

    @property
    def start_ratio(self) -> float:
        """The first hidden layer's speed over the last's at initialisation, median over
        seeds."""
        return float(np.median(self.start_speeds[:, 0] / self.start_speeds[:, -1]))

    @property
    def factor_per_layer(self) -> float:
        """By how much the speed shrinks per layer back at initialisation: the geometric
        mean over the layers of :attr:`start_ratio`."""
        return self.start_ratio ** (-1 / (self.depth - 1))

    @property
    def dead_at_start(self) -> float | None:
        """The fraction of ReLU units silent for all 1,000 images at initialisation, over
        all hidden layers and seeds (None for sigmoid)."""
        dead = [layer.dead for diagnostics in self.start for layer in diagnostics.hidden]
        return None if None in dead else float(np.mean(dead))


def speeds(diagnostics: Diagnostics) -> list[float]:
    """The speed of learning of each hidden layer, the book's ||dC/db||."""
    return [layer.bias_gradient_norm for layer in diagnostics.hidden]


def run(data: Dataset, budget: Budget) -> list[SpeedRun]:
    """Every network of :data:`ACTIVATIONS` by :data:`DEPTHS`, measured and trained."""
    return [
        measure_network(activation, depth, data, budget)
        for activation in ACTIVATIONS
        for depth in DEPTHS
    ]


def measure_network(activation: str, depth: int, data: Dataset, budget: Budget) -> SpeedRun:
    """Measure one network's speeds at initialisation (every seed), then train seed 0
    with the book's full-batch gradient descent, measuring after every epoch."""
    fields = {
        **SPEED,
        "layers": [784, *[30] * depth, 10],
        "activation": activation,
        "epochs": budget.speed_epochs,
    }
    others = [
        Trainer(make_spec({**fields, "seed": seed}), data, use_test=False).diagnose()
        for seed in range(1, budget.seeds)
    ]
    trained = train(fields, data, use_test=False)
    curve = [speeds(trained.start)] + [speeds(r.diagnostics) for r in trained.history]
    starts = [trained.start, *others]
    return SpeedRun(activation, depth, trained.command, starts, np.array(curve))


def find_speed(result: list[SpeedRun], activation: str, depth: int) -> SpeedRun:
    """The network of ``result`` with this activation and number of hidden layers."""
    return next(net for net in result if (net.activation, net.depth) == (activation, depth))


def draw(result: list[SpeedRun], path: Path) -> None:
    """The book's three plots of speed against epoch (log scale), a row per activation."""
    figure, grid = plt.subplots(len(ACTIVATIONS), len(DEPTHS), figsize=(12, 7), sharey=True)
    for row, activation in zip(grid, ACTIVATIONS, strict=True):
        for axes, depth in zip(row, DEPTHS, strict=True):
            net = find_speed(result, activation, depth)
            epochs = np.arange(len(net.speeds))
            for layer, (colour, style) in enumerate(STYLES[:depth]):
                label = f"hidden layer {layer + 1}"
                axes.plot(epochs, net.speeds[:, layer], color=colour, linestyle=style, label=label)
            axes.set_yscale("log")
            epoch_axes(axes, "‖∂C/∂b‖ (log scale)", f"{activation}, {depth} hidden layers")
            axes.legend(fontsize=7, loc="best")
    figure.suptitle(
        "speed of learning of each hidden layer: 1,000 training images, full-batch "
        "gradient descent (seed 0; epoch 0: initialisation)",
        fontsize=11,
    )
    save(figure, path)
