"""A callback that simulates a kill once a given number of epochs is checkpointed."""

from __future__ import annotations

from digitlab.train.callbacks import Callback


class StopAfter(Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, record) -> None:
        if record.epoch == self.epochs:  # epochs count from 1
            raise KeyboardInterrupt
