"""Reproduce the book's chapter 1 and 3 results with the presets, on the full data, and the
experiments behind its figures in chapters 3 and 5.

    python benchmarks/book.py [--seeds 5] [--out docs/results/book.md]   # the tables
    python benchmarks/book.py --figures            # the tables, then the figures
    python benchmarks/book.py --figures-only [--figure NAME ...]   # the figures alone
    python benchmarks/book.py --quick --seeds 1 --figures --out /tmp/book-test.md

The tables: each chapter 1 and 3 preset is trained with several seeds (the book reports
one run, and notes that runs vary) on the 50,000 training images.  For each, the accuracy
on the split the book reports (test or validation) is taken at the best epoch and at the
final epoch; the table gives their median over seeds and the range.  Next to the output
goes its reproduction check (book.checks.json beside book.md): the exact figures of the
cheapest row, book-ch1 at seed 0, which the test suite (tests/test_reproduce.py) retrains
and compares, so an engine change that moves them fails the tests until the tables are
regenerated.  The chapter 6 presets are benchmarks/cnn.py's.

The figures (benchmarks/book_figures/; about 16 minutes on 2 busy cores): overfitting and
L2 regularisation, weight initialisation and the learning slowdown of chapter 3, and the
speed of learning of each hidden layer of chapter 5, each run with the book's settings,
plotted into a folder named after the output file (docs/results/book/ for book.md) and
described in a section after the tables.

The output file keeps its two parts apart: a run replaces what it generates (the tables,
or the sections of the figures it ran) and keeps the rest of the file as it was, so the
figures can be refreshed without retraining the tables, and the other way round.
``--quick`` cuts epochs and images for a smoke test of the script (write it elsewhere
with ``--out``: its numbers say nothing about the book's).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from book_figures.registry import EXPERIMENTS, figure_sections
from book_figures.training import BOOK, QUICK
from report import machine, repository_relative, spread, table, write

from digitlab.data import Dataset, load_mnist
from digitlab.presets import PRESETS, Preset
from digitlab.train import History, Trainer
from digitlab.train.callbacks import EpochLog
from digitlab.train.metrics import confusion_matrix, per_class_accuracy
from digitlab.train.reproduce import check_from_history, checks_path_for, write_checks

OUT = Path("docs/results/book.md")
TOLERANCE = 0.5  # percentage points
TABLE_PRESETS = [
    preset
    for preset in PRESETS.values()
    if preset.book_source.startswith(("chapter 1", "chapter 3"))
]
#: The row the test suite retrains to tell whether the tables still reproduce: the
#: cheapest one (7 s on 2 cores).
CHECKED = "book-ch1"
#: What --quick changes in every table run: enough to exercise the script, no more.
QUICK_TABLES = {"epochs": 1, "train_size": 5_000}
FIGURES_HEADING = "# The experiments behind the book's figures (chapters 3 and 5)"
FIGURES_INTRO = """Each section runs one of the experiments behind the book's figures with our
engine and the book's settings, as its own figure scripts ran them (fig/ in
github.com/mnielsen/neural-networks-and-deep-learning).  The book's numbers come from its
text or, where the text gives none, from the data files those scripts wrote.  Every
sentence comparing ours with the book's is generated from the measured numbers."""


@dataclass
class Run:
    seed: int
    best: float
    final: float
    seconds: float
    weak_digits: dict[int, float]  # digit -> test recall, for recalls under 50 %
    history: History


def preset_command(preset: Preset, seed: int | str, overrides: dict[str, Any]) -> str:
    """The ``digitlab train`` command of one table run."""
    flags = "".join(f" --{key.replace('_', '-')} {value}" for key, value in overrides.items())
    return f"digitlab train --preset {preset.name} --seed {seed}{flags}"


def train_seeds(preset: Preset, data: Dataset, seeds: int, overrides: dict[str, Any]) -> list[Run]:
    runs = []
    for seed in range(seeds):
        print(f"{preset.name}, seed {seed}", file=sys.stderr)
        started = time.perf_counter()
        spec = preset.spec.with_overrides(seed=seed, **overrides)
        result = Trainer(spec, data, [EpochLog()]).run()
        seconds = time.perf_counter() - started
        curve = [100 * getattr(r, f"{preset.book_split}_accuracy") for r in result.history]
        matrix = confusion_matrix(data.test.labels, result.model.network.predict(data.test.images))
        recall = per_class_accuracy(matrix)
        weak = {digit: float(r) for digit, r in enumerate(recall) if r < 0.5}
        runs.append(Run(seed, max(curve), curve[-1], seconds, weak, result.history))
    return runs


