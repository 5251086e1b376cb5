"""Phrases the experiments' sections share to set our numbers beside the book's."""

from __future__ import annotations

from collections.abc import Sequence


def epochs_text(epoch: int | None, limit: int) -> str:
    """An epoch number, or "more than ``limit``" where the event never happened."""
    return f"more than {limit}" if epoch is None else str(epoch)


def against_range(book: float, values: Sequence[float]) -> str:
    """Where the book's figure lies against the range of our values over seeds: "inside",
    or how far below or above it."""
    if min(values) <= book <= max(values):
        return "inside"
    if book < min(values):
        return f"{min(values) - book:.2f} points below"
    return f"{book - max(values):.2f} points above"


def seed_spread(values: Sequence[float], book: float) -> str:
    """Whether the book's single run lies inside our seeds' range: if so, the gap is
    within the seed-to-seed variation; if not, its cause was not measured."""
    if len(values) == 1:
        return " One seed only: how much of the gap the seed explains is not measured."
    where = f" Over {len(values)} seeds ours ranges {min(values):.2f}–{max(values):.2f} %"
    if min(values) <= book <= max(values):
        return f"{where}: the book's single run lies within our seed-to-seed variation."
    return (
        f"{where}: the book's single run lies {against_range(book, values)} that range.  "
        f"{len(values)} seeds measure that variation only roughly, and no other cause of "
        "the gap was measured."
    )
