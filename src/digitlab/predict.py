"""Predicting digits for users' own images with a saved model (CLI and web page).

An answer says how sure it is.  A calibrated model (``digitlab calibrate``, or any model
trained by this version) carries the top probability below which its answer is
*unsure*, fitted on validation digits; an unsure answer names the digits it is torn
between instead of pretending to know.  A calibrated convolutional network also knows
its digits' features, and calls an image whose features are unlike any digit's unsure
as well -- a letter or a scribble it would otherwise read confidently as some digit
(:mod:`digitlab.nn.novelty`).  An ensemble's averaged probabilities have no threshold of
their own, so they are never called unsure.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from digitlab.data.images import load_image, to_mnist
from digitlab.errors import ImageError
from digitlab.evaluation.probabilities import ensemble_probabilities
from digitlab.nn.model_file import Answers, Model, load_model, require_model
from digitlab.spec import IMAGE_SHAPE

#: How many digits an answer lists as its contenders.
CONTENDERS = 3
#: The model that ships with digitlab (built by scripts/build-bundled-model.py).
BUNDLED_MODEL = resources.files("digitlab.serve") / "default-model.npz"
BUNDLED_NAME = "the bundled model"


def load_bundled_model() -> Model:
    """The model ``digitlab predict`` and ``digitlab serve`` use when given none."""
    with resources.as_file(BUNDLED_MODEL) as path:
        return load_model(path)


@dataclass(frozen=True)
class Candidate:
    """One digit an answer considers, with its probability."""

    digit: int
    probability: float


@dataclass(frozen=True)
class Prediction:
    """The answer for one image: the digit, the ten probabilities (calibrated when the
    model is), whether it is unsure (None: the model has no threshold to judge by),
    whether that is because the image is unlike any digit (None: the model keeps no
    digit features) and the 28x28 image the network saw."""

    digit: int
    probabilities: list[float]
    unsure: bool | None
    pixels: np.ndarray
    unlike_digits: bool | None = None

    @property
    def contenders(self) -> list[Candidate]:
        """The :data:`CONTENDERS` most probable digits, most probable first."""
        order = np.argsort(self.probabilities)[::-1][:CONTENDERS]
        return [Candidate(int(d), self.probabilities[d]) for d in order]


def unsure_below(models: list[Model]) -> float | None:
    """The top probability under which an answer is unsure: a single calibrated model's
    threshold, else None."""
    if len(models) == 1 and models[0].calibration is not None:
        return models[0].calibration.unsure_below
    return None


def predict_fields(models: Model | list[Model], fields: np.ndarray) -> list[Prediction]:
    """Classify rows of MNIST-form pixels (already 28x28, ink bright, in [0, 1])."""
    listed = list(models) if isinstance(models, list | tuple) else [models]
    models = [
        require_model(m, "the models argument", "load it with load_model(path) first")
        for m in listed
    ]
    rows = np.asarray(fields, dtype=np.float32).reshape(len(fields), -1)
    if len(models) == 1:
        answers = models[0].answers(rows)
    else:
        answers = Answers(ensemble_probabilities(models, rows), None, None, None)
    return [
        Prediction(
            digit=int(p.argmax()),
            probabilities=[float(v) for v in p],
            unsure=None if answers.unsure is None else bool(answers.unsure[i]),
            pixels=row.reshape(IMAGE_SHAPE),
            unlike_digits=None if answers.unlike_digits is None else bool(answers.unlike_digits[i]),
        )
        for i, (p, row) in enumerate(zip(answers.probabilities, rows, strict=True))
    ]


def predict_grayscale(models: Model | list[Model], images: list[np.ndarray]) -> list[Prediction]:
    """Preprocess each grayscale image into MNIST form, then classify them together
    (with one model, or an ensemble of several).  ``images`` is a list, even of one:
    a lone 2-D array would read as a list of its rows, so it is refused, naming the fix."""
    if isinstance(images, np.ndarray) and images.ndim == 2:
        raise ImageError(
            f"images is a list of 2-D images, and this is one image of shape {images.shape}: "
            "pass [image]"
        )
    images = list(images)  # a generator too
    if not images:
        return []
    return predict_fields(models, np.stack([to_mnist(image) for image in images]))


@dataclass(frozen=True)
class Unreadable:
    """An image file that gave no answer: not a readable picture, or no digit in it."""

    path: Path
    reason: str


def predict_files(models: Model | list[Model], paths: list[Path]) -> list[Prediction | Unreadable]:
    """An answer for each image file, in order; a file that cannot be read or holds no
    digit gets an :class:`Unreadable` in its place instead of stopping the others."""
    fields: dict[int, np.ndarray] = {}
    answers: list[Prediction | Unreadable | None] = []
    for index, path in enumerate(paths):
        try:
            fields[index] = to_mnist(load_image(path))
            answers.append(None)
        except ImageError as error:
            answers.append(Unreadable(Path(path), str(error)))
    if fields:
        predicted = predict_fields(models, np.stack(list(fields.values())))
        for index, prediction in zip(fields, predicted, strict=True):
            answers[index] = prediction
    return answers
