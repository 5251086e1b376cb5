"""The progress display of a run started from Python: shown to a person at a prompt or
in a notebook, silent in scripts, tests and CI and whenever the caller watches the run."""

from __future__ import annotations

import io
import sys
import types

import numpy as np
import pytest
from rich.console import Console

from digitlab.data.mnist import Dataset, Split
from digitlab.spec import Spec
from digitlab.train import callbacks
from digitlab.train.callbacks import (
    Callback,
    EpochBar,
    EpochLog,
    interactive_session,
    python_display,
    wants_progress,
)
from digitlab.train.history import EpochRecord
from digitlab.train.trainer import Trainer


@pytest.mark.parametrize(
    "progress, has_callbacks, interactive, shown",
    [
        (None, False, True, True),  # a person, nothing else watching: the bar
        (None, False, False, False),  # a script, a test, CI: silent
        (None, True, True, False),  # the caller watches the run itself
        (True, True, False, True),  # forced on
        (False, False, True, False),  # forced off
    ],
)
def test_when_the_bar_shows(progress, has_callbacks, interactive, shown) -> None:
    assert wants_progress(progress, has_callbacks, lambda: interactive) is shown


def test_a_prompt_or_an_ipython_shell_is_interactive_and_pytest_is_not(monkeypatch) -> None:
    assert not interactive_session()
    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    assert interactive_session()
    monkeypatch.delattr(sys, "ps1")
    shell = types.SimpleNamespace(get_ipython=lambda: object())
    monkeypatch.setitem(sys.modules, "IPython", shell)
    assert interactive_session()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: None))
    assert not interactive_session()


def record(epoch: int, validation: float) -> EpochRecord:
    return EpochRecord(epoch, 0.1, 0.5, 0.9, 0.4, validation, None, 1.0)


def test_the_bar_counts_epochs_and_shows_the_latest_validation_accuracy() -> None:
    out = io.StringIO()
    bar = EpochBar(Console(file=out, width=100, color_system=None))
    for epoch, validation in enumerate([0.9, 0.975], 1):  # epochs count from 1
        bar.on_epoch_start(epoch, 3, 50)
        bar.on_batches(25)
        bar.on_epoch_end(record(epoch, validation))
    bar.on_train_end()
    text = out.getvalue()
    assert "2/3" in text and "validation 97.50%" in text


def test_a_notebook_without_ipywidgets_gets_epoch_lines(monkeypatch) -> None:
    monkeypatch.setattr(callbacks.importlib.util, "find_spec", lambda name: None)
    assert isinstance(python_display(Console(force_jupyter=True)), EpochLog)
    assert isinstance(python_display(Console(file=io.StringIO())), EpochBar)


def tiny_data() -> Dataset:
    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        return Split(rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n))

    return Dataset(split(40), split(20), split(20), (28, 28))


def train(monkeypatch, interactive: bool, watchers: list[Callback], progress=None) -> None:
    monkeypatch.setattr(callbacks, "interactive_session", lambda: interactive)
    spec = Spec(epochs=2, batch_size=10)
    Trainer(spec, tiny_data(), watchers, diagnostics=False).run(progress=progress)


def test_trainer_shows_the_bar_only_when_asked_or_interactive_and_unwatched(
    monkeypatch, capsys
) -> None:
    train(monkeypatch, interactive=False, watchers=[])
    assert capsys.readouterr().err == ""
    train(monkeypatch, interactive=True, watchers=[Callback()])
    assert capsys.readouterr().err == ""
    train(monkeypatch, interactive=True, watchers=[])
    assert "validation" in capsys.readouterr().err
    train(monkeypatch, interactive=False, watchers=[Callback()], progress=True)
    assert "2/2" in capsys.readouterr().err
