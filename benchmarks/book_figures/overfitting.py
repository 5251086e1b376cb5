"""Chapter 3: overfitting, and L2 regularisation against it.

The book's [784,30,10] network (cross-entropy, N(0,1) weights, eta 0.5, mini-batch 10)
on the first 1,000 training images for 400 epochs, without and with L2 (lambda 0.1).
The training cost falls throughout while the accuracy on unseen images stops improving;
L2 keeps the weights small and the network overfits less.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from report import spread, table

from digitlab.data import Dataset
from digitlab.train import History

from .phrases import epochs_text, seed_spread
from .plotting import STYLES, epoch_axes, save
from .training import Budget, Trained, train_seeds

TITLE = "Chapter 3: overfitting, and L2 regularisation against it"
OVERFITTING = {
    "layers": [784, 30, 10],
    "cost": "cross-entropy",
    "init": "large",
    "eta": 0.5,
    "batch_size": 10,
    "train_size": 1_000,
}
LAMBDAS = (0.0, 0.1)


@dataclass(frozen=True)
class BookOverfitting:
    """The book's run at one lambda: the best test accuracy (from its text), and from
    its data files fig/overfitting.json and fig/regularized.json the epoch of that best,
    the epoch where the test cost is lowest and the first with 100 % training accuracy."""

    best: float
    best_epoch: int
    lowest_cost_epoch: int
    perfect_epoch: int


BOOK_OVERFITTING = (BookOverfitting(82.27, 375, 15, 68), BookOverfitting(87.10, 384, 392, 69))


@dataclass(frozen=True)
class OverfittingRun:
    """One lambda at every seed; seed 0's run is the one plotted and described."""

    lmbda: float
    runs: list[Trained]

    @property
    def history(self) -> History:
        return self.runs[0].history

    @property
    def best(self) -> list[float]:
        """Each seed's best test accuracy (%)."""
        return [100 * max(run.history.column("test_accuracy")) for run in self.runs]

    @property
    def best_epoch(self) -> int:
        accuracies = self.history.column("test_accuracy")
        return accuracies.index(max(accuracies)) + 1

    @property
    def lowest_cost_epoch(self) -> int:
        costs = self.history.column("validation_cost")
        return costs.index(min(costs)) + 1

    @property
    def cost_rise(self) -> float:
        """How much the validation cost rose from its lowest to the last epoch (%)."""
        costs = self.history.column("validation_cost")
        return 100 * (costs[-1] / min(costs) - 1)

    @property
    def train_cost_falls(self) -> int:
        """In how many epochs after the first the training cost fell."""
        costs = self.history.column("train_cost")
        return sum(after < before for before, after in pairwise(costs))

    @property
    def perfect_epoch(self) -> int | None:
        """The first epoch after which every training image is classified right."""
        return next((r.epoch for r in self.history if r.train_accuracy == 1.0), None)

    @property
    def weight_norms(self) -> list[float]:
        """||w|| of each layer after the last epoch."""
        return [layer.weight_norm for layer in self.history[-1].diagnostics.layers]


def run(data: Dataset, budget: Budget) -> list[OverfittingRun]:
    """Train the book's overfitting network without and with L2, at every seed."""
    fields = {**OVERFITTING, "epochs": budget.overfitting_epochs}
    return [
        OverfittingRun(lmbda, train_seeds({**fields, "lmbda": lmbda}, data, budget.seeds))
        for lmbda in LAMBDAS
    ]


def draw(result: list[OverfittingRun], path: Path) -> None:
    """The book's four plots (training cost, test accuracy, test cost, training accuracy)
    as four panels with both lambdas in each; the held-out cost is the validation cost."""
    figure, grid = plt.subplots(2, 2, figsize=(10, 7))
    panels = [
        ("train_cost", 1, "cost (log scale)", "cost on the 1,000 training images, L2 term in"),
        ("test_accuracy", 100, "accuracy (%)", "accuracy on the test images"),
        ("validation_cost", 1, "cost", "cost on the validation images (vertical: lowest)"),
        ("train_accuracy", 100, "accuracy (%)", "accuracy on the 1,000 training images"),
    ]
    for axes, (column, scale, ylabel, title) in zip(grid.ravel(), panels, strict=True):
        for lambda_run, (colour, style) in zip(result, STYLES, strict=False):
            epochs = np.arange(1, len(lambda_run.history) + 1)
            values = scale * np.array(lambda_run.history.column(column))
            label = f"λ = {lambda_run.lmbda:g}"
            axes.plot(epochs, values, color=colour, linestyle=style, label=label)
            if column == "validation_cost":
                axes.axvline(lambda_run.lowest_cost_epoch, color=colour, linestyle=style, alpha=0.5)
        epoch_axes(axes, ylabel, title)
        axes.legend(fontsize=8)
    grid[0, 0].set_yscale("log")
    figure.suptitle("[784,30,10], N(0,1) weights, η = 0.5, 1,000 training images (seed 0)")
    save(figure, path)


def section(result: list[OverfittingRun], image: str) -> str:
    """The Markdown section: the book's runs against ours, the plot and the findings."""
    commands = " and ".join(f"`{lambda_run.runs[0].command}`" for lambda_run in result)
    return f"""The book trains [784,30,10] (cross-entropy, N(0,1) weights, η = 0.5, mini-batch 10)
on the first 1,000 training images for 400 epochs: the cost on the training data falls
throughout, while the test accuracy stops improving, at 82.27 %; the test cost is lowest
around epoch 15 and rises after.  With L2 regularisation (λ = 0.1) the test accuracy
reaches 87.1 %.  The book's epochs below are from its data files fig/overfitting.json and
fig/regularized.json.  Our trainer records the cost on the validation images, not on the
test images; it stands in for the book's test cost (both are 10,000 unseen images).

{comparison_table(result)}

![Overfitting: training cost, test accuracy, validation cost and training accuracy per
epoch, without and with L2]({image})

{findings(result)}

One run alone: {commands}, with `--seed S` for the other seeds."""


