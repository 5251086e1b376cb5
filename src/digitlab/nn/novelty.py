"""How unlike every digit an image looks: the second kind of doubt.

A network's top probability says how torn it is *between digits*.  It is a poor judge of
an image that is no digit at all: the output layer must share its probability among the
ten digits, and a letter or a scribble can land firmly on one of them.  The
convolutions see more.  Each digit's features -- what the convolutional layers hand to
the dense ones (their last output, after pooling and activation), each channel averaged
over the image's positions -- gather around a centre of their own,
and an image whose features lie far from all ten centres is unlike anything the network
was trained on, however its probabilities fall.

"Far" is measured as Lee et al. (2018, "A simple unified framework for detecting
out-of-distribution samples") measure it: each digit's features are taken as a Gaussian
cloud, all ten with one shared covariance fitted on training digits, and an image's
distance is its squared Mahalanobis distance to the nearest digit's centre -- distance
counted in each direction relative to how much digits themselves vary in it, so a step
in a direction where digits never vary counts for much.  The threshold that turns the
distance into "unlike any digit" is fitted on validation digits with the unsure
threshold (:mod:`digitlab.evaluation.calibration`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitlab.errors import ModelFileError

#: Training images used to fit the digits' centres and covariance: plenty for 10 x c
#: means and a c x c covariance at the few dozen channels a convolutional layer has.
FIT_IMAGES = 20_000
#: The covariance's smallest eigenvalues are raised to this share of its largest, so a
#: direction in which no training digit varies cannot make distances explode.
EIGENVALUE_FLOOR = 1e-6
#: More channels than any network here has: a stored model claiming more is damaged.
MAX_CHANNELS = 4_096


@dataclass(frozen=True, eq=False)
class DigitFeatures:
    """The ten digits' feature centres and the shared covariance, as a whitening.

    ``whitening`` (c x c) maps features to a space in which the shared covariance is the
    identity; ``centres`` (10 x c) are the digits' mean features, already mapped.  The
    squared Mahalanobis distance is then the squared Euclidean distance there.
    """

    centres: np.ndarray
    whitening: np.ndarray

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DigitFeatures)
            and np.array_equal(self.centres, other.centres)
            and np.array_equal(self.whitening, other.whitening)
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value, and arrays are mutable

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray) -> DigitFeatures:
        """Fit on training digits' features (n x c) and their labels (each digit present)."""
        features = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels)
        missing = [d for d in range(10) if not (labels == d).any()]
        if missing:
            raise ValueError(f"no training image of digit {missing[0]} to fit its centre")
        means = np.stack([features[labels == d].mean(axis=0) for d in range(10)])
        residuals = features - means[labels]
        covariance = residuals.T @ residuals / len(features)
        values, vectors = np.linalg.eigh(covariance)
        values = np.maximum(values, EIGENVALUE_FLOOR * max(values.max(), 1e-12))
        whitening = vectors / np.sqrt(values)
        return cls((means @ whitening).astype(np.float32), whitening.astype(np.float32))

    @property
    def channels(self) -> int:
        return self.whitening.shape[0]

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Each row's squared Mahalanobis distance to the nearest digit's centre."""
        mapped = np.asarray(features, dtype=np.float32) @ self.whitening
        squared = (
            (mapped**2).sum(axis=1, keepdims=True)
            - 2 * mapped @ self.centres.T
            + (self.centres**2).sum(axis=1)
        )
        return np.maximum(squared.min(axis=1), 0)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays a model file stores, by name."""
        return {"centres": self.centres, "whitening": self.whitening}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], where: str) -> DigitFeatures:
        """Rebuild from stored arrays, refusing any of the wrong type, shape or values."""
        centres, whitening = arrays.get("centres"), arrays.get("whitening")
        if centres is None or whitening is None:
            raise ModelFileError(f"{where} has a damaged digit-feature record (arrays missing)")
        damaged = ModelFileError(f"{where} has a damaged digit-feature record")
        sane = (
            centres.dtype.kind == "f"
            and whitening.dtype.kind == "f"
            and whitening.ndim == 2
            and 0 < whitening.shape[0] == whitening.shape[1] <= MAX_CHANNELS
            and centres.shape == (10, whitening.shape[0])
        )
        if not sane:
            raise damaged
        # finite as float32, the type they are used in (1e300 in float64 is not)
        with np.errstate(over="ignore"):
            centres, whitening = centres.astype(np.float32), whitening.astype(np.float32)
        if not (np.isfinite(centres).all() and np.isfinite(whitening).all()):
            raise damaged
        return cls(centres, whitening)
