"""The mini-batch training loop.

Each epoch: shuffle the training set with the run's own seeded generator, take one
SGD step per mini-batch, then measure cost and accuracy on training, validation and
(optionally) test data.  Everything random -- initial weights, shuffling, dropout,
augmentation -- comes from that one generator, whose state is saved in every checkpoint
together with the parameters, the optimiser's state, the moving average of the weights
(when the spec keeps one) and the history.  So a run resumed from a checkpoint continues
exactly as if it had never stopped.

With a moving average of the weights (``spec.ema``), the averaged network is the run's
result: each epoch's costs and accuracies are measured on it, the best epoch's weights
kept are its, and so is the saved model.  The trained network's own accuracies are
recorded beside them (``raw_validation_accuracy``, ``raw_test_accuracy``, a second pass
over the validation and test sets each epoch), so the run also shows what the average
bought -- unless a plateau schedule or early stopping reads the average's accuracies,
for then the raw weights are no longer those of the same run without the average.  The
diagnostics still describe the network the optimiser moves, whose gradients they explain.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from digitlab.data.augment import AUGMENTATIONS, expand_by_shifts, random_warp
from digitlab.data.mnist import Dataset, Split, one_hot
from digitlab.data.outliers import non_digits
from digitlab.errors import DataError, DivergenceError, SpecError
from digitlab.evaluation.calibration import calibrated
from digitlab.nn.averaging import WeightAverage
from digitlab.nn.build import build_network
from digitlab.nn.model_file import MAX_PROVENANCE, Model, TrainingMetrics, require_model
from digitlab.nn.network import Network
from digitlab.nn.optimizers import make_optimizer
from digitlab.nn.parallel import (
    MIN_SHARDED_BATCH,
    SHARDS,
    ShardedGradients,
    available_threads,
    shardable,
)
from digitlab.nn.schedules import learning_rate
from digitlab.spec import Spec, check_digit_network
from digitlab.train.callbacks import (
    Callback,
    checked_callbacks,
    python_display,
    wants_progress,
)
from digitlab.train.checkpoint import Checkpoint, damaged, read_checkpoint, write_checkpoint
from digitlab.train.diagnostics import Diagnostics, Probe
from digitlab.train.history import EpochRecord, History

#: Training-set metrics are measured on at most this many images (enough for a curve).
TRAIN_METRIC_SIZE = 10_000
#: About how many progress updates an epoch sends to callbacks.
PROGRESS_UPDATES = 100
#: Dense networks train mini-batches up to this size with one BLAS thread: their matrix
#: products are too small to split across cores with profit (measured for [784,100,10] at
#: batch 10: 0.73 s per epoch with two threads, 0.44 s with one; batch 100 is the same
#: either way).  A convolution's products are hundreds of times larger and gain from two
#: threads at any batch (book-ch6-conv2 at batch 10: 1.38 against 1.62 ms per step).
SINGLE_THREAD_MAX_BATCH = 32


@dataclass
class TrainResult:
    """The model (weights of the best validation epoch, calibrated on the validation set),
    the history and why it stopped."""

    model: Model
    history: History
    stop_reason: str


def check_trainer_inputs(spec: object, data: object) -> None:
    """One clear sentence, rather than an AttributeError deep in the run, when a Trainer
    is handed something other than a Spec and a Dataset, or a dataset without the
    training and validation images every run needs."""
    if not isinstance(spec, Spec):
        raise TypeError(
            f"Trainer's first argument is a Spec (make_spec(...), or presets.get(NAME).spec), "
            f"not {type(spec).__name__}"
        )
    if not isinstance(data, Dataset):
        raise TypeError(
            "Trainer's second argument is a Dataset (load_mnist(), or Dataset(train=Split("
            f"images, labels), validation=Split(...), test=Split(...) or None)), not "
            f"{type(data).__name__}"
        )
    if len(data.train) == 0 or len(data.validation) == 0:
        empty = "training" if len(data.train) == 0 else "validation"
        raise DataError(
            f"the dataset has no {empty} images; a run needs both training images and "
            "validation images (on which each epoch is measured and the best one kept)"
        )


def start_from(network: Network, spec: Spec, model: object) -> None:
    """Load a trained model's weights into ``network``, just built from ``spec``; a
    one-line error when ``model`` is no model or its network is not the one ``spec``
    builds (other layers, or batch norm where the other has none)."""
    model = require_model(model, "Trainer(..., initial=model)", "load it with load_model first")
    ours = [array.shape for array in network.arrays()]
    theirs = [array.shape for array in model.network.arrays()]
    if model.spec.layer_plan() != spec.layer_plan() or ours != theirs:
        raise SpecError(
            f"initial: the model's network ({model.spec.layers}, batch_norm "
            f"{model.spec.batch_norm}) is not the one this spec builds ({spec.layers}, "
            f"batch_norm {spec.batch_norm}); start from the model's spec: "
            "model.spec.with_overrides(...)"
        )
    network.load_arrays(model.network.arrays())


def weights_of(model: Model) -> str:
    """Where a run that starts from ``model``'s weights started, in words, for the model
    it gives to record (:attr:`~digitlab.nn.model_file.Model.started_from`)."""
    trained = f"the weights of a model trained with `{model.describe().train_command}`"
    if model.trained_on is not None:
        trained += f" on {model.trained_on}"
    if model.started_from is not None:
        # bounded however many times a model is tuned: the line names one generation
        trained += ", which had itself started from another model's weights"
    # a spec of very many layers is cut short rather than refused when the model is saved
    if len(trained) > MAX_PROVENANCE:
        trained = trained[: MAX_PROVENANCE - 1] + "…"
    return trained


#: Why a run stopped before its last epoch, as :attr:`TrainResult.stop_reason` says it.
EARLY_STOP_REASON = "no improvement for {} epochs (early stop)"
FLOOR_REASON = "learning rate fell to its floor (plateau schedule)"


class Trainer:
    """Trains the network a spec describes on a dataset: ``Trainer(spec, data).run()``.

    ``callbacks`` watch the run (progress display, study pruning) and may end it
    (:class:`~digitlab.train.callbacks.Callback`'s ``stop_training``); ``checkpoint_path``
    makes every epoch resumable; ``use_test=False`` keeps the test set out of the
    history; ``initial``, a trained :class:`~digitlab.nn.model_file.Model` of the same
    network, starts the run from its weights instead of fresh ones (training a model
    further, or on other digits, as a second ``fit`` does in Keras; the optimiser and
    the schedule start afresh).  After every epoch the history records, besides costs
    and accuracies, diagnostics: gradient and weight norms per layer, saturated and dead
    units (see :mod:`digitlab.train.diagnostics`; they cost a forward and backward pass
    over at most 1,000 images, and ``diagnostics=False`` skips them).
    """

    def __init__(
        self,
        spec: Spec,
        data: Dataset,
        callbacks: Sequence[Callback] = (),
        checkpoint_path: Path | None = None,
        use_test: bool = True,
        diagnostics: bool = True,
        initial: Model | None = None,
    ) -> None:
        check_trainer_inputs(spec, data)
        inputs = data.train.images.shape[1]
        if spec.input_size != inputs:
            raise SpecError(
                f"layers: the first layer has {spec.input_size} neurons but each image has "
                f"{inputs} pixels"
            )
        check_digit_network(spec)
        self.spec = spec
        self.train = data.train.head(spec.train_size) if spec.train_size else data.train
        if spec.expand:
            self.train = Split(*expand_by_shifts(self.train.images, self.train.labels))
        self.validation = data.validation
        self.test = data.test if use_test and len(data.test) else None
        self.callbacks = checked_callbacks(callbacks)
        self.checkpoint_path = checkpoint_path
        self.rng = np.random.default_rng(spec.seed)
        self.network = build_network(spec, self.rng)
        self.started_from: str | None = None
        if initial is not None:
            start_from(self.network, spec, initial)
            self.started_from = weights_of(initial)
        self.optimizer = make_optimizer(
            spec.optimizer,
            self.network.params,
            spec.eta,
            spec.momentum,
            spec.lmbda,
            spec.l1,
            len(self.train),
        )
        self.sharded = shardable(self.network) and spec.batch_size >= MIN_SHARDED_BATCH
        threads = available_threads()
        self.gradients = (
            ShardedGradients(self.network, threads) if self.sharded else self.network.gradients
        )
        # The shards' threads share the optimiser's step too, each moving its share of the
        # parameters' elements (the same numbers as one thread moving them all).
        self.step = self._shared_step if self.sharded and threads >= SHARDS else self.optimizer.step
        self.average = (
            WeightAverage(self.network, build_network(spec, np.random.default_rng(0)), spec.ema)
            if spec.ema
            else None
        )
        # The raw weights are the same run without the average only when nothing in the
        # run reads the average's accuracies: a plateau schedule or early stopping would.
        self.measures_raw = (
            self.average is not None and spec.schedule != "plateau" and not spec.early_stop
        )
        self.history = History()
        self.best_arrays = [a.copy() for a in self.network.arrays()]
        self.train_targets = one_hot(self.train.labels)
        #: What training steps aim for: the one-hot targets, or their smoothed form.
        self.fit_targets = smooth_labels(self.train_targets, spec.label_smoothing)
        self.validation_targets = one_hot(self.validation.labels)
        self.test_targets = None if self.test is None else one_hot(self.test.labels)
        self.diagnostics = diagnostics
        self._probe: Probe | None = None

    @classmethod
    def resume(
        cls,
        checkpoint_path: Path,
        data: Dataset,
        callbacks: Sequence[Callback] = (),
        use_test: bool = True,
        diagnostics: bool = True,
    ) -> Trainer:
        """A trainer in exactly the state a checkpoint recorded."""
        state: Checkpoint = read_checkpoint(checkpoint_path)
        trainer = cls(state.spec, data, callbacks, checkpoint_path, use_test, diagnostics)
        try:
            trainer.network.load_arrays(state.params)
            shapes = [array.shape for array in trainer.network.arrays()]
            if [array.shape for array in state.best_params] != shapes:
                raise ValueError("its best weights do not fit the network")
            trainer.best_arrays = state.best_params
            trainer.optimizer.load_state(state.optimizer_state)
            if trainer.average is not None:
                trainer.average.load_state(state.average_state)
            trainer.rng.bit_generator.state = state.rng_state
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise damaged(checkpoint_path, exc) from None
        trainer.history = state.history
        trainer.started_from = state.started_from
        return trainer

    def run(self, progress: bool | None = None) -> TrainResult:
        """Train until the epochs run out, early stopping triggers or the schedule ends.

        ``progress`` shows a bar over the epochs with the latest validation accuracy
        (:func:`~digitlab.train.callbacks.python_display`).  By default it shows when the
        trainer has no callbacks and a person runs Python interactively (a Jupyter
        notebook, IPython, the ``python`` prompt); True or False forces it on or off.
        """
        callbacks = [*self.callbacks]
        for callback in callbacks:  # a callback reused from an earlier run starts afresh
            callback.stop_training = False
        if wants_progress(progress, has_callbacks=bool(callbacks)):
            callbacks.append(python_display())
        stop_reason = "completed all epochs"
        try:
            while len(self.history) < self.spec.epochs:
                if self._early_stopped():  # a resumed run that had stopped early
                    stop_reason = EARLY_STOP_REASON.format(self.spec.early_stop)
                    break
                done = len(self.history)
                eta = learning_rate(self.spec, done, self.history.validation_accuracies)
                if eta is None:
                    stop_reason = FLOOR_REASON
                    break
                self._run_epoch(done + 1, eta, callbacks)
                asked = [type(c).__name__ for c in callbacks if c.stop_training]
                if asked:
                    stop_reason = f"{', '.join(asked)} stopped it (stop_training)"
                    break
                if self._early_stopped():
                    stop_reason = EARLY_STOP_REASON.format(self.spec.early_stop)
                    break
        finally:
            for callback in callbacks:
                callback.on_train_end()
        return TrainResult(
            calibrated(self.best_model(), self.validation, self.train), self.history, stop_reason
        )

    def _early_stopped(self) -> bool:
        return bool(
            self.spec.early_stop and self.history.epochs_since_best() >= self.spec.early_stop
        )

    def finished(self) -> bool:
        """Whether :meth:`run` would train no further epoch: the epochs have run out, early
        stopping has triggered, or the plateau schedule's rate has reached its floor (a
        run resumed from the checkpoint of one that ended)."""
        done = len(self.history)
        return (
            done >= self.spec.epochs
            or self._early_stopped()
            or learning_rate(self.spec, done, self.history.validation_accuracies) is None
        )

    def diagnose(self) -> Diagnostics:
        """Diagnostics of the network's weights as they are now: before :meth:`run`, those
        of the initial weights (the book's chapter 5 measures the speed of learning there)."""
        if self._probe is None:
            self._probe = Probe(self.spec, self.train.images, self.train_targets)
        return self._probe.measure(self.network)

    def checkpoint(self) -> Checkpoint:
        """Everything needed to continue this run exactly where it is now."""
        return Checkpoint(
            spec=self.spec,
            params=self.network.arrays(),
            best_params=self.best_arrays,
            optimizer_state=self.optimizer.state(),
            rng_state=self.rng.bit_generator.state,
            history=self.history,
            average_state={} if self.average is None else self.average.state(),
            started_from=self.started_from,
        )

    def best_model(self) -> Model:
        """A model holding the parameters of the best validation epoch so far."""
        network = build_network(self.spec, np.random.default_rng(0))
        network.load_arrays(self.best_arrays)
        return Model(
            self.spec,
            network,
            summarise(self.history, len(self.train)),
            started_from=self.started_from,
        )

    def _run_epoch(self, epoch: int, eta: float, callbacks: list[Callback]) -> None:
        """Train epoch number ``epoch`` (counted from 1) at learning rate ``eta``."""
        self.optimizer.eta = eta
        started = time.perf_counter()
        spec = self.spec
        images, targets = self.train.images, self.fit_targets
        if spec.augment != "none":  # a fresh warp of every image, from the run's generator
            images = AUGMENTATIONS[spec.augment](images, self.rng)
        if spec.warps:
            images = random_warp(images, self.rng, spec.rotation, spec.zoom, spec.translation)
        if spec.outliers:
            images, targets = self._with_outliers(images, targets)
        size, batch = len(images), spec.batch_size
        batches = -(-size // batch)
        for callback in callbacks:
            callback.on_epoch_start(epoch, spec.epochs, batches)
        every = max(1, batches // PROGRESS_UPDATES)
        gradients, step = self.gradients, self.step
        average = self.average.update if self.average is not None else None
        scale = self.optimizer.gradient_scale  # eta for plain SGD: see nn.optimizers.SGD
        order = self.rng.permutation(size)
        threads = self._blas_threads()
        with np.errstate(over="ignore", invalid="ignore"):
            with threadpool_limits(threads, "blas"):
                for number, start in enumerate(range(0, size, batch), 1):
                    rows = order[start : start + batch]
                    gradients(images[rows], targets[rows], scale)
                    step()
                    if average is not None:
                        average()
                    if number % every == 0:
                        for callback in callbacks:
                            callback.on_batches(number)
            seconds = time.perf_counter() - started
            record = self._measure(epoch, eta, seconds)
        self.history.append(record)  # a diverged epoch too: its NaN cost is the record
        if not np.isfinite(record.train_cost):
            kept = (
                f"; the last good checkpoint is {self.checkpoint_path}"
                if self.checkpoint_path and epoch > 1
                else ""
            )
            raise DivergenceError(
                f"training diverged (cost became NaN/inf in epoch {epoch}): "
                f"eta = {eta:g} is probably too large{kept}"
            )
        if self.history.best is record:
            self.best_arrays = [a.copy() for a in self.measured_network.arrays()]
        if self.checkpoint_path:
            write_checkpoint(self.checkpoint_path, self.checkpoint())
        for callback in callbacks:
            callback.on_epoch_end(record)

    def _with_outliers(
        self, images: np.ndarray, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The epoch's digits followed by fresh generated non-digits whose target gives
        every class the same probability (outlier exposure)."""
        count = round(self.spec.outliers * len(images))
        extra = non_digits(count, self.train.images, self.rng)
        uniform = np.full((count, targets.shape[1]), 1 / targets.shape[1], dtype=targets.dtype)
        return np.concatenate([images, extra]), np.concatenate([targets, uniform])

    def _shared_step(self) -> None:
        """One optimiser step, its elements shared among the shards' threads."""
        self.gradients.workers.run(self.optimizer.step_parts(SHARDS))

    def _blas_threads(self) -> int | None:
        """The BLAS thread limit for training steps (None: the BLAS's own setting)."""
        if self.sharded:
            return 1  # the shards' threads take the cores
        if self.network.convolutional or self.spec.batch_size > SINGLE_THREAD_MAX_BATCH:
            return None
        return 1

    @property
    def measured_network(self) -> Network:
        """The network each epoch measures and the run keeps: the moving average of the
        weights when the spec keeps one, else the trained network itself."""
        return self.network if self.average is None else self.average.network

    def _measure(self, epoch: int, eta: float, seconds: float) -> EpochRecord:
        started = time.perf_counter()
        net = self.measured_network
        sample = self.train.head(TRAIN_METRIC_SIZE)
        train_cost, train_accuracy = net.evaluate(sample.images, self.train_targets[: len(sample)])
        validation_cost, validation_accuracy = net.evaluate(
            self.validation.images, self.validation_targets
        )
        test_accuracy = None
        if self.test is not None:
            test_accuracy = net.evaluate(self.test.images, self.test_targets)[1]
        raw_validation_accuracy = raw_test_accuracy = None
        if self.measures_raw:
            raw_validation_accuracy = self.network.evaluate(
                self.validation.images, self.validation_targets
            )[1]
            if self.test is not None:
                raw_test_accuracy = self.network.evaluate(self.test.images, self.test_targets)[1]
        diagnostics = self.diagnose() if self.diagnostics else None
        return EpochRecord(
            epoch=epoch,
            eta=eta,
            train_cost=train_cost + self.optimizer.penalty(net.params),
            train_accuracy=train_accuracy,
            validation_cost=validation_cost,
            validation_accuracy=validation_accuracy,
            test_accuracy=test_accuracy,
            seconds=seconds,
            evaluation_seconds=time.perf_counter() - started,
            diagnostics=diagnostics,
            raw_validation_accuracy=raw_validation_accuracy,
            raw_test_accuracy=raw_test_accuracy,
        )


def smooth_labels(targets: np.ndarray, epsilon: float) -> np.ndarray:
    """Label smoothing (Szegedy et al., 2016): ``(1 - epsilon) * y + epsilon / classes``.
    The network is asked for a little doubt about every digit instead of certainty,
    which keeps its logits from growing without bound; ``epsilon = 0`` gives back
    ``targets`` themselves."""
    if not epsilon:
        return targets
    classes = targets.shape[1]
    return (targets * (1 - epsilon) + epsilon / classes).astype(targets.dtype)


def summarise(history: History, train_size: int) -> TrainingMetrics:
    """The headline numbers a model file and ``--json`` output record."""
    best, last = history.best, history[-1] if history else None
    if best is None:
        return TrainingMetrics()
    return TrainingMetrics(
        epochs_run=len(history),
        train_size=train_size,
        best_epoch=best.epoch,
        validation_accuracy=best.validation_accuracy,
        test_accuracy=best.test_accuracy,
        final_validation_accuracy=last.validation_accuracy,
        final_test_accuracy=last.test_accuracy,
        train_seconds=sum(r.seconds for r in history),
    )
