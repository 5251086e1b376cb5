"""digitlab as a scikit-learn classifier: ``DigitClassifier().fit(X, y).predict(X)``.

So a digitlab network can sit in a ``Pipeline``, be tuned by ``GridSearchCV`` and be
scored by ``cross_val_score`` like any scikit-learn model.  The constructor's
parameters are the spec's fields, with the spec's defaults (``get_params`` is the spec,
as the design has it), plus ``validation_fraction`` and ``verbose``.

What it reads and answers:

* ``X``: MNIST-like digits, (n, 784) rows or (n, 28, 28) images, grey levels 0-255 or
  floats in [0, 1], checked and scaled by :func:`digitlab.inputs.pixel_rows`.  Every
  digitlab network reads the 784 pixels of a 28x28 image, so ``n_features_in_`` is
  always 784 and arrays of other widths are refused (an
  :class:`~digitlab.errors.ArrayError`, which is also a ``ValueError``).
* ``y``: any labels of at most ten classes -- the networks have ten outputs.
  ``classes_`` holds them sorted.  Labels that are digits 0-9 (all ten or some) train
  output ``d`` for digit ``d``, as in every model file, so ``model_`` answers digits
  itself; other labels train output ``i`` for ``classes_[i]``, and ``model_``'s answers
  are then those positions, not digits.  ``predict_proba`` gives one column per class:
  the network's probabilities of their outputs, renormalised.

Named columns (a pandas ``DataFrame``) are kept as ``feature_names_in_``, as
scikit-learn's own estimators keep them: ``predict`` refuses other names, and warns
when handed none.

``fit`` holds back a seeded ``validation_fraction`` of the training data: the trainer
keeps the weights of the epoch that did best on it, and fits the calibration there
(:class:`digitlab.train.trainer.Trainer`).  The trained model is ``model_`` (a
:class:`~digitlab.nn.model_file.Model`, savable with ``save_model``) and its epochs
``history_``.

scikit-learn is an optional dependency: ``pip install 'digitlab[sklearn]'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import (
        check_consistent_length,
        check_is_fitted,
        column_or_1d,
        validate_data,
    )
except ImportError:
    raise ImportError(
        "digitlab.interop.sklearn needs scikit-learn: pip install 'digitlab[sklearn]'"
    ) from None

from digitlab.data.mnist import Dataset, Split
from digitlab.errors import ArrayError, SpecError
from digitlab.inputs import pixel_rows
from digitlab.nn.model_file import normalised
from digitlab.spec import (
    DIGITS,
    AugmentName,
    CostName,
    HiddenActivation,
    InitName,
    OptimizerName,
    OutputActivation,
    ScheduleName,
    Spec,
    make_spec,
)
from digitlab.train.trainer import Trainer

#: Where the constructor's defaults come from: a spec with every field at its default.
DEFAULT = Spec()
#: The share of the training data ``fit`` holds back for validation, by default.
VALIDATION_FRACTION = 0.1


class DigitClassifier(ClassifierMixin, BaseEstimator):
    """A digitlab network as a scikit-learn classifier of MNIST-like digits.

    The parameters are the fields of :class:`digitlab.spec.Spec`, with its defaults
    (``layers`` as a tuple: 784 inputs first and 10 outputs last, or layer texts such as
    ``("conv:20:5", "pool:2", "dense:100", "dense:10")``; ``eta`` None for the
    optimizer's own default, 0.5 or Adam's 0.001); ``validation_fraction``,
    the share of the training data held back to choose the best epoch and calibrate; and
    ``verbose``, whether ``fit`` shows a progress bar over the epochs (off by default, as
    a grid search fits many times).
    """

    def __init__(
        self,
        layers: Sequence[int] | Sequence[str] = tuple(DEFAULT.layers),
        activation: HiddenActivation = DEFAULT.activation,
        output_activation: OutputActivation | None = DEFAULT.output_activation,
        cost: CostName = DEFAULT.cost,
        init: InitName = DEFAULT.init,
        optimizer: OptimizerName = DEFAULT.optimizer,
        eta: float | None = None,
        momentum: float = DEFAULT.momentum,
        lmbda: float = DEFAULT.lmbda,
        l1: float = DEFAULT.l1,
        dropout: float = DEFAULT.dropout,
        batch_norm: bool = DEFAULT.batch_norm,
        schedule: ScheduleName = DEFAULT.schedule,
        step_size: int = DEFAULT.step_size,
        gamma: float = DEFAULT.gamma,
        patience: int = DEFAULT.patience,
        min_eta_ratio: float = DEFAULT.min_eta_ratio,
        warmup_epochs: int = DEFAULT.warmup_epochs,
        epochs: int = DEFAULT.epochs,
        batch_size: int = DEFAULT.batch_size,
        early_stop: int | None = DEFAULT.early_stop,
        train_size: int | None = DEFAULT.train_size,
        expand: bool = DEFAULT.expand,
        augment: AugmentName = DEFAULT.augment,
        outliers: float = DEFAULT.outliers,
        rotation: float = DEFAULT.rotation,
        zoom: float = DEFAULT.zoom,
        translation: float = DEFAULT.translation,
        label_smoothing: float = DEFAULT.label_smoothing,
        ema: float = DEFAULT.ema,
        seed: int = DEFAULT.seed,
        validation_fraction: float = VALIDATION_FRACTION,
        verbose: bool = False,
    ) -> None:
        self.layers = layers
        self.activation = activation
        self.output_activation = output_activation
        self.cost = cost
        self.init = init
        self.optimizer = optimizer
        self.eta = eta
        self.momentum = momentum
        self.lmbda = lmbda
        self.l1 = l1
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.schedule = schedule
        self.step_size = step_size
        self.gamma = gamma
        self.patience = patience
        self.min_eta_ratio = min_eta_ratio
        self.warmup_epochs = warmup_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.early_stop = early_stop
        self.train_size = train_size
        self.expand = expand
        self.augment = augment
        self.outliers = outliers
        self.rotation = rotation
        self.zoom = zoom
        self.translation = translation
        self.label_smoothing = label_smoothing
        self.ema = ema
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.verbose = verbose

    def spec(self) -> Spec:
        """The spec these parameters describe (a SpecError if they describe none)."""
        fields: dict[str, Any] = {name: getattr(self, name) for name in Spec.model_fields}
        if self.eta is None:  # the optimizer's own: see digitlab.spec.ADAM_ETA
            del fields["eta"]
        if isinstance(self.layers, str):
            raise SpecError(
                f"{type(self).__name__}: layers is a tuple, e.g. (784, 30, 10) or "
                f"('conv:20:5', 'pool:2', 'dense:10'), not the text {self.layers!r}"
            )
        fields["layers"] = list(self.layers)
        return make_spec(fields, source=type(self).__name__)

    def fit(self, X: Any, y: Any) -> DigitClassifier:
        """Train a network of this spec on ``X`` and ``y``, holding back a seeded
        ``validation_fraction`` of them to choose the best epoch and calibrate."""
        spec = self.spec()
        labels = column_or_1d(y, warn=True)
        if labels.dtype.kind in "fc" and not np.isfinite(labels).all():
            raise ArrayError("y holds NaN or infinite values; labels must be classes")
        check_classification_targets(labels)
        fitted_names = _column_names_of(self)
        _check_column_names(self, X, fitting=True)  # bad names fail before any training
        try:
            self._fit_checked(X, labels, spec)
        except BaseException:
            _column_names_of(self, restore=fitted_names)  # still those of the fitted model
            raise
        return self

    def _fit_checked(self, X: Any, labels: np.ndarray, spec: Spec) -> None:
        """The fit, once the labels and column names are checked: the pixels, the
        classes and the training; the fitted attributes are set only at its end."""
        rows = pixel_rows(X)
        check_consistent_length(rows, labels)
        classes, targets = np.unique(labels, return_inverse=True)
        if len(classes) > DIGITS:
            raise ArrayError(f"y has {len(classes)} classes; a digitlab network tells {DIGITS}")
        outputs = _digit_outputs(classes)
        if outputs is not None:  # digits: each trains its own output, as in model files
            targets = outputs[targets]
        data = self._held_out(rows, targets, spec.seed)
        trainer = Trainer(spec, data, use_test=False, diagnostics=False)
        result = trainer.run(progress=self.verbose)
        self.classes_ = classes
        self.outputs_ = np.arange(len(classes)) if outputs is None else outputs
        self.n_features_in_ = rows.shape[1]
        self.model_ = replace(
            result.model,
            trained_on=f"{len(data.train):,} images given to DigitClassifier.fit, and "
            f"{len(data.validation):,} more held back to choose the epoch",
        )
        self.history_ = result.history

    def _held_out(self, rows: np.ndarray, targets: np.ndarray, seed: int) -> Dataset:
        """Training and validation splits: a seeded ``validation_fraction`` held back."""
        if not 0 < self.validation_fraction < 1:
            raise SpecError(
                f"{type(self).__name__}: validation_fraction must be between 0 and 1, "
                f"not {self.validation_fraction}"
            )
        held = max(1, round(self.validation_fraction * len(rows)))
        if held >= len(rows):
            raise ArrayError(
                f"{len(rows)} images are too few to hold back a validation_fraction of "
                f"{self.validation_fraction} and train on the rest"
            )
        order = np.random.default_rng(seed).permutation(len(rows))
        train, validation = order[held:], order[:held]
        return Dataset(
            train=Split(rows[train], targets[train]),
            validation=Split(rows[validation], targets[validation]),
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        """One probability per class in ``classes_`` for each image, calibrated."""
        check_is_fitted(self)
        _check_column_names(self, X, fitting=False)
        return normalised(self.model_.predict_proba(X)[:, self.outputs_])

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of ``classes_`` for each image."""
        best = self.predict_proba(X).argmax(axis=1)
        return self.classes_[best]

    def __sklearn_tags__(self) -> Any:
        """Pixels are never negative: scikit-learn's own checks then give none."""
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags


