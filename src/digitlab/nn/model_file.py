"""Model files: the spec as JSON plus the parameter arrays, in one ``.npz``.

No pickle anywhere: ``np.load(..., allow_pickle=False)`` reads only plain arrays, so
opening a model file from a stranger cannot run code.  The JSON header carries a
format version, the spec (so the network can be rebuilt exactly) and whatever metrics
the trainer recorded.  Checkpoints use the same container with extra arrays.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy.special import expit, softmax

from digitlab.atomic import atomic_write
from digitlab.errors import ModelFileError, SpecError
from digitlab.inputs import digit_labels, pixel_rows
from digitlab.nn.build import build_network
from digitlab.nn.network import Network
from digitlab.nn.novelty import DigitFeatures
from digitlab.nn.summary import ModelSummary
from digitlab.spec import PIXELS, Spec, check_digit_network, make_spec

FORMAT = "digitlab-model"
FORMAT_VERSION = 1
HEADER_KEY = "__digitlab__"
#: The prefix of the digit features' arrays in a model file.
FEATURES_KEY = "digit_features"
#: Limits on what a model file or checkpoint may hold, checked before anything is
#: decompressed: cnn-best's checkpoint holds 3.5 million values (14 MB).
MAX_ELEMENTS = 50_000_000
MAX_TOTAL_BYTES = 500_000_000
#: log-probabilities are floored here, so a probability of exactly 0 stays finite.
LOG_FLOOR = -80.0


def normalised(scores: np.ndarray) -> np.ndarray:
    """Non-negative scores scaled so each row sums to one (equal shares for a row of
    zeros): probabilities that keep the scores' order."""
    totals = scores.sum(axis=1, keepdims=True)
    uniform = np.full_like(scores, 1 / scores.shape[1])
    return np.divide(scores, totals, out=uniform, where=totals > 0)


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Logarithms of class probabilities, floored so zeros stay finite.  They serve as
    logits: softmax(log p / T) is the temperature-scaled distribution for any T."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(np.asarray(probabilities, dtype=np.float64)), LOG_FLOOR)


def tempered_probabilities(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """A network's own probabilities as a model calibrated at ``temperature`` states
    them: their logarithms divided by the temperature, through softmax again (float32).
    What a calibrated model answers is this function of what its network says, so the
    network's probabilities and the temperature are all a record of its answers needs."""
    return softmax(log_probabilities(probabilities) / temperature, axis=1).astype(np.float32)


@dataclass(frozen=True)
class Calibration:
    """How to turn the network's outputs into honest probabilities and doubt, fitted on
    validation digits (see :mod:`digitlab.evaluation.calibration`): the temperature that
    divides the logits, the calibrated top probability below which an answer is
    "unsure" (torn between digits), and the validation NLL and ECE before and after.  A
    convolutional network's calibration also holds its digits' features
    (:mod:`digitlab.nn.novelty`) and the distance from them beyond which an image is
    unlike any digit, which makes its answer unsure too; its ``unsure_below`` is then
    fitted together with that distance, and ``alone_unsure_below`` is the threshold the
    top probability would have alone (for runtimes that judge by it alone, as an ONNX
    export's users do)."""

    temperature: float
    unsure_below: float
    validation_nll: tuple[float, float]
    validation_ece: tuple[float, float]
    digit_features: DigitFeatures | None = None
    unlike_above: float | None = None
    alone_unsure_below: float | None = None

    def __post_init__(self) -> None:
        with_features = [self.digit_features, self.unlike_above, self.alone_unsure_below]
        if any(v is None for v in with_features) and any(v is not None for v in with_features):
            raise ValueError("digit features, unlike_above and alone_unsure_below go together")

    def by_top_probability_alone(self) -> Calibration:
        """This calibration without the digit features: the top probability judges
        alone, at the threshold fitted for it alone."""
        if self.digit_features is None:
            return self
        return replace(
            self,
            unsure_below=self.alone_unsure_below,
            digit_features=None,
            unlike_above=None,
            alone_unsure_below=None,
        )

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "temperature": self.temperature,
            "unsure_below": self.unsure_below,
            "validation_nll": list(self.validation_nll),
            "validation_ece": list(self.validation_ece),
        }
        if self.digit_features is not None:
            record["unlike_above"] = self.unlike_above
            record["alone_unsure_below"] = self.alone_unsure_below
        return record

    def arrays(self) -> dict[str, np.ndarray]:
        """The digit features' arrays, named as a model file stores them."""
        if self.digit_features is None:
            return {}
        return {f"{FEATURES_KEY}/{k}": v for k, v in self.digit_features.arrays().items()}

    @classmethod
    def from_dict(
        cls, record: Any, path: Path, arrays: dict[str, np.ndarray] | None = None
    ) -> Calibration:
        """Read a stored calibration (with the model file's arrays, for the digit
        features), refusing anything but finite numbers in range."""
        damaged = ModelFileError(f"{path} has a damaged calibration record")
        try:
            calibration = cls(
                _number(record["temperature"]),
                _number(record["unsure_below"]),
                tuple(_number(v) for v in record["validation_nll"][:2]),
                tuple(_number(v) for v in record["validation_ece"][:2]),
            )
            unlike_above, alone = record.get("unlike_above"), record.get("alone_unsure_below")
            unlike_above = None if unlike_above is None else _number(unlike_above)
            alone = None if alone is None else _number(alone)
        except (TypeError, KeyError, ValueError, IndexError, AttributeError):
            raise damaged from None
        numbers = [calibration.temperature, calibration.unsure_below]
        if not (np.isfinite(numbers).all() and calibration.temperature > 0):
            raise damaged
        if len(calibration.validation_nll) != 2 or len(calibration.validation_ece) != 2:
            raise damaged
        if unlike_above is None and alone is None:
            return calibration  # no digit features (a dense network, or an older file)
        if unlike_above is None or alone is None:
            raise damaged
        if not (np.isfinite([unlike_above, alone]).all() and unlike_above >= 0):
            raise damaged
        prefix = f"{FEATURES_KEY}/"
        arrays = arrays or {}
        stored = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
        features = DigitFeatures.from_arrays(stored, str(path))
        return replace(
            calibration,
            digit_features=features,
            unlike_above=unlike_above,
            alone_unsure_below=alone,
        )


