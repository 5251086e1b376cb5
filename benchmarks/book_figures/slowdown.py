"""Chapter 3: the learning slowdown of a saturated neuron.

One sigmoid neuron learning to turn an input of 1 into 0 from the saturated start
w = b = 2, with the quadratic cost (eta 0.15) and the cross-entropy (the book's eta
0.005, and 0.15 for the same rate as the quadratic), 300 epochs.  The neuron is built
from the engine's layers; it needs no images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from report import table

from digitlab.data import Dataset
from digitlab.nn.activations import Sigmoid
from digitlab.nn.costs import CrossEntropyCost, QuadraticCost
from digitlab.nn.layers import Dense
from digitlab.nn.network import Network
from digitlab.nn.optimizers import make_optimizer

from .phrases import epochs_text
from .plotting import STYLES, epoch_axes, save
from .training import Budget

TITLE = "Chapter 3: the learning slowdown of a saturated neuron"
NEURON_EPOCHS = 300
NEURON_START = 2.0  # weight and bias: output sigma(4) = 0.98 for the input 1 (target 0)
#: (cost, eta): the book's two animations (its eta 0.005 for the cross-entropy, chosen, it
#: says, to make the behaviour visible), and the cross-entropy at the quadratic's rate.
NEURON_RUNS = (("quadratic", 0.15), ("cross-entropy", 0.005), ("cross-entropy", 0.15))


@dataclass(frozen=True)
class NeuronRun:
    """The cost and the output at every epoch (index 0: before learning), and the
    gradient of the cost with respect to the bias at the start."""

    cost: str
    eta: float
    costs: list[float]
    outputs: list[float]
    start_gradient: float

    @property
    def label(self) -> str:
        return f"{self.cost} cost, η = {self.eta:g}"

    def epochs_to_lose(self, fraction: float) -> int | None:
        """The first epoch at which the cost has lost ``fraction`` of its starting value."""
        target = (1 - fraction) * self.costs[0]
        return next((epoch for epoch, cost in enumerate(self.costs) if cost <= target), None)


def run_neuron(cost_name: str, eta: float) -> NeuronRun:
    """One sigmoid neuron, input 1 and target 0, trained by plain gradient descent: one
    step on the one example per epoch, as the book's animations do."""
    x, y = np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32)
    start = np.full((1, 1), NEURON_START, np.float32)
    cost = QuadraticCost(Sigmoid()) if cost_name == "quadratic" else CrossEntropyCost()
    network = Network([Dense(start.copy(), start[0].copy())], cost)
    optimizer = make_optimizer("sgd", network.params, eta, 0.0, 0.0, 0.0, 1)
    network.gradients(x, y)
    start_gradient = float(network.params[1].grad[0])  # the bias's
    costs, outputs = [], []
    for epoch in range(NEURON_EPOCHS + 1):
        z = network.forward(x)
        costs.append(cost.value(z, y))
        outputs.append(float(cost.output(z)[0, 0]))
        if epoch < NEURON_EPOCHS:
            network.gradients(x, y, optimizer.gradient_scale)
            optimizer.step()
    return NeuronRun(cost_name, eta, costs, outputs, start_gradient)


def run(data: Dataset, budget: Budget) -> list[NeuronRun]:
    """The book's saturated neuron with both costs (it needs no images and no budget)."""
    return [run_neuron(cost, eta) for cost, eta in NEURON_RUNS]


def draw(result: list[NeuronRun], path: Path) -> None:
    """The book's animations as curves: the cost (as a fraction of where it started, so
    the two costs share an axis) and the neuron's output, against the epoch."""
    figure, (costs, outputs) = plt.subplots(1, 2, figsize=(10, 4))
    for neuron, (colour, style) in zip(result, STYLES, strict=False):
        epochs = np.arange(len(neuron.costs))
        relative = np.array(neuron.costs) / neuron.costs[0]
        costs.plot(epochs, relative, color=colour, linestyle=style, label=neuron.label)
        outputs.plot(epochs, neuron.outputs, color=colour, linestyle=style, label=neuron.label)
    epoch_axes(costs, "cost / cost at epoch 0", "cost")
    epoch_axes(outputs, "output a (target 0)", "the neuron's output")
    for axes in (costs, outputs):
        axes.set_ylim(0, 1.05)
    outputs.legend(fontsize=8, loc="center left", bbox_to_anchor=(0.12, 0.5))  # empty there
    figure.suptitle(f"one sigmoid neuron, input 1, target 0, start w = b = {NEURON_START:g}")
    save(figure, path)


