"""The experiments book.py can run, and how each becomes a section of its output.

``EXPERIMENTS`` names them for ``--figure`` and orders their sections; ``figure_sections``
runs the chosen ones and returns their sections, each ending with the command that
reproduces it, how long it took and on what machine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from report import machine

from digitlab.data import Dataset

from . import initialisation, overfitting, slowdown, speed, speed_section
from .training import Budget


@dataclass(frozen=True)
class Experiment:
    """An experiment's section heading and how to run, draw and describe it."""

    title: str
    run: Callable[[Dataset, Budget], Any]
    draw: Callable[[Any, Path], None]
    section: Callable[[Any, str], str]


#: The experiments by the name ``--figure`` takes, in the order of their sections.
EXPERIMENTS = {
    "overfitting": Experiment(
        overfitting.TITLE, overfitting.run, overfitting.draw, overfitting.section
    ),
    "initialisation": Experiment(
        initialisation.TITLE, initialisation.run, initialisation.draw, initialisation.section
    ),
    "slowdown": Experiment(slowdown.TITLE, slowdown.run, slowdown.draw, slowdown.section),
    "speed": Experiment(speed_section.TITLE, speed.run, speed.draw, speed_section.section),
}
QUICK_WARNING = (
    "\n**Quick smoke run** (epochs and images cut, one seed): these numbers show "
    "that the code works and say nothing about the book's.\n"
)


def figure_sections(
    names: Sequence[str],
    data: Dataset,
    budget: Budget,
    folder: Path,
    link: str,
    command: Callable[[str], str],
) -> dict[str, str]:
    """Run the named experiments, draw their plots into ``folder`` (``link`` is how the
    Markdown file refers to it) and return their sections by title; ``command(name)`` is
    the command line that reproduces experiment ``name``."""
    sections = {}
    for name in names:
        experiment = EXPERIMENTS[name]
        print(f"figures: {name}", file=sys.stderr)
        started = time.perf_counter()
        result = experiment.run(data, budget)
        seconds = time.perf_counter() - started
        experiment.draw(result, folder / f"{name}.png")
        warning = QUICK_WARNING if budget.quick else ""
        sections[experiment.title] = f"""## {experiment.title}
{warning}
{experiment.section(result, f"{link}/{name}.png")}

Reproduce: `{command(name)}` ({duration(seconds)} here). {machine()}
"""
    return sections


def duration(seconds: float) -> str:
    """A run's wall time as a section states it: seconds, or minutes from 90 s on."""
    if seconds < 1:
        return "under a second"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
