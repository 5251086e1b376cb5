"""What a finished benchmark run leaves in the repository, so its results outlive the machine.

A convolutional run takes an hour or more of this CPU, and its model and checkpoint live
in out/cnn/, which a new machine does not have: tables, paired comparisons and ensembles
built across sessions would otherwise need every network trained again.  So each
finished run also leaves a *run record* in docs/results/runs/, committed with the
results pages, holding everything those read from a run:

- its spec (what was trained, seed included) and the figures its model file records;
- its history: every epoch's accuracies, costs and times, as the model's history file has
  them;
- its kept weights' class probabilities on the 10,000 validation and 10,000 test images:
  the network's own, float32, and the temperature the model was calibrated at after
  training, from which its calibrated probabilities follow exactly
  (:func:`~digitlab.nn.model_file.tempered_probabilities`).  An ensemble formed from
  records is therefore scored by the very functions
  :func:`digitlab.evaluation.scoring.evaluate` uses for the same models.  (The
  probabilities themselves can differ from a later evaluation in their last bit, about
  1e-7, where BLAS splits its products differently -- one thread in a ``--lanes`` worker,
  two otherwise -- which can move an accuracy only on an exact tie between two digits);
- the line saying where and at which commit it was measured.

That is about 0.8 MB a run (compressed), a quarter of a model file; what needs the
weights themselves (test-time augmentation, serving) still needs out/cnn/.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.atomic import atomic_write
from digitlab.data import Dataset, Split
from digitlab.errors import DigitlabError
from digitlab.evaluation.calibration import CalibrationScores
from digitlab.evaluation.scoring import Vote
from digitlab.nn.model_file import (
    Answers,
    ModelFileError,
    TrainingMetrics,
    load_model,
    tempered_probabilities,
)
from digitlab.spec import Spec, make_spec
from digitlab.train.history import History
from digitlab.train.to_file import history_path_for

#: Where the benchmarks keep run records (relative to the repository root, where they run).
RECORDS = Path("docs/results/runs")
#: Bumped when the record's layout changes, so an old record is refused, not misread.
FORMAT = 1
#: Digits, and so columns of the probabilities.
CLASSES = 10
#: The largest record file read (a run's is about 1 MB): anything larger is not one.
MAX_BYTES = 16 * 2**20


class RunRecordError(DigitlabError):
    """A file that is not a readable run record."""


@dataclass(frozen=True)
class RunRecord:
    """A finished run, as the benchmark tables read it (see the module's docstring)."""

    spec: Spec
    metrics: TrainingMetrics  # as the model file records them: best epoch, its accuracies
    history: History
    validation: np.ndarray  # (images, 10) float32: the network's own probabilities
    test: np.ndarray | None  # the same on the test images; None if the run measured none
    temperature: float | None  # the model's calibration; None if it was not calibrated
    measured: str  # where, when and at which commit (benchmarks/report.machine)

    def minutes(self) -> tuple[float, float | None]:
        """The run's training passes, and its wall time (training plus the measuring
        after each epoch; None for histories written before evaluation was timed), in
        minutes."""
        training = sum(record.seconds for record in self.history) / 60
        evaluation = [record.evaluation_seconds for record in self.history]
        if None in evaluation:
            return training, None
        return training, training + sum(evaluation) / 60

    def probabilities(self, split: str) -> np.ndarray:
        """The kept weights' probabilities on ``"validation"`` or ``"test"``."""
        found = self.validation if split == "validation" else self.test
        if found is None:
            raise RunRecordError(f"this run measured no {split} images")
        return found

    def vote(self, split: str) -> Vote:
        """The run as an ensemble member on ``split``: what its model would say (the
        calibrated probabilities only where the model was calibrated, as
        :meth:`digitlab.evaluation.scoring.Vote.of` gives them; doubt is not recorded)."""
        raw = self.probabilities(split)
        if self.temperature is None:
            return Vote(raw, None)
        return Vote(raw, Answers(tempered_probabilities(raw, self.temperature), None, None, None))

    def confidence(self, validation: Split) -> CalibrationScores:
        """How sure the network is on the validation images, before any calibration."""
        return CalibrationScores.of(self.validation, validation.labels)


def record_from_model(model_path: Path, data: Dataset, measured: str) -> RunRecord:
    """The record of the finished run whose model (and history beside it) is at
    ``model_path``: its probabilities computed now, as ``digitlab evaluate`` would."""
    model = load_model(model_path)
    history = History.from_dicts(json.loads(history_path_for(model_path).read_text()))
    test = None if data.test is None else model.raw_probabilities(data.test.images)
    calibration = model.calibration
    return RunRecord(
        model.spec,
        model.metrics,
        history,
        model.raw_probabilities(data.validation.images),
        test,
        None if calibration is None else calibration.temperature,
        measured,
    )


def save_record(record: RunRecord, path: Path) -> None:
    """Write ``record`` to ``path`` (a compressed ``.npz``), atomically."""
    header = {
        "format": FORMAT,
        "spec": record.spec.model_dump(),
        "metrics": record.metrics.to_dict(),
        "history": record.history.to_dicts(),
        "temperature": record.temperature,
        "measured": record.measured,
    }
    arrays = {"header": np.array(json.dumps(header)), "validation": record.validation}
    if record.test is not None:
        arrays["test"] = record.test
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def load_record(path: Path) -> RunRecord:
    """The run record at ``path``; a :class:`RunRecordError` naming the file if it is
    missing, too large, or not a record this version reads."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise RunRecordError(f"cannot read run record {path}: {error.strerror}") from None
    if size > MAX_BYTES:
        raise RunRecordError(f"{path} is {size} bytes, too large for a run record")
    if not zipfile.is_zipfile(path):
        raise RunRecordError(f"{path} is not a run record (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            header = json.loads(str(arrays["header"]))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise RunRecordError(f"{path} is not a run record of format {FORMAT}")
            validation = _probabilities(arrays["validation"], path)
            test = _probabilities(arrays["test"], path) if "test" in arrays else None
            spec = make_spec(header["spec"], source=str(path))
            metrics = TrainingMetrics.from_dict(header["metrics"], path)
            history = History.from_dicts(header["history"])
            measured = str(header["measured"])
            temperature = _temperature(header["temperature"], path)
    except RunRecordError:
        raise
    except (
        OSError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        zipfile.BadZipFile,
        ModelFileError,
    ) as error:
        raise RunRecordError(f"{path} is not a readable run record ({error})") from None
    return RunRecord(spec, metrics, history, validation, test, temperature, measured)


def _temperature(value: object, path: Path) -> float | None:
    if value is None:
        return None
    number = not isinstance(value, bool) and isinstance(value, int | float)
    if not (number and 0 < value < np.inf):
        raise RunRecordError(f"{path} holds a temperature that is not a positive number")
    return float(value)


def _probabilities(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype != np.float32 or array.ndim != 2 or array.shape[1] != CLASSES:
        raise RunRecordError(f"{path} holds probabilities of shape {array.shape}, not (n, 10)")
    return array