def comparison_table(result: list[OverfittingRun]) -> str:
    """One row per lambda: the book's best, cost and training-accuracy epochs beside ours."""
    epochs = len(result[0].history)
    header = [
        "run",
        "book: best test %",
        "ours: best test % (seed 0)",
        f"ours: median of {len(result[0].runs)} seeds (range)",
        "book: epoch of lowest test cost",
        "ours: epoch of lowest validation cost",
        "ours: validation cost, lowest → last",
        "book: 100 % training accuracy from epoch",
        "ours",
        "ours: epochs the training cost fell in",
        "ours: final ‖w‖, hidden / output layer",
    ]
    rows = [
        [
            f"λ = {ours.lmbda:g}",
            f"{book.best:.2f} (epoch {book.best_epoch})",
            f"{ours.best[0]:.2f} (epoch {ours.best_epoch})",
            spread(ours.best),
            book.lowest_cost_epoch,
            ours.lowest_cost_epoch,
            f"{ours.cost_rise:+.0f} %",
            book.perfect_epoch,
            epochs_text(ours.perfect_epoch, epochs),
            f"{ours.train_cost_falls} of {epochs - 1}",
            " / ".join(f"{norm:.1f}" for norm in ours.weight_norms),
        ]
        for ours, book in zip(result, BOOK_OVERFITTING, strict=True)
    ]
    return table(header, rows)


def findings(result: list[OverfittingRun]) -> str:
    """The best accuracies against the book's, where overfitting sets in, and what L2 did."""
    plain, regularised = result
    book_plain, book_regularised = BOOK_OVERFITTING
    return "\n\n".join(
        [
            f"Without regularisation our best test accuracy is {plain.best[0]:.2f} % (seed 0), "
            f"{plain.best[0] - book_plain.best:+.2f} points from the book's "
            f"{book_plain.best:.2f} %." + seed_spread(plain.best, book_plain.best),
            overfitting_onset(plain),
            f"With λ = {regularised.lmbda:g} the best is {regularised.best[0]:.2f} % "
            f"({regularised.best[0] - plain.best[0]:+.2f} points over λ = 0; the book gains "
            f"{book_regularised.best - book_plain.best:+.2f}), "
            f"{regularised.best[0] - book_regularised.best:+.2f} from the book's "
            f"{book_regularised.best:.2f} %."
            + seed_spread(regularised.best, book_regularised.best),
            weight_finding(plain, regularised),
        ]
    )


def overfitting_onset(plain: OverfittingRun) -> str:
    """Where the held-out cost turns up while the training cost keeps falling."""
    epochs = len(plain.history)
    costs = plain.history.column("train_cost")
    falling = (
        f"the training cost fell in {plain.train_cost_falls} of {epochs - 1} epochs (from "
        f"{costs[0]:.3f} after the first to {costs[-1]:.4f})"
    )
    book = BOOK_OVERFITTING[0].lowest_cost_epoch
    if plain.lowest_cost_epoch == epochs:
        return (
            f"The validation cost is still falling at epoch {epochs} and {falling}: no "
            f"overfitting shows in the cost yet (the book's test cost turns up at epoch {book})."
        )
    return (
        f"The validation cost is lowest at epoch {plain.lowest_cost_epoch} (the book's test "
        f"cost at epoch {book}) and has risen {plain.cost_rise:.0f} % by epoch {epochs}, while "
        f"{falling}: from epoch {plain.lowest_cost_epoch} on, the network keeps fitting its "
        "1,000 images better while its cost on unseen images rises, the book's overfitting."
    )


def weight_finding(plain: OverfittingRun, regularised: OverfittingRun) -> str:
    """The measured side of the book's explanation of L2: smaller weights, less overfitting."""
    ratios = [p / r for p, r in zip(plain.weight_norms, regularised.weight_norms, strict=True)]
    smaller = all(ratio > 1 for ratio in ratios)
    text = (
        f"After {len(plain.history)} epochs the weights with L2 are "
        + ("smaller" if smaller else "not smaller in every layer")
        + f": ‖w‖ of the hidden layer {plain.weight_norms[0]:.1f} against "
        f"{regularised.weight_norms[0]:.1f} ({ratios[0]:.1f} times), of the output layer "
        f"{plain.weight_norms[1]:.1f} against {regularised.weight_norms[1]:.1f} "
        f"({ratios[1]:.1f} times)"
    )
    later = regularised.lowest_cost_epoch > plain.lowest_cost_epoch
    less = regularised.cost_rise < plain.cost_rise
    if smaller and later and less:
        return (
            f"{text}; and the validation cost turns up later (epoch "
            f"{regularised.lowest_cost_epoch} against {plain.lowest_cost_epoch}) and rises "
            f"less ({regularised.cost_rise:.0f} % against {plain.cost_rise:.0f} %).  Small "
            "weights cannot fit every peculiarity of 1,000 images: the book's explanation of "
            "why L2 generalises better.  The run shows the smaller weights and the later, "
            "smaller overfitting together; that one causes the other is the book's argument, "
            "not something measured here."
        )
    return (
        f"{text}; the validation cost is lowest at epoch {regularised.lowest_cost_epoch} "
        f"(λ = 0: {plain.lowest_cost_epoch}) and rises {regularised.cost_rise:.0f} % "
        f"(λ = 0: {plain.cost_rise:.0f} %), so this run does not show in every respect the "
        "book's picture of L2 holding overfitting back."
    )
