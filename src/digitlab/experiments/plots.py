"""The report's figures, drawn with matplotlib without a display (Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from digitlab.experiments.findings import (
    best_by_value,
    finished,
    grouping_key,
    ordered_values,
    params_label,
)
from digitlab.experiments.results import TrialRow
from digitlab.experiments.study_file import Range, StudyFile

MAX_CURVES = 12


def _save(figure: plt.Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def effect_plot(study_file: StudyFile, rows: list[TrialRow], key: str, path: Path) -> None:
    """Validation accuracy against one hyperparameter, with the spread over repeats.

    Every finished trial is a dot; the line joins, for each value, the best trial that
    used it, with bars from its worst to its best repeat."""
    figure, axes = plt.subplots(figsize=(6.4, 4))
    done = finished(rows)
    declared = study_file.space[key]
    numeric = isinstance(declared, Range) or all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in declared
    )
    if numeric:
        position = {v: float(v) for v in {r.params[key] for r in done}}
        values = sorted(position)
        span = max(values) / min(values) if values and min(values) > 0 else 1
        if (isinstance(declared, Range) and declared.log) or span >= 20:
            axes.set_xscale("log")
    else:
        values = ordered_values(study_file, key, list({r.params[key] for r in done}))
        position = {v: i for i, v in enumerate(values)}
        axes.set_xticks(range(len(values)), [str(v) for v in values])
    axes.scatter(
        [position[r.params[key]] for r in done],
        [100 * r.value for r in done],
        s=14,
        alpha=0.4,
        label="every trial (mean of repeats)",
    )
    group_key = grouping_key(study_file, key)
    if isinstance(declared, Range):
        lines = {}
    elif group_key:  # one line per value of the only other hyperparameter
        lines = {
            f"{group_key}={group}": best_by_value(
                [r for r in rows if r.params.get(group_key) == group], key
            )
            for group in study_file.space[group_key]
        }
    else:
        lines = {"best per value": best_by_value(rows, key)}
    floor = None
    for name, best in lines.items():
        present = [v for v in values if v in best]
        if not present:
            continue
        tops = [best[v] for v in present]
        means = np.array([100 * r.value for r in tops])
        low = means - np.array([100 * min(r.accuracies or [r.value]) for r in tops])
        high = np.array([100 * max(r.accuracies or [r.value]) for r in tops]) - means
        axes.errorbar(
            [position[v] for v in present],
            means,
            yerr=[low, high],
            marker="o",
            capsize=4,
            label=f"{name} (bars: range over repeats)",
        )
        lowest = float((means - low).min())
        floor = lowest if floor is None else min(floor, lowest)
    if floor is not None:
        _focus(axes, floor, [100 * r.value for r in done])
    axes.set_xlabel(key)
    axes.set_ylabel("best validation accuracy (%)")
    axes.set_title(f"{study_file.name}: validation accuracy vs {key}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    _save(figure, path)


def _focus(axes: plt.Axes, floor: float, values: list[float]) -> None:
    """Show the band the lines live in; say how many trials (e.g. diverged) lie below it."""
    bottom = max(0.0, floor - 2.0)
    below = sum(v < bottom for v in values)
    if below:
        axes.set_ylim(bottom, min(100.0, max(values) + 1.0))
        axes.annotate(
            f"{below} trial{'s' if below > 1 else ''} below {bottom:.0f} % not shown",
            xy=(0.01, 0.01),
            xycoords="axes fraction",
            fontsize=7,
            color="gray",
        )


def learning_curves(rows: list[TrialRow], path: Path) -> None:
    """Training (dashed) and validation (solid) accuracy per epoch, best trials first."""
    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    for index, row in enumerate([r for r in finished(rows) if r.runs][:MAX_CURVES]):
        colour = f"C{index % 10}"
        valid = np.array(row.runs[0]["validation_curve"]) * 100
        train = np.array(row.runs[0]["train_curve"]) * 100
        epochs = np.arange(1, len(valid) + 1)
        axes.plot(epochs, valid, color=colour, label=params_label(row.params))
        axes.plot(epochs, train, color=colour, linestyle="--", alpha=0.6)
    axes.set_xlabel("epoch")
    axes.set_ylabel("accuracy (%) — solid: validation, dashed: training")
    axes.set_title("learning curves (first repeat of each configuration)")
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(fontsize=7, loc="lower right")
    _save(figure, path)


def history_plot(rows: list[TrialRow], path: Path) -> None:
    """Each trial's value in the order it was started, and the best so far."""
    done = sorted(finished(rows), key=lambda r: r.number)
    figure, axes = plt.subplots(figsize=(6.4, 3.6))
    numbers = [r.number for r in done]
    values = [100 * r.value for r in done]
    axes.scatter(numbers, values, s=14, label="trial")
    axes.plot(
        numbers, np.maximum.accumulate(values) if values else [], color="C1", label="best so far"
    )
    axes.set_xlabel("trial number")
    axes.set_ylabel("validation accuracy (%)")
    axes.set_title("optimisation history")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    _save(figure, path)


def importance_plot(importances: dict[str, float], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(importances)))
    names = list(importances)[::-1]
    axes.barh(names, [importances[n] for n in names])
    axes.set_xlabel("importance for validation accuracy (fANOVA, sums to 1)")
    axes.set_title("hyperparameter importance")
    _save(figure, path)


def confusion_plot(matrix: np.ndarray, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(5.2, 4.6))
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
    axes.set_title("confusion matrix, test set (best configuration)")
    figure.colorbar(shown, ax=axes, label="log(1 + count)")
    _save(figure, path)


def misclassified_grid(
    images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, path: Path
) -> None:
    wrong = np.flatnonzero(labels != predicted)[:40]
    columns = 10
    rows = max(1, -(-len(wrong) // columns))
    figure, grid = plt.subplots(rows, columns, figsize=(columns * 0.9, rows * 1.05), squeeze=False)
    for axes in grid.ravel():
        axes.axis("off")
    for axes, index in zip(grid.ravel(), wrong, strict=False):
        axes.imshow(images[index].reshape(28, 28), cmap="gray_r")
        axes.set_title(f"{labels[index]}→{predicted[index]}", fontsize=8)
    figure.suptitle("misclassified test digits (true→predicted)", fontsize=10)
    _save(figure, path)