def _number(value: Any) -> float:
    """A stored number as a float; a JSON true or false is no number."""
    if isinstance(value, bool):
        raise TypeError("a truth value is not a number")
    return float(value)


@dataclass(frozen=True)
class Reading:
    """What a network makes of some rows of pixels: its own probabilities (before
    calibration) and, for a convolutional network, each row's features."""

    probabilities: np.ndarray
    features: np.ndarray | None


@dataclass(frozen=True)
class Answers:
    """A model's answers for some rows of pixels: ten probabilities each (calibrated
    when the model is), whether each answer is unsure -- torn between digits, or unlike
    any -- and, for a model that keeps its digits' features, each row's distance from
    them and whether it lies beyond the threshold (None where the model cannot say)."""

    probabilities: np.ndarray
    unsure: np.ndarray | None
    unlike_digits: np.ndarray | None
    distances: np.ndarray | None


@dataclass(frozen=True)
class TrainingMetrics:
    """The headline numbers of the run that trained a model, as its file records them:
    how many epochs ran on how many training images, the best-validation epoch (counted
    from 1) with its validation and test accuracy -- the weights kept are that epoch's --
    the last epoch's accuracies, and the seconds spent training.  Each is None when
    unknown (a model built rather than trained; test accuracy when the test set was kept
    out of training)."""

    epochs_run: int = 0
    train_size: int | None = None
    best_epoch: int | None = None
    validation_accuracy: float | None = None
    test_accuracy: float | None = None
    final_validation_accuracy: float | None = None
    final_test_accuracy: float | None = None
    train_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The known numbers, by name: what the model file and ``--json`` outputs hold."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, record: Any, path: Path) -> TrainingMetrics:
        """Read a stored record, keeping the names this version knows and refusing any
        value that is not a finite number."""
        if not isinstance(record, dict):
            raise ModelFileError(f"{path} has a damaged header (metrics are not a record)")
        known = {f.name: f.type for f in fields(cls)}
        values = {}
        for name, value in record.items():
            if name not in known or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ModelFileError(f"{path} has a damaged header (metric {name} is not a number)")
            if not np.isfinite(value):
                raise ModelFileError(f"{path} has a damaged header (metric {name} is not finite)")
            values[name] = int(value) if known[name].startswith("int") else float(value)
        return cls(**values)


