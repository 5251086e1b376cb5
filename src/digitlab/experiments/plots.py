"""The report's figures, drawn with matplotlib without a display (Agg backend).

Each takes a ``note`` printed under it in red, so a figure copied out of a quick look
still says it is one."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from digitlab.evaluation.plots import save
from digitlab.experiments.effects import (
    best_by_value,
    finished,
    grouping_key,
    ordered_values,
    params_label,
)
from digitlab.experiments.results import TrialRow
from digitlab.experiments.study_file import Range, StudyFile

MAX_CURVES = 12
#: Line styles cycled together with the ten colours, so 12+ curves stay distinguishable.
LINE_STYLES = ("-", "--", ":", "-.")


def effect_plot(
    study_file: StudyFile, rows: list[TrialRow], key: str, path: Path, note: str = ""
) -> None:
    """Validation accuracy against one hyperparameter, with the noise over seeds.

    Every finished trial is a dot; the line joins, for each value, the best trial that
    used it, with bars showing the 95 % interval of its mean over seeds (its range when
    a single seed gives no interval)."""
    figure, axes = plt.subplots(figsize=(6.4, 4), layout="constrained")
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
        labels = [str(v) for v in values]
        long = sum(len(label) for label in labels) > 40
        axes.set_xticks(
            range(len(values)), labels, rotation=30 if long else 0, ha="right" if long else "center"
        )
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
        estimates = [r.estimate for r in tops]
        means = np.array([100 * e.mean for e in estimates])
        low = means - np.array(
            [100 * max(e.low if e.low is not None else e.minimum, 0.0) for e in estimates]
        )
        high = np.array(
            [100 * min(e.high if e.high is not None else e.maximum, 1.0) for e in estimates]
        )
        high -= means
        bars = "95 % interval" if all(e.low is not None for e in estimates) else "range"
        axes.errorbar(
            [position[v] for v in present],
            means,
            yerr=[low, high],
            marker="o",
            capsize=4,
            linestyle=LINE_STYLES[len(axes.lines) % len(LINE_STYLES)],
            label=f"{name} (bars: {bars} over seeds)",
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
    save(figure, path, note)


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


#: Configurations described by more characters than this are named by trial number (the
#: report's table gives their hyperparameters): a legend must leave room for the plot.
LABEL_LENGTH = 45


def short_label(row: TrialRow) -> str:
    """A configuration's hyperparameters, or its trial number when they run long."""
    text = params_label(row.params)
    return text if len(text) <= LABEL_LENGTH else f"trial {row.number}"


