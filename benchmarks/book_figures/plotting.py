"""The look the experiments' plots share: line styles, epoch axes, and how a plot is saved."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

DPI = 110
#: Colour and line style of the n-th line of a plot: lines stay apart in grey print too.
STYLES = [("C0", "-"), ("C1", "--"), ("C2", ":"), ("C3", "-.")]


def epoch_axes(axes: plt.Axes, ylabel: str, title: str) -> None:
    """Label a panel whose x axis counts whole epochs, and give it a light grid."""
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)


def save(figure: plt.Figure, path: Path) -> None:
    """Write ``figure`` to ``path`` (making its folder) and free it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