def row(preset: Preset, runs: list[Run], overrides: dict[str, Any]) -> list[object]:
    best = [r.best for r in runs]
    gap = statistics.median(best) - preset.book_accuracy
    return [
        f"`{preset.name}`",
        preset.summary,
        f"{preset.book_accuracy:.2f} ({preset.book_split}, {preset.book_source})",
        spread(best),
        ", ".join(f"{b:.2f}" for b in best),
        spread([r.final for r in runs]),
        f"{gap:+.2f}" + ("" if abs(gap) <= TOLERANCE else " ⚠"),
        overrides.get("epochs", preset.spec.epochs),
        spread([r.seconds for r in runs], "{:.0f}"),
        f"`{preset_command(preset, 'S', overrides)}`",
    ]


def note(preset: Preset, runs: list[Run]) -> str | None:
    """Explain a row whose median is off the book, from what the runs show: which seeds
    come close, which digits the others fail, and how many outputs were saturated at the
    wrong value at the end (the diagnostics' ``output_stuck``)."""
    gap = statistics.median(r.best for r in runs) - preset.book_accuracy
    if abs(gap) <= TOLERANCE:
        return None
    close = [r for r in runs if r.best >= preset.book_accuracy - TOLERANCE]
    far = [r for r in runs if r not in close]
    parts = [f"**`{preset.name}`**: the median is {gap:+.2f} points from the book."]
    if close:
        seeds = ", ".join(f"seed {r.seed}: {r.best:.2f} %" for r in close)
        parts.append(
            f"{len(close)} of {len(runs)} seeds come within {TOLERANCE} points of the book's "
            f"figure ({seeds})."
        )
    if far:
        detail = "; ".join(
            f"seed {r.seed} reaches {r.best:.2f} %"
            + (
                f" and recognises digit{'s' if len(r.weak_digits) > 1 else ''} "
                + ", ".join(f"{d} ({100 * recall:.0f} %)" for d, recall in r.weak_digits.items())
                + " less than half the time"
                if r.weak_digits
                else ""
            )
            for r in far
        )
        parts.append(f"The others fall short: {detail}.")
        stuck = [r for r in far if r.weak_digits]
        if stuck:
            parts.append(_saturation(stuck, close))
    return " ".join(parts)


def _saturation(stuck: list[Run], close: list[Run]) -> str:
    """The measured sign of the quadratic cost's slowdown in the seeds that fail a digit."""

    def share(runs: list[Run]) -> str:
        last = [r.history[-1].diagnostics for r in runs]
        values = [d.output_stuck for d in last if d and d.output_stuck is not None]
        return f"{100 * statistics.median(values):.2f} %" if values else "not measured"

    return (
        "At the end of training, "
        f"{share(stuck)} of (image, output) pairs were saturated at the wrong value in the "
        "seeds that fail a digit (median; output slope under 1 % of its maximum, more than "
        f"0.5 from the target), against {share(close) if close else 'no seed'} in the seeds "
        "that come close: an output neuron stuck that way learns slowly under the quadratic "
        "cost, whose gradient carries the sigmoid's slope (the cross-entropy cost of chapter "
        "3 removes it). The book's footnote to this experiment warns that some runs give "
        "results quite a bit worse."
    )