@dataclass
class Model:
    """A trained network together with the spec that built it, its recorded metrics and,
    once calibrated, how to read its outputs as honest probabilities.

    What :func:`load_model` returns and training produces, and what a Python user asks
    for answers::

        model = load_model("model.npz")
        model.predict(images)        # the digit each image shows
        model.predict_proba(images)  # ten probabilities per image
        model.score(images, labels)  # the fraction answered right
        print(model.summary())       # layers, parameters, spec, metrics, calibration

    ``images`` may be rows of 784 pixels or 28x28 images, one or many, grey levels 0-255
    or floats in [0, 1]; they are checked and scaled by :func:`digitlab.inputs.pixel_rows`.
    :meth:`probabilities` is the same answer for pixels already in the network's form,
    unchecked, for code that prepared them itself.  ``format_version`` is the version
    of the file the model was read from (the current one for a model not read from a
    file).
    """

    spec: Spec
    network: Network
    metrics: TrainingMetrics = field(default_factory=TrainingMetrics)
    calibration: Calibration | None = None
    format_version: int = FORMAT_VERSION
    #: Where the run that trained it took its first weights from, in words, when not
    #: from its spec's initialisation: another model's (fine-tuning, as ``digitlab tune``
    #: does).  None for a model trained from scratch.  ``digitlab train`` with its spec
    #: starts afresh, so for such a model it trains another one.
    started_from: str | None = None
    #: What the run that trained it learned from, in words, when not MNIST's training
    #: images: the images given to ``DigitClassifier.fit``.  None for MNIST.  ``digitlab
    #: train`` with its spec trains on MNIST, so for such a model it trains another one.
    trained_on: str | None = None
    #: What a model file or an ONNX graph of this model would lose (nothing for a plain
    #: model): a wrapper that changes how answers are read names itself here, so saving
    #: or exporting it is refused rather than silently dropping what it does.
    not_in_files: ClassVar[str] = ""

    def raw_reading(self, rows: np.ndarray) -> Reading:
        """The network's own ten probabilities per row of pixels, before any
        calibration, with each row's features when the network has convolutions.

        Softmax outputs already are probabilities.  Other outputs (the book's sigmoid
        neurons) are clipped at zero and normalised to sum to one, which keeps their
        order and makes them comparable on one scale.  Sigmoid outputs are computed here
        with SciPy's expit, accurate to float32's relative precision, rather than the
        training pass's faster sigmoid, whose smallest values are only absolutely
        accurate: calibration takes their logarithms, and a temperature above 1 raises
        them into view.  The ONNX export computes them the same way.  (The training
        history's accuracies keep the fast sigmoid; the two can name different digits
        only where outputs saturate: two above z = 17, or all below z = -17.)
        """
        outputs = self.network.logits_and_features(np.asarray(rows, dtype=np.float32))
        output_activation = self.spec.resolved_output_activation
        if output_activation == "sigmoid":  # in float64: it saturates at 1 no sooner
            probabilities = expit(outputs.logits.astype(np.float64)).astype(np.float32)
        else:
            probabilities = self.network.cost.output(outputs.logits)
        if output_activation != "softmax":
            probabilities = normalised(np.maximum(probabilities, 0))
        return Reading(probabilities, outputs.features)

    def raw_probabilities(self, rows: np.ndarray) -> np.ndarray:
        """The network's own ten probabilities per row of pixels (see :meth:`raw_reading`)."""
        return self.raw_reading(rows).probabilities

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """Ten probabilities per row of pixels already in the network's form (float32 in
        [0, 1], unchecked), tempered by the fitted temperature when the model is
        calibrated (:mod:`digitlab.evaluation.calibration`)."""
        return self._tempered(self.raw_probabilities(rows))

    def answers(self, rows: np.ndarray) -> Answers:
        """The answers for rows of pixels in the network's form (unchecked), with doubt:
        an answer is unsure when its calibrated top probability is under the model's
        threshold or, for a model that keeps its digits' features, when the image's
        features are unlike any digit's (:mod:`digitlab.nn.novelty`).  An uncalibrated
        model cannot judge (``unsure`` is None)."""
        return self.judged(self.raw_reading(rows))

    def judged(self, reading: Reading) -> Answers:
        """:meth:`answers` for a :meth:`raw_reading` already made (one forward pass
        serves a caller that needs both)."""
        probabilities = self._tempered(reading.probabilities)
        found = self.calibration
        if found is None:
            return Answers(probabilities, None, None, None)
        # written so that NaN, which compares false, counts as doubt
        unsure = ~(probabilities.max(axis=1) >= found.unsure_below)
        if found.digit_features is None or reading.features is None:
            return Answers(probabilities, unsure, None, None)
        distances = found.digit_features.distances(reading.features)
        unlike = ~(distances <= found.unlike_above)
        return Answers(probabilities, unsure | unlike, unlike, distances)

    def _tempered(self, probabilities: np.ndarray) -> np.ndarray:
        if self.calibration is None:
            return probabilities
        return tempered_probabilities(probabilities, self.calibration.temperature)

    def predict_proba(self, images: object) -> np.ndarray:
        """Ten probabilities per image, (n, 10) float32, calibrated when the model is;
        ``images`` in any form :func:`~digitlab.inputs.pixel_rows` accepts."""
        return self.probabilities(pixel_rows(images))

    def predict(self, images: object) -> np.ndarray:
        """The most probable digit for each image (integers, shape (n,))."""
        return self.predict_proba(images).argmax(axis=1)

    def score(self, images: object, labels: object) -> float:
        """The fraction of ``images`` whose digit is predicted as ``labels`` says."""
        rows = pixel_rows(images)
        expected = digit_labels(labels, len(rows))  # checked before the network runs
        return float((self.probabilities(rows).argmax(axis=1) == expected).mean())

    def describe(self) -> ModelSummary:
        """Layers, parameter counts, spec, metrics, calibration and format version."""
        return ModelSummary.of(
            self.spec,
            self.network,
            self.metrics,
            self.calibration,
            self.format_version,
            self.started_from,
            self.trained_on,
        )

    def summary(self) -> str:
        """:meth:`describe` as a table to print, in the manner of Keras' ``summary()``."""
        return self.describe().text()

    def save(self, path: Path | str) -> None:
        """Write the model to ``path`` atomically, as Keras' ``model.save(path)`` does
        (:func:`save_model`; :func:`load_model` reads it back)."""
        save_model(Path(path), self)