def section(result: list[NeuronRun], image: str) -> str:
    """The Markdown section: how fast each neuron learns, the plot, and why."""
    return f"""The book's animations: one sigmoid neuron learns to turn the input 1 into 0,
starting from w = b = 2 (output 0.98: badly wrong, and saturated).  With the quadratic
cost (η = 0.15) "learning starts out much more slowly": for "the first 150 or so epochs"
the weight and bias hardly change.  With the cross-entropy cost (the book uses η = 0.005
there, and says the rates of the two costs cannot be compared) there is no such slowdown.
We add the cross-entropy at the quadratic's η = 0.15.  The plot shows each cost as a
fraction of its value at the start, so that the two costs share an axis.

{comparison_table(result)}

![Cost and output of one saturated neuron per epoch, quadratic against cross-entropy
cost]({image})

{slowdown_finding(result)}"""


def comparison_table(result: list[NeuronRun]) -> str:
    """One row per cost and rate: the start, how soon the cost falls, and the output."""
    half = NEURON_EPOCHS // 2
    header = [
        "cost, learning rate",
        "output at start",
        "∂C/∂b at start",
        "epochs to lose 10 % of the cost",
        "50 %",
        f"output after {half} epochs",
        f"after {NEURON_EPOCHS}",
    ]
    rows = [
        [
            neuron.label,
            f"{neuron.outputs[0]:.2f}",
            f"{neuron.start_gradient:.4f}",
            epochs_text(neuron.epochs_to_lose(0.1), NEURON_EPOCHS),
            epochs_text(neuron.epochs_to_lose(0.5), NEURON_EPOCHS),
            f"{neuron.outputs[half]:.2f}",
            f"{neuron.outputs[-1]:.2f}",
        ]
        for neuron in result
    ]
    return table(header, rows)


def slowdown_finding(result: list[NeuronRun]) -> str:
    """The quadratic neuron's slow start against the cross-entropy's, and its measured
    cause: the sigmoid's slope in the quadratic cost's gradient."""
    quadratic, book_rate, same_rate = result
    slope = quadratic.outputs[0] * (1 - quadratic.outputs[0])
    ends = "higher" if book_rate.outputs[-1] > quadratic.outputs[-1] else "lower"
    return (
        "The quadratic neuron needs "
        f"{epochs_text(quadratic.epochs_to_lose(0.1), NEURON_EPOCHS)} epochs to lose 10 % of "
        'its cost (the book: "the first 150 or so epochs" with little change), the '
        f"cross-entropy neuron {epochs_text(book_rate.epochs_to_lose(0.1), NEURON_EPOCHS)} at "
        f"the book's η = {book_rate.eta:g} and "
        f"{epochs_text(same_rate.epochs_to_lose(0.1), NEURON_EPOCHS)} at η = "
        f"{same_rate.eta:g}.  The measured cause: at the start ∂C/∂b is "
        f"{quadratic.start_gradient:.4f} with the quadratic cost against "
        f"{book_rate.start_gradient:.4f} with the cross-entropy, a ratio of "
        f"{quadratic.start_gradient / book_rate.start_gradient:.4f}: the sigmoid's slope "
        f"σ'(z) = a(1 − a) = {slope:.4f} at the start, a factor of the quadratic cost's "
        "gradient that the cross-entropy cancels.  At the book's "
        f"η = {book_rate.eta:g} the cross-entropy neuron ends {ends} than the quadratic one "
        f"({book_rate.outputs[-1]:.2f} against {quadratic.outputs[-1]:.2f}), its rate being "
        f"{quadratic.eta / book_rate.eta:.0f} times smaller; what differs is the shape of "
        "the curve: it learns fastest at the start, where it is most wrong."
    )