def tables(data: Dataset, args: argparse.Namespace) -> str:
    """Train every chapter 1 and 3 preset at every seed; write the reproduction check of
    book-ch1 at seed 0 next to the output; return the tables' part of the output."""
    overrides = QUICK_TABLES if args.quick else {}
    rows, notes = [], []
    for preset in TABLE_PRESETS:
        runs = train_seeds(preset, data, args.seeds, overrides)
        rows.append(row(preset, runs, overrides))
        notes.append(note(preset, runs))
        if preset.name == CHECKED:
            write_check(preset, runs[0], overrides, args.out)
    header = [
        "preset",
        "network",
        "book %",
        f"ours, best epoch % (median of {args.seeds} seeds, range)",
        "best epoch % per seed",
        "ours, final epoch %",
        "median − book (pp)",
        "epochs",
        "wall time per run (s)",
        "command",
    ]
    explained = "\n\n".join(n for n in notes if n) or "Every row is within the tolerance."
    quick = " --quick" if args.quick else ""
    return f"""# Reproducing the book's results (chapters 1 and 3)

Generated by `python benchmarks/book.py --seeds {args.seeds}{quick}`. {machine()}

Accuracies are on the split the book reports for that network: the test set in chapter
1 and for the first chapter-3 networks, the validation set (the last 10,000 training
images) for the [784,100,10] chapter-3 networks.  "Best epoch" is the highest accuracy
over the epochs (chapter 1 quotes its best epoch); "final" is after the last epoch.
The book reports a single run; we train each preset with seeds 0 to {args.seeds - 1}.
Wall time includes the per-epoch evaluation of training, validation and test data.
A ⚠ marks a median more than {TOLERANCE} percentage points from the book.
The reproduction check of this file, in {checks_path_for(args.out).name}, is
`{preset_command(PRESETS[CHECKED], 0, overrides)}`.

{table(header, rows)}

## Rows off the book

{explained}
"""


def write_check(preset: Preset, run: Run, overrides: dict[str, Any], out: Path) -> None:
    """Record the run's figures as the check the test suite retrains (see the docstring)."""
    spec = preset.spec.with_overrides(seed=run.seed, **overrides)
    command = preset_command(preset, run.seed, overrides)
    check = check_from_history(f"{preset.name}, seed {run.seed}", command, spec, run.history)
    write_checks(checks_path_for(out), repository_relative(out), [check])
    print(f"wrote {checks_path_for(out)}")


def figures(data: Dataset, args: argparse.Namespace) -> dict[str, str]:
    """Run the chosen experiments behind the book's figures; their sections by title."""
    names = args.figure or list(EXPERIMENTS)

    def command(name: str) -> str:
        options = " --quick" if args.quick else ""
        if args.out != OUT:
            options += f" --out {args.out}"
        return f"python benchmarks/book.py --figures-only --figure {name}{options}"

    folder = args.out.with_suffix("")
    budget = QUICK if args.quick else BOOK
    return figure_sections(names, data, budget, folder, folder.name, command)


def merged(old: str, new_tables: str | None, new_figures: dict[str, str]) -> str:
    """The output file: the new tables, or the old ones, then the figures' sections in
    the experiments' order, each new where it was run and old where it was not."""
    old_tables, _, old_figures = old.partition(FIGURES_HEADING)
    sections = {**split_sections(old_figures), **new_figures}
    ordered = [sections[e.title] for e in EXPERIMENTS.values() if e.title in sections]
    text = (new_tables or old_tables).rstrip() + "\n"
    if ordered:
        text += "\n".join([f"\n{FIGURES_HEADING}\n\n{FIGURES_INTRO}\n", *ordered])
    return text.lstrip()


def split_sections(text: str) -> dict[str, str]:
    """The ``## `` sections of ``text`` by their heading (the title after the hashes)."""
    parts = re.split(r"^(?=## )", text, flags=re.MULTILINE)
    return {p.splitlines()[0][3:]: p.rstrip() + "\n" for p in parts if p.startswith("## ")}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5, help="runs per preset (seeds 0..N-1)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--figures", action="store_true", help="after the tables, run the figures' experiments"
    )
    parser.add_argument(
        "--figures-only", action="store_true", help="run the figures' experiments, no tables"
    )
    parser.add_argument(
        "--figure",
        action="append",
        choices=list(EXPERIMENTS),
        metavar="NAME",
        help=f"run only this figure experiment (repeatable; one of {', '.join(EXPERIMENTS)})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 1 epoch on 5,000 images per table run, a few epochs per figure",
    )
    args = parser.parse_args()
    if args.figure and not (args.figures or args.figures_only):
        parser.error("--figure needs --figures or --figures-only")
    data = load_mnist()
    new_tables = None if args.figures_only else tables(data, args)
    new_figures = figures(data, args) if args.figures or args.figures_only else {}
    old = args.out.read_text() if args.out.exists() else ""
    write(args.out, merged(old, new_tables, new_figures))


if __name__ == "__main__":
    main()