def _style(index: int) -> dict:
    """Colour and line style of curve ``index``: 40 combinations before any repeats."""
    return {"color": f"C{index % 10}", "linestyle": LINE_STYLES[(index // 10) % len(LINE_STYLES)]}


def _curves(
    rows: list[TrialRow],
    path: Path,
    train_name: str,
    validation_name: str,
    ylabel: str,
    title: str,
    scale: float,
    log_y: bool = False,
    note: str = "",
) -> None:
    """Training (thin) and validation (thick) curves per epoch of the best configurations,
    each the mean over its seeds; a legend names every configuration and both kinds."""
    figure, axes = plt.subplots(figsize=(8, 4.8), layout="constrained")
    shown = [
        r
        for r in finished(rows)
        if any(getattr(x, validation_name) and not x.diverged for x in r.runs)
    ]
    for index, row in enumerate(shown[:MAX_CURVES]):
        # A diverged run's curves end in NaN; the text leaves them out, and so does the plot.
        runs = [run for run in row.runs if getattr(run, validation_name) and not run.diverged]
        if not runs:
            continue
        length = min(len(getattr(run, validation_name)) for run in runs)
        valid = np.mean([getattr(run, validation_name)[:length] for run in runs], axis=0)
        train = np.mean([getattr(run, train_name)[:length] for run in runs], axis=0)
        epochs = np.arange(1, length + 1)
        style = _style(index)
        axes.plot(epochs, scale * valid, linewidth=1.8, label=short_label(row), **style)
        axes.plot(epochs, scale * train, linewidth=0.8, alpha=0.7, **style)
    axes.plot([], [], color="gray", linewidth=1.8, label="thick: validation")
    axes.plot([], [], color="gray", linewidth=0.8, label="thin: training")
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(ylabel)
    if log_y:
        axes.set_yscale("log")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save(figure, path, note)


def learning_curves(rows: list[TrialRow], path: Path, note: str = "") -> None:
    """Training and validation accuracy per epoch, best configurations first."""
    _curves(
        rows,
        path,
        "train_accuracy",
        "validation_accuracy",
        "accuracy (%)",
        "accuracy per epoch (mean over seeds)",
        100.0,
        note=note,
    )


def cost_curves(rows: list[TrialRow], path: Path, note: str = "") -> None:
    """Training and validation cost per epoch, on a log scale (a penalty's first epochs
    are large, and the turn that matters is small): the book's sign of overfitting is
    the validation cost turning up while the training cost keeps falling."""
    _curves(
        rows,
        path,
        "train_cost",
        "validation_cost",
        "cost per image (log scale)",
        "cost per epoch (mean over seeds; training cost includes the penalty)",
        1.0,
        log_y=True,
        note=note,
    )


def gradient_plot(rows: list[TrialRow], path: Path, note: str = "") -> bool:
    """Each layer's gradient norm ||dC/db|| per epoch (log scale) for the best
    configuration with two or more hidden layers of each activation (up to four) -- the
    book's chapter-5 'speed of learning' -- or nothing (False) when the study has no such
    network.  Batch-normalised networks are left out: the normalisation subtracts each
    layer's bias again, so its gradient is zero however fast the layer learns."""
    per_activation: dict[str, TrialRow] = {}
    for row in finished(rows):
        if (row.spec or {}).get("batch_norm"):
            continue
        run = row.runs[0] if row.runs else None
        if run and not run.diverged and run.diagnostics and len(run.diagnostics[0].hidden) > 1:
            per_activation.setdefault((row.spec or {}).get("activation", "?"), row)
    deep = list(per_activation.values())[:4]
    if not deep:
        return False
    figure, grid = plt.subplots(
        1, len(deep), figsize=(4 * len(deep), 3.8), squeeze=False, layout="constrained"
    )
    for axes, row in zip(grid[0], deep, strict=True):
        run = row.runs[0]
        history = ([run.initial] if run.initial else []) + run.diagnostics
        start = 0 if run.initial else 1
        for index, name in enumerate(layer.layer for layer in history[0].hidden):
            norms = [d.hidden[index].bias_gradient_norm for d in history]
            axes.plot(range(start, start + len(norms)), norms, label=name, **_style(index))
        axes.set_yscale("log")
        title = params_label(row.params)
        axes.set_title(
            title if len(title) <= 2 * LABEL_LENGTH else f"trial {row.number}", fontsize=7
        )
        axes.set_xlabel("epoch (0: initial weights)")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    grid[0][0].set_ylabel("‖∂C/∂b‖ of the hidden layer (first seed)")
    save(figure, path, note)
    return True


def history_plot(rows: list[TrialRow], path: Path, note: str = "") -> None:
    """Each trial's value in the order it was started, and the best so far."""
    done = sorted(finished(rows), key=lambda r: r.number)
    figure, axes = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    numbers = [r.number for r in done]
    values = [100 * r.value for r in done]
    axes.scatter(numbers, values, s=14, label="trial")
    axes.plot(
        numbers, np.maximum.accumulate(values) if values else [], color="C1", label="best so far"
    )
    axes.set_xlabel("trial number")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("validation accuracy (%)")
    axes.set_title("optimisation history")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    save(figure, path, note)


def importance_plot(importances: dict[str, float], path: Path, note: str = "") -> None:
    figure, axes = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(importances)), layout="constrained")
    names = list(importances)[::-1]
    axes.barh(names, [importances[n] for n in names])
    axes.set_xlabel("importance for validation accuracy (fANOVA, sums to 1)")
    axes.set_title("hyperparameter importance")
    save(figure, path, note)