def save_model(path: Path, model: Model) -> None:
    """Write ``model`` to ``path`` atomically."""
    model = require_model(model, "save_model(path, model)", "the path comes first")
    require_file_form(model, "save_model(path, model)")
    arrays = {f"param/{i}": a for i, a in enumerate(model.network.arrays())}
    header = {"spec": model.spec.model_dump(), "metrics": model.metrics.to_dict()}
    if model.calibration is not None:
        header["calibration"] = model.calibration.to_dict()
        arrays.update(model.calibration.arrays())
    for name in PROVENANCE:
        if getattr(model, name) is not None:
            header[name] = checked_line(getattr(model, name), name)
    write_container(path, FORMAT, header, arrays)


def require_model(model: object, call: str, given_a_path: str) -> Model:
    """``model`` itself if it is a Model, else a TypeError naming what ``call`` takes.
    The usual slips get a hint: a path where the model goes (``given_a_path`` says what
    to do then), or a scikit-learn estimator, whose fitted model is its ``model_``."""
    if isinstance(model, Model):
        return model
    if isinstance(getattr(model, "model_", None), Model):
        hint = ": a fitted DigitClassifier's model is its model_"
    elif isinstance(model, str | Path):
        hint = f": {given_a_path}"
    else:
        hint = ""
    raise TypeError(f"{call} takes a digitlab Model, not {type(model).__name__}{hint}")


def require_file_form(model: Model, call: str) -> None:
    """Refuse, naming what would be lost, to write a model a file cannot hold whole: a
    wrapper that changes how answers are read (:attr:`Model.not_in_files`)."""
    if model.not_in_files:
        raise ModelFileError(
            f"{call}: a file holds the network, not {model.not_in_files}; save or "
            "export the model it wraps, and wrap it again after loading"
        )


def load_model(path: Path) -> Model:
    """Read a model file, rebuilding its network; a clear error if it is not one."""
    header, arrays = read_container(path, FORMAT)
    spec = _spec_from(header, path)
    try:
        check_digit_network(spec)
        network = build_network(spec, np.random.default_rng(0))
    except SpecError as exc:
        raise ModelFileError(f"{path} has no valid spec ({exc})") from None
    try:
        params = numbered(arrays, "param")
        if any(array.dtype.kind != "f" for array in params):
            raise ValueError("its weights are not floating-point numbers")
        network.load_arrays(params)
    except ValueError as exc:
        raise ModelFileError(f"{path} is damaged: {exc}") from None
    if not all(np.isfinite(array).all() for array in network.arrays()):
        raise ModelFileError(f"{path} is damaged: its weights hold NaN or infinite values")
    stored = header.get("calibration")
    calibration = None if stored is None else Calibration.from_dict(stored, path, arrays)
    if calibration is not None and calibration.digit_features is not None:
        _check_feature_channels(network, calibration.digit_features, path)
    version = header.get("format_version", 0)
    metrics = TrainingMetrics.from_dict(header.get("metrics", {}), path)
    started_from, trained_on = (line_record(header, name, path) for name in PROVENANCE)
    return Model(spec, network, metrics, calibration, version, started_from, trained_on)


