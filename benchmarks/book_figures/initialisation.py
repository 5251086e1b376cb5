"""Chapter 3: weight initialisation.

N(0,1) against N(0,1/n_in) weights for [784,30,10] and [784,100,10] (cross-entropy,
eta 0.1, lambda 5.0, mini-batch 10), 30 epochs on all 50,000 training images: the new
initialisation starts far ahead because fewer hidden neurons start saturated.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from report import spread, table

from digitlab.data import Dataset

from .phrases import against_range
from .plotting import STYLES, epoch_axes, save
from .training import Budget, Trained, train_seeds

TITLE = "Chapter 3: weight initialisation"
INITIALISATION = {"cost": "cross-entropy", "eta": 0.1, "lmbda": 5.0, "batch_size": 10}
HIDDEN_SIZES = (30, 100)
INITS = {"large": "N(0,1) weights (old)", "normal": "N(0,1/n_in) weights (new)"}
#: The book's validation accuracy (%) after the first and the 30th epoch, from its data
#: files fig/weight_initialization_30.json and _100.json (its text, for 30 hidden neurons
#: after the first epoch: "under 87 percent" against "almost 93 percent").
BOOK_INITIALISATION = {
    (30, "large"): (86.43, 96.37),
    (30, "normal"): (92.70, 96.50),
    (100, "large"): (89.94, 97.42),
    (100, "normal"): (92.95, 97.81),
}


@dataclass(frozen=True)
class InitialisationRun:
    """One hidden size and initialiser at every seed."""

    hidden: int
    init: str
    runs: list[Trained]

    def accuracy(self, epoch: int) -> list[float]:
        """Each seed's validation accuracy (%) after ``epoch`` (1-based; -1: the last)."""
        index = epoch - 1 if epoch > 0 else epoch
        return [100 * run.history[index].validation_accuracy for run in self.runs]

    @property
    def saturated(self) -> float:
        """The median over seeds of the fraction of (image, hidden neuron) pairs of the
        first 1,000 training images where the sigmoid is saturated, at initialisation."""
        return statistics.median(run.start.hidden[0].saturated for run in self.runs)


def run(data: Dataset, budget: Budget) -> list[InitialisationRun]:
    """Train both hidden sizes from both initialisations, at every seed."""
    fields = {
        **INITIALISATION,
        "epochs": budget.initialisation_epochs,
        "train_size": budget.initialisation_train_size,
    }
    return [
        InitialisationRun(
            hidden,
            init,
            train_seeds(
                {**fields, "layers": [784, hidden, 10], "init": init},
                data,
                budget.seeds,
                use_test=False,
            ),
        )
        for hidden in HIDDEN_SIZES
        for init in INITS
    ]


def find_initialisation(
    result: list[InitialisationRun], hidden: int, init: str
) -> InitialisationRun:
    """The runs of ``result`` with this hidden size and initialiser."""
    return next(ours for ours in result if (ours.hidden, ours.init) == (hidden, init))


def draw(result: list[InitialisationRun], path: Path) -> None:
    """Validation accuracy per epoch, one panel per hidden size, with the book's first
    and 30th epoch marked."""
    figure, panels = plt.subplots(1, len(HIDDEN_SIZES), figsize=(10, 4), sharey=True)
    lowest = 100.0
    for axes, hidden in zip(panels, HIDDEN_SIZES, strict=True):
        for init, (colour, style) in zip(INITS, STYLES, strict=False):
            history = find_initialisation(result, hidden, init).runs[0].history
            accuracy = 100 * np.array(history.validation_accuracies)
            epochs = np.arange(1, len(accuracy) + 1)
            axes.plot(epochs, accuracy, color=colour, linestyle=style, label=INITS[init])
            first, last = BOOK_INITIALISATION[hidden, init]
            axes.plot([1, 30], [first, last], "x", color=colour, label=f"the book, {init} init")
            lowest = min(lowest, accuracy.min(), first)
        epoch_axes(axes, "validation accuracy (%)", f"[784,{hidden},10]")
        axes.legend(fontsize=8, loc="lower right")
    panels[0].set_ylim(max(0.0, lowest - 1.0), 100)
    figure.suptitle("η = 0.1, λ = 5.0, mini-batch 10 (seed 0; ×: the book at epochs 1 and 30)")
    save(figure, path)


