"""Predicting digits for users' own images with a saved model (CLI and web page)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitlab.data.images import to_mnist
from digitlab.nn.model_file import Model


@dataclass(frozen=True)
class Prediction:
    digit: int
    probabilities: list[float]
    pixels: np.ndarray  # the 28x28 image the network saw


def class_probabilities(model: Model, rows: np.ndarray) -> np.ndarray:
    """Ten probabilities per row of pixels.

    Softmax outputs already are probabilities.  Other outputs (the book's sigmoid
    neurons) are clipped at zero and normalised to sum to one, which keeps their order
    and makes them comparable on one scale.
    """
    outputs = model.network.probabilities(np.asarray(rows, dtype=np.float32))
    if model.spec.resolved_output_activation == "softmax":
        return outputs
    positive = np.maximum(outputs, 0)
    totals = positive.sum(axis=1, keepdims=True)
    uniform = np.full_like(positive, 1 / positive.shape[1])
    return np.divide(positive, totals, out=uniform, where=totals > 0)


def ensemble_probabilities(models: list[Model], rows: np.ndarray) -> np.ndarray:
    """The models' class probabilities, averaged: an ensemble votes with its confidence."""
    return np.mean([class_probabilities(model, rows) for model in models], axis=0)


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
