"""Training: the mini-batch loop, metrics, history, progress, checkpoints."""

from digitlab.train.history import EpochRecord, History
from digitlab.train.trainer import Trainer, TrainResult

__all__ = ["EpochRecord", "History", "TrainResult", "Trainer"]