def section(result: list[InitialisationRun], image: str) -> str:
    """The Markdown section: the book's accuracies against ours, the plot and, per hidden
    size, how the two initialisations compare and why."""
    findings = "\n\n".join(initialisation_finding(result, hidden) for hidden in HIDDEN_SIZES)
    commands = ", ".join(f"`{ours.runs[0].command}`" for ours in result)
    return f"""The book trains [784,30,10] and [784,100,10] (cross-entropy, η = 0.1, λ = 5.0,
mini-batch 10, all 50,000 training images, 30 epochs) from N(0,1) weights and from
N(0,1/n_in) weights (biases N(0,1) in both) and plots the validation accuracy per epoch:
the new initialisation starts far ahead ("under 87 percent" against "almost 93 percent"
after the first epoch, for 30 hidden neurons) and both end about equal.  The book's
numbers below are from its data files fig/weight_initialization_30.json and _100.json.
"Saturated" is the fraction of (image, hidden neuron) pairs over the first 1,000 training
images where the sigmoid's slope is under 1 % of its maximum.

{comparison_table(result)}

![Validation accuracy per epoch from N(0,1) and N(0,1/n_in) weights]({image})

{findings}

One run alone: {commands}, with `--seed S` for the other seeds."""


def comparison_table(result: list[InitialisationRun]) -> str:
    """One row per network and initialiser: the book's first and last accuracy beside
    ours, and how many hidden neurons start saturated."""
    header = [
        "network",
        "initial weights",
        "book: after epoch 1 %",
        f"ours: after epoch 1 % (median of {len(result[0].runs)} seeds, range)",
        "book: after epoch 30 %",
        f"ours: after epoch {len(result[0].runs[0].history)} %",
        "ours: saturated at initialisation",
    ]
    rows = [
        [
            f"[784,{ours.hidden},10]",
            INITS[ours.init],
            f"{BOOK_INITIALISATION[ours.hidden, ours.init][0]:.2f}",
            spread(ours.accuracy(1)),
            f"{BOOK_INITIALISATION[ours.hidden, ours.init][1]:.2f}",
            spread(ours.accuracy(-1)),
            f"{100 * ours.saturated:.0f} %",
        ]
        for ours in result
    ]
    return table(header, rows)


def initialisation_finding(result: list[InitialisationRun], hidden: int) -> str:
    """How far N(0,1/n_in) is ahead of N(0,1) after the first and the last epoch, against
    the book, and the measured cause of the slow start: saturated hidden neurons."""
    old = find_initialisation(result, hidden, "large")
    new = find_initialisation(result, hidden, "normal")
    book_old, book_new = BOOK_INITIALISATION[hidden, "large"], BOOK_INITIALISATION[hidden, "normal"]
    first = statistics.median(new.accuracy(1)) - statistics.median(old.accuracy(1))
    last = statistics.median(new.accuracy(-1)) - statistics.median(old.accuracy(-1))
    olds, news = old.accuracy(-1), new.accuracy(-1)
    tie = len(olds) > 1 and max(olds) >= min(news) and max(news) >= min(olds)
    return (
        f"**[784,{hidden},10]**: after the first epoch N(0,1/n_in) is {first:+.2f} points "
        f"ahead of N(0,1) (the book: {book_new[0] - book_old[0]:+.2f}); after epoch "
        f"{len(old.runs[0].history)} {last:+.2f} (the book, epoch 30: "
        f"{book_new[1] - book_old[1]:+.2f})"
        + (f"; our ranges over {len(olds)} seeds overlap there, a tie" if tie else "")
        + f".  {book_positions(old, new, book_old, book_new)}The measured cause of the slow "
        "start: at initialisation "
        f"{100 * old.saturated:.0f} % of the hidden neurons' responses are saturated with "
        f"N(0,1) weights against {100 * new.saturated:.0f} % with N(0,1/n_in).  A weighted "
        "input summing hundreds of N(0,1) terms is large, and a saturated sigmoid passes "
        "almost no gradient back to its weights, so they learn slowly until training pulls "
        "the neurons out of saturation: the book's argument, here in numbers."
    )


def book_positions(
    old: InitialisationRun,
    new: InitialisationRun,
    book_old: tuple[float, float],
    book_new: tuple[float, float],
) -> str:
    """Where the book's four accuracies lie against our ranges over seeds, and that the
    cause of any gap was not measured."""
    if len(old.runs) == 1:
        return "One seed only: how far a seed moves these figures is not measured.  "
    places = [
        against_range(book, ours.accuracy(epoch))
        for epoch, index in ((1, 0), (-1, 1))
        for ours, book in ((old, book_old[index]), (new, book_new[index]))
    ]
    outside = any(place != "inside" for place in places)
    return (
        f"Against our ranges over seeds the book's accuracies lie, after the first epoch, "
        f"{places[0]} (N(0,1)) and {places[1]} (N(0,1/n_in)); after the last, {places[2]} "
        f"and {places[3]}"
        + (
            ": each is one run, and what puts it outside our seeds' range was not measured.  "
            if outside
            else ".  "
        )
    )
