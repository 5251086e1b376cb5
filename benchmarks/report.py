"""Shared by the benchmark scripts: Markdown tables, a description of the machine, and paths
as the checks files record them."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from digitlab.atomic import atomic_write
from digitlab.train.reproduce import source_commit


def machine() -> str:
    """One line saying where, when and at which commit the figures were measured (the
    commit tells which source the figures belong to; see digitlab.train.reproduce)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    return (
        f"Measured {when} at commit {source_commit()} on {os.cpu_count()} CPU cores ({cpu}), "
        "no GPU; "
        f"Python {platform.python_version()}, NumPy {np.__version__}."
    )


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """Median, with min-max when there is more than one value."""
    median = fmt.format(statistics.median(values))
    if len(values) == 1:
        return median
    return f"{median} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def write(path: Path, text: str) -> None:
    """Write a results page atomically: an interrupted run leaves the old page whole."""
    content = (text.rstrip() + "\n").encode()
    atomic_write(path, lambda handle: handle.write(content))
    print(f"wrote {path}")


def repository_relative(path: Path) -> str:
    """``path`` as the checks file records it: relative to the repository root (the
    benchmarks run from there), or as given when it lies elsewhere."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