#: What ``fit`` records of the columns it was given (scikit-learn's names).
_COLUMN_ATTRIBUTES = ("feature_names_in_", "n_features_in_")


def _column_names_of(
    estimator: DigitClassifier, restore: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The column attributes ``estimator`` has now; with ``restore``, set back to those
    (a fit that failed after recording new ones leaves the fitted model's own)."""
    if restore is not None:
        for name in _COLUMN_ATTRIBUTES:
            if name in restore:
                setattr(estimator, name, restore[name])
            elif hasattr(estimator, name):
                delattr(estimator, name)
    names = [name for name in _COLUMN_ATTRIBUTES if hasattr(estimator, name)]
    return {name: getattr(estimator, name) for name in names}


def _check_column_names(estimator: DigitClassifier, X: Any, fitting: bool) -> None:
    """scikit-learn's habit for named columns (a pandas DataFrame): ``fit`` keeps them
    as ``feature_names_in_``, and ``predict`` refuses other names and warns of names
    missing, or present where ``fit`` had none.  Only the names: the pixels are checked by
    :func:`~digitlab.inputs.pixel_rows`, which also takes (n, 28, 28) images, whose
    second axis is not the feature count scikit-learn would read."""
    validate_data(estimator, X, reset=fitting, skip_check_array=True, ensure_2d=False)


def _digit_outputs(classes: np.ndarray) -> np.ndarray | None:
    """The network output of each class when the classes are digits 0-9 (whole numbers,
    of any numeric type), else None."""
    if classes.dtype.kind not in "iuf":
        return None
    digits = classes.astype(np.int64)
    if np.array_equal(digits, classes) and digits.min() >= 0 and digits.max() < DIGITS:
        return digits
    return None
