"""Things that watch a training run: progress display and epoch logging.

The trainer calls ``on_epoch_start`` / ``on_batches`` / ``on_epoch_end`` and never
decides how anything is shown: a terminal gets a live progress bar, a log file or CI
gets one line per epoch, and ``--json`` output stays machine-readable on stdout
because all of this goes to stderr.  A run started from Python by a person -- in a
Jupyter notebook or at the interactive prompt -- gets one bar over its epochs with
the latest validation accuracy; scripts, tests and CI stay silent.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from digitlab.train.history import EpochRecord


class Callback:
    """Base class: every hook does nothing.  Epochs are numbered from 1, as everywhere:
    ``on_epoch_start(1, 30, batches)`` announces the first of 30.

    A callback that sets ``stop_training`` (in ``on_epoch_end``, say, as in Keras) ends
    the run after the epoch under way; the run's result is kept as when its epochs run
    out."""

    stop_training: bool = False

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None: ...

    def on_batches(self, done: int) -> None: ...

    def on_epoch_end(self, record: EpochRecord) -> None: ...

    def on_train_end(self) -> None: ...


def describe(record: EpochRecord, epochs: int) -> str:
    test = "" if record.test_accuracy is None else f"  test {record.test_accuracy:.2%}"
    return (
        f"epoch {record.epoch:>3}/{epochs}  eta {record.eta:.4g}  "
        f"cost {record.train_cost:.4f}  train {record.train_accuracy:.2%}  "
        f"validation {record.validation_accuracy:.2%}{test}  {record.seconds:.1f}s"
    )


class EpochLog(Callback):
    """One line per epoch on stderr: the plain display for logs and pipes.  ``label``
    starts each line, to tell apart runs that share one log."""

    def __init__(self, label: str = "") -> None:
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.epochs = 0
        self.prefix = f"{label}: " if label else ""

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.console.print(self.prefix + describe(record, self.epochs))


class ProgressBar(EpochLog):
    """A live bar over each epoch's mini-batches, above the per-epoch lines."""

    def __init__(self) -> None:
        super().__init__()
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.task = None

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        super().on_epoch_start(epoch, epochs, batches)
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("train", total=batches, epoch="")
        self.progress.reset(self.task, total=batches, epoch=f"{epoch}/{epochs}")

    def on_batches(self, done: int) -> None:
        self.progress.update(self.task, completed=done)

    def on_train_end(self) -> None:
        self.progress.stop()


def default_display(quiet: bool) -> list[Callback]:
    """Nothing when quiet, a progress bar on a terminal, epoch lines otherwise."""
    if quiet:
        return []
    return [ProgressBar() if sys.stderr.isatty() else EpochLog()]


class EpochBar(Callback):
    """One bar over the run's epochs, moving with the mini-batches and labelled with the
    latest validation accuracy; it stays on screen when the run ends."""

    def __init__(self, console: Console | None = None) -> None:
        self.progress = Progress(
            TextColumn("[bold]epoch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("validation {task.fields[validation]}"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
        )
        self.task = None
        self.done = 0  # epochs finished before the current one
        self.batches = 1

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("train", total=epochs, validation="-")
        self.done, self.batches = epoch - 1, batches
        self.progress.update(self.task, completed=self.done)

    def on_batches(self, done: int) -> None:
        self.progress.update(self.task, completed=self.done + done / self.batches)

    def on_epoch_end(self, record: EpochRecord) -> None:
        accuracy = f"{record.validation_accuracy:.2%}"
        self.progress.update(self.task, completed=record.epoch, validation=accuracy)

    def on_train_end(self) -> None:
        self.progress.stop()


def interactive_session() -> bool:
    """Whether a person runs Python at a prompt: a Jupyter notebook, IPython, or the
    ``python`` prompt -- not a script, a test run or CI."""
    ipython = sys.modules.get("IPython")
    return hasattr(sys, "ps1") or (ipython is not None and ipython.get_ipython() is not None)


def wants_progress(
    progress: bool | None,
    has_callbacks: bool,
    interactive: Callable[[], bool] | None = None,
) -> bool:
    """Whether a run started from Python shows :func:`python_display`: as ``progress``
    says when it is given; otherwise when nothing else watches the run (no callbacks)
    and a person does (``interactive``, by default :func:`interactive_session`)."""
    if progress is not None:
        return progress
    return not has_callbacks and (interactive or interactive_session)()


def python_display(console: Console | None = None) -> Callback:
    """The display of a run started from Python: an :class:`EpochBar`, or one line per
    epoch in a Jupyter notebook without ipywidgets, where rich cannot redraw a bar."""
    console = console or Console(stderr=True)
    if console.is_jupyter and importlib.util.find_spec("ipywidgets") is None:
        return EpochLog()
    return EpochBar(console)


def checked_callbacks(callbacks: Callback | Iterable[Callback] | None) -> list[Callback]:
    """``callbacks`` as a list of :class:`Callback`: one callback alone is taken as a
    list of one, and None as none; anything else (a function, say) is a TypeError
    naming what to pass."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    try:
        listed = list(callbacks)
    except TypeError:
        listed = [callbacks]
    for callback in listed:
        if not isinstance(callback, Callback):
            raise TypeError(
                "callbacks are digitlab.train.callbacks.Callback objects (subclass it and "
                f"override on_epoch_end(record), say), not {type(callback).__name__}"
            )
    return listed