#: What a model file may say, in a line of words each, of where its run came from.
PROVENANCE = ("started_from", "trained_on")
#: The longest such line a file may hold.
MAX_PROVENANCE = 1000


def line_record(header: dict[str, Any], name: str, path: Path) -> str | None:
    """A file's line of words under ``name`` (``started_from``: where its run's first
    weights came from; ``trained_on``: what it learned from), None when the file has
    none, refused unless it is a short line of text."""
    found = header.get(name)
    if found is None:
        return None
    try:
        return checked_line(found, name)
    except ValueError:
        raise ModelFileError(
            f"{path} has a damaged header ({name} is not a line of text)"
        ) from None


def checked_line(text: object, name: str) -> str:
    """``text`` if a file may record it under ``name``: one line of printable text of
    at most :data:`MAX_PROVENANCE` characters (a ValueError if not), checked on writing
    as on reading, so no model is saved that cannot be loaded."""
    if not isinstance(text, str) or len(text) > MAX_PROVENANCE or not text.isprintable():
        raise ValueError(
            f"{name} must be one line of at most {MAX_PROVENANCE} printable characters"
        )
    return text


def _check_feature_channels(network: Network, features: DigitFeatures, path: Path) -> None:
    """Refuse digit features whose channel count is not the network's."""
    blank = np.zeros((1, PIXELS), dtype=np.float32)
    outputs = network.logits_and_features(blank)
    if outputs.features is None or outputs.features.shape[1] != features.channels:
        raise ModelFileError(f"{path} has a damaged digit-feature record (wrong shape)")


def _spec_from(header: dict[str, Any], path: Path) -> Spec:
    try:
        return make_spec(header["spec"], source=str(path))
    except (KeyError, SpecError) as exc:
        raise ModelFileError(f"{path} has no valid spec ({exc})") from None


