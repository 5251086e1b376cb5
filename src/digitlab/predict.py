"""Predicting digits for users' own images with a saved model (CLI and web page)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitlab.data.images import to_mnist
from digitlab.evaluation.probabilities import ensemble_probabilities
from digitlab.nn.model_file import Model


@dataclass(frozen=True)
class Prediction:
    digit: int
    probabilities: list[float]
    pixels: np.ndarray  # the 28x28 image the network saw


def predict_grayscale(models: Model | list[Model], images: list[np.ndarray]) -> list[Prediction]:
    """Preprocess each grayscale image into MNIST form, then classify them together
    (with one model, or an ensemble of several)."""
    models = models if isinstance(models, list) else [models]
    fields = [to_mnist(image) for image in images]
    probabilities = ensemble_probabilities(models, np.stack([f.reshape(-1) for f in fields]))
    return [
        Prediction(int(p.argmax()), [float(v) for v in p], field)
        for p, field in zip(probabilities, fields, strict=True)
    ]
