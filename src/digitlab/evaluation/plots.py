"""Figures of a model's scores: confusion matrix, its mistakes, and how honest its
confidence is (a reliability diagram).  Drawn with matplotlib without a display."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from digitlab.data.mnist import Split
from digitlab.errors import DigitlabError
from digitlab.evaluation.calibration import CalibrationScores
from digitlab.evaluation.scoring import Evaluation
from digitlab.spec import IMAGE_SHAPE

#: At most this many mistakes are shown in the misclassified grid.
MAX_SHOWN = 40


def save(figure: plt.Figure, path: Path, note: str = "") -> None:
    """Save cropped to what was drawn, and close the figure.  A ``note`` is printed
    under the figure, in red: what a reader must know before reading it (say, that it
    comes from a quick look at a small budget)."""
    if note:
        figure.text(0.5, 0, note, ha="center", va="top", fontsize=8, color="firebrick")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def confusion_plot(
    matrix: np.ndarray, path: Path, title: str = "confusion matrix", note: str = ""
) -> None:
    """Counts of true (rows) against predicted (columns) digits, shaded by log count."""
    figure, axes = plt.subplots(figsize=(5.2, 4.6), layout="constrained")
    shown = axes.imshow(np.log1p(matrix), cmap="Blues")
    for (true, predicted), count in np.ndenumerate(matrix):
        if count:
            colour = "white" if count > matrix.max() / 3 else "black"
            axes.text(
                predicted, true, str(count), ha="center", va="center", fontsize=7, color=colour
            )
    axes.set_xticks(range(10))
    axes.set_yticks(range(10))
    axes.set_xlabel("predicted digit")
    axes.set_ylabel("true digit")
    axes.set_title(title)
    figure.colorbar(shown, ax=axes, label="log(1 + count)")
    save(figure, path, note)


def misclassified_grid(
    images: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    path: Path,
    order: np.ndarray | None = None,
    title: str = "misclassified digits (true→predicted)",
    note: str = "",
) -> None:
    """Up to MAX_SHOWN wrongly classified images, in ``order`` if given (indices of the
    mistakes, e.g. most confident first), else in the order of the images."""
    wrong = np.flatnonzero(labels != predicted) if order is None else order
    wrong = wrong[:MAX_SHOWN]
    columns = 10
    rows = max(1, -(-len(wrong) // columns))
    figure, grid = plt.subplots(
        rows, columns, figsize=(columns * 0.9, rows * 1.05), squeeze=False, layout="constrained"
    )
    for axes in grid.ravel():
        axes.axis("off")
    for axes, index in zip(grid.ravel(), wrong, strict=False):
        axes.imshow(images[index].reshape(IMAGE_SHAPE), cmap="gray_r")
        axes.set_title(f"{labels[index]}→{predicted[index]}", fontsize=8)
    figure.suptitle(title, fontsize=10)
    save(figure, path, note)


def reliability_diagram(
    curves: dict[str, CalibrationScores], path: Path, title: str = "reliability diagram"
) -> None:
    """Accuracy against confidence per bin, one line per set of probabilities (e.g. raw
    and calibrated): on the diagonal, a confidence of 0.8 is right 80 % of the time."""
    figure, axes = plt.subplots(figsize=(5, 4.6), layout="constrained")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for name, scores in curves.items():
        table = scores.reliability
        used = table.count > 0
        axes.plot(
            table.confidence[used],
            table.accuracy[used],
            marker="o",
            label=f"{name}: ECE {100 * scores.ece:.2f} %, NLL {scores.nll:.4f}",
        )
    axes.set_xlabel("confidence (top probability), 15 bins")
    axes.set_ylabel("accuracy in the bin")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(fontsize=8, loc="upper left")
    axes.set_title(title)
    save(figure, path)


def write_evaluation_plots(result: Evaluation, split: Split, folder: Path, where: str) -> None:
    """``digitlab evaluate --plots``: confusion.png, misclassified.png (most confident
    mistakes first) and reliability.png (raw and, if calibrated, calibrated confidence)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DigitlabError(f"cannot create {folder}: {error.strerror}") from None
    confusion_plot(result.confusion, folder / "confusion.png", f"confusion matrix, {where}")
    misclassified_grid(
        split.images,
        split.labels,
        result.predicted,
        folder / "misclassified.png",
        order=result.misclassified(split.labels),
        title=f"misclassified, {where} (true→predicted), most confident first",
    )
    curves = {"raw": result.uncalibrated}
    if result.calibrated is not None:
        curves["calibrated"] = result.calibrated
    reliability_diagram(curves, folder / "reliability.png", f"reliability diagram, {where}")