def numbered(arrays: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """The arrays ``PREFIX/0``, ``PREFIX/1``, ... in order (a gap is damage)."""
    count = sum(1 for key in arrays if key.startswith(f"{prefix}/"))
    missing = [i for i in range(count) if f"{prefix}/{i}" not in arrays]
    if missing:
        raise ValueError(f"array {prefix}/{missing[0]} is missing")
    return [arrays[f"{prefix}/{i}"] for i in range(count)]


def write_container(
    path: Path, kind: str, header: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    """Save a JSON header and named arrays as one ``.npz``, replacing ``path`` atomically.
    A file already at ``path`` is replaced only if it is a digitlab file itself: a
    picture of someone's digits, or their notes, saved over by a slip of the name would
    be lost."""
    check_replaceable(path, kind)
    full_header = {"format": kind, "format_version": FORMAT_VERSION, **header}
    atomic_write(
        path,
        lambda handle: np.savez(
            handle, **{HEADER_KEY: np.array(json.dumps(full_header))}, **arrays
        ),
    )


def check_replaceable(path: Path, kind: str) -> None:
    """Refuse ``path`` as a place to save a ``kind`` file (a model, a checkpoint) if
    something else is there: a folder, a pipe, a picture, someone's numpy arrays, a
    digitlab file of the other kind, or one written by a newer digitlab.  Only the
    file's header is read, so a run's own checkpoint costs nothing to check each epoch."""
    if not path.exists():
        return
    name = OTHER_FILES[kind]["name"]
    if path.is_dir():
        problem = "is a folder"
    elif not path.is_file():
        problem = "is not a regular file (a pipe or a device?)"
    else:
        found, version = _format_of(path)
        if found == kind and isinstance(version, int) and version > FORMAT_VERSION:
            problem = f"was written by a newer digitlab (format {version})"
        elif found in OTHER_FILES and found != kind:
            problem = f"is a digitlab {OTHER_FILES[found]['name']} file, not a {name} file"
        elif found != kind:
            problem = f"holds something other than a digitlab {name} file"
        else:
            return
    raise ModelFileError(
        f"{path} {problem}, and is left as it is: save under another name, or remove it first"
    )


#: The largest header :func:`check_replaceable` reads (a checkpoint's holds its history).
MAX_HEADER_BYTES = 64 * 2**20


def _format_of(path: Path) -> tuple[object, object]:
    """The format and version a file's header names, read without its arrays; None for
    both where it has no readable digitlab header."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(f"{HEADER_KEY}.npy")
            if info.file_size > MAX_HEADER_BYTES:
                return None, None
            with archive.open(info) as member:
                header = json.loads(str(np.lib.format.read_array(member, allow_pickle=False)))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, RecursionError):
        return None, None
    if not isinstance(header, dict):
        return None, None
    return header.get("format"), header.get("format_version")


#: The files read_container reads, by their header's format: what to call each, and
#: what to tell someone who hands one where another kind was wanted.
OTHER_FILES: dict[str, dict[str, str]] = {
    "digitlab-model": {"name": "model"},
    "digitlab-checkpoint": {
        "name": "checkpoint",
        FORMAT: (
            " (the state of a run): `digitlab train --resume {path} --out MODEL.npz` "
            "finishes the run and saves its model (in Python: "
            "Trainer.resume(path, data).run().model)"
        ),
    },
}


def read_container(path: Path, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a container written by :func:`write_container`, checking its kind and version.

    The file is a stranger's until proven otherwise: each array's shape, type and size
    are read from its own header and checked (:func:`_check_members`) before the array
    is decompressed, so a zip bomb or an array claiming 10^12 elements is refused before
    it takes memory.
    """
    path = Path(path)
    not_ours = f"{path} is not a digitlab {kind.removeprefix('digitlab-')} file"
    if path.exists() and not path.is_file() and not path.is_dir():
        raise ModelFileError(f"{path} is not a regular file (a pipe or a device?)")
    try:
        with open(path, "rb") as handle:
            with zipfile.ZipFile(handle) as archive:
                names = _check_members(archive, path, not_ours)
            handle.seek(0)
            with np.load(handle, allow_pickle=False) as loaded:
                arrays = {name: loaded[name] for name in names}
        header = json.loads(str(arrays.pop(HEADER_KEY)))
    except FileNotFoundError:
        raise ModelFileError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a directory, not a model file") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, RecursionError, KeyError):
        raise ModelFileError(not_ours) from None
    found = header.get("format") if isinstance(header, dict) else None
    if found != kind:
        if isinstance(found, str) and found in OTHER_FILES:
            hint = OTHER_FILES[found].get(kind, "").format(path=path)
            wanted = kind.removeprefix("digitlab-")
            raise ModelFileError(
                f"{path} is a digitlab {OTHER_FILES[found]['name']} file, not a {wanted} file{hint}"
            )
        raise ModelFileError(not_ours)
    version = header.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ModelFileError(f"{path} has a damaged header (format version {version!r})")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path} was written by a newer digitlab (format {version}); upgrade")
    if not isinstance(header.get("metrics", {}), dict):
        raise ModelFileError(f"{path} has a damaged header (metrics are not a record)")
    return header, arrays


def _check_members(archive: zipfile.ZipFile, path: Path, not_ours: str) -> list[str]:
    """The array names in ``archive``, after checking every member from its headers
    alone: a .npy of plain numbers (the header: one string), with no more than
    :data:`MAX_ELEMENTS` values, whose uncompressed size (as the zip declares it) is
    exactly what its shape needs, and :data:`MAX_TOTAL_BYTES` at most in all."""
    names, total = [], 0
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise ModelFileError(not_ours)
        name = info.filename.removesuffix(".npy")
        with archive.open(info) as member:
            major, _ = np.lib.format.read_magic(member)
            read_header = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(member)
            header_bytes = member.tell()
        elements = int(np.prod(shape, dtype=object))
        kinds = "U" if name == HEADER_KEY else "fiu"  # optimiser step counts are integers
        if dtype.kind not in kinds or dtype.fields is not None or elements > MAX_ELEMENTS:
            raise ModelFileError(f"{path} is damaged: array {name} is {dtype} of shape {shape}")
        total += info.file_size
        if info.file_size != header_bytes + elements * dtype.itemsize or total > MAX_TOTAL_BYTES:
            raise ModelFileError(f"{path} is damaged: array {name} does not match its shape")
        names.append(name)
    if HEADER_KEY not in names:
        raise ModelFileError(not_ours)
    return names
