"""The Python side: checked inputs, Model.predict/predict_proba/score/summary,
History.history and to_pandas, and ``digitlab info``."""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.sparse import csr_matrix

from digitlab.data.mnist import Dataset, Split
from digitlab.errors import ArrayError, DataError, DigitlabError, ModelFileError, SpecError
from digitlab.evaluation.calibration import calibrated
from digitlab.inputs import digit_labels, pixel_rows
from digitlab.nn.build import build_network
from digitlab.nn.model_file import (
    FORMAT_VERSION,
    HEADER_KEY,
    Model,
    TrainingMetrics,
    load_model,
    save_model,
)
from digitlab.predict import load_bundled_model
from digitlab.spec import make_spec
from digitlab.train.callbacks import Callback
from digitlab.train.history import KERAS_NAMES, EpochRecord, History
from digitlab.train.trainer import Trainer

from .interrupt import StopAfter
from .test_cli import assert_one_line_error

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundled() -> Model:
    return load_bundled_model()


@pytest.fixture(scope="module")
def digits(mnist) -> tuple[np.ndarray, np.ndarray]:
    """500 test digits as the IDX files hold them: uint8 grey levels, 28x28."""
    images = np.rint(mnist.test.images[:500] * 255).astype(np.uint8).reshape(-1, 28, 28)
    return images, mnist.test.labels[:500]


# -- inputs -------------------------------------------------------------------------


def test_every_accepted_form_gives_the_same_rows() -> None:
    grey = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    expected = grey.reshape(3, 784).astype(np.float32) / 255
    forms = [
        grey,
        grey.reshape(3, 784),
        grey.astype(np.int64),
        grey.astype(np.float64),  # 0-255 as floats: scaled too
        grey.astype(np.float32) / 255,  # already in [0, 1]: kept
        grey.tolist(),
        grey.reshape(3, 28, 28, 1),  # Keras' channels-last grey images
        grey.reshape(3, 1, 28, 28),  # PyTorch's channels-first ones
    ]
    for form in forms:
        rows = pixel_rows(form)
        assert rows.dtype == np.float32 and rows.shape == (3, 784) and rows.flags.c_contiguous
        np.testing.assert_allclose(rows, expected, rtol=1e-6)
    for single in (grey[0], grey[0].reshape(784), grey[0].reshape(28, 28, 1), grey[:1]):
        np.testing.assert_allclose(pixel_rows(single), expected[:1], rtol=1e-6)


def test_scale_is_decided_for_the_whole_array() -> None:
    """Floats above 1 make the array 0-255 data, a blank image among them too; an integer
    array always is 0-255 data."""
    images = np.zeros((3, 784))
    images[0, 0], images[1, 0] = 3.0, 200.0  # and image 2 is blank
    np.testing.assert_allclose(pixel_rows(images)[:, 0], [3 / 255, 200 / 255, 0], rtol=1e-6)
    assert pixel_rows(np.full(784, 2, dtype=np.uint8)).max() == pytest.approx(2 / 255)
    with pytest.warns(UserWarning, match="mostly light"):  # and white all over
        assert pixel_rows(np.ones(784)).max() == 1.0


@pytest.mark.parametrize(
    ("peaks", "fragment"),
    [
        ([0.5, 200.0], "two scales: 1 of 2 images lie within [0, 1] while others reach 200"),
        ([1.0, 0.9, 255.0], "two scales: 2 of 3 images"),
        ([1.02, 0.9], "these reach 1.02, just past 1: clip them to [0, 1]"),
        ([2.0], "these reach 2, just past 1"),
    ],
)
def test_floats_on_two_scales_are_refused(peaks: list[float], fragment: str) -> None:
    """A [0, 1] image among 0-255 ones, or a scaler's output a little past 1, would be
    read as grey levels and so as black: the array is refused, not half misread."""
    images = np.zeros((len(peaks), 784))
    images[:, 0] = peaks
    with pytest.raises(ArrayError, match=re.escape(fragment)):
        pixel_rows(images)


@pytest.mark.parametrize(
    ("images", "fragment"),
    [
        (np.zeros((3, 5)), "got (3, 5)"),
        (np.zeros((2, 28, 27)), "got (2, 28, 27)"),
        (np.zeros((784, 1)), "got (784, 1)"),
        (np.zeros((2, 2, 28, 28)), "got (2, 2, 28, 28)"),
        (np.zeros((2, 1, 28, 28, 1)), "got (2, 1, 28, 28, 1)"),
        (np.zeros((2, 28, 28, 3)), "got (2, 28, 28, 3)"),
        (np.ones((2, 784), dtype=np.uint8), "look binarised"),
        (np.float64(3.0), "got ()"),
        (np.zeros((0, 784)), "empty"),
        (np.zeros(0), "empty"),
        ([], "empty"),
        (np.full((2, 784), np.nan), "1568 are NaN or infinite"),
        (np.r_[np.inf, np.zeros(783)], "1 is NaN or infinite"),
        (np.r_[-1.0, np.zeros(783)], "from -1 to 0"),
        (np.r_[256, np.zeros(783, dtype=int)], "from 0 to 256"),
        (np.zeros(784, dtype=bool), "not bool"),
        (np.zeros(784, dtype=complex), "not complex128"),
        (np.array(["0"] * 784), "not <U1"),
        (np.zeros(784, dtype=object), "not object"),
        ([[0] * 784, [0] * 783], "must be an array of shape"),
        (csr_matrix(np.zeros((2, 784))), "sparse"),
    ],
)
def test_bad_images_are_one_clear_error(images, fragment: str) -> None:
    with pytest.raises(ArrayError) as caught:
        pixel_rows(images)
    message = str(caught.value)
    assert fragment in message and "\n" not in message
    assert isinstance(caught.value, DigitlabError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ([1, 2], "got shape (2,)"),
        ([[1], [2], [3]], "got shape (3, 1)"),
        ([1, 2, 10], "found 10"),
        ([1, -1, 2], "found -1"),
        ([1, 2.5, 2], "found 2.5"),
        ([1, np.nan, 2], "found nan"),
        (["1", "2", "3"], "not <U1"),
    ],
)
def test_bad_labels_are_one_clear_error(labels, fragment: str) -> None:
    with pytest.raises(ArrayError) as caught:
        digit_labels(labels, 3)
    assert fragment in str(caught.value)


def test_one_hot_labels_are_read_as_their_digits() -> None:
    """Keras' to_categorical gives one row of ten per image."""
    digits = np.array([3, 0, 9])
    one_hot = np.eye(10, dtype=np.float32)[digits]
    np.testing.assert_array_equal(digit_labels(one_hot, 3), digits)
    np.testing.assert_array_equal(digit_labels(one_hot.astype(bool), 3), digits)
    two_ones = one_hot.copy()
    two_ones[0, 5] = 1
    smoothed = one_hot * 0.9 + 0.01
    for not_one_hot in (two_ones, smoothed, np.zeros((3, 10))):
        with pytest.raises(ArrayError, match="got shape"):
            digit_labels(not_one_hot, 3)


def test_dark_ink_on_light_paper_is_warned_of(mnist) -> None:
    """The networks read light ink on black; inverted digits would get confident
    nonsense, so they are named, and MNIST's own digits are not."""
    digits = np.rint(mnist.test.images[:100] * 255).astype(np.uint8)
    with pytest.warns(UserWarning, match=r"mostly light \(mean pixel 0\.8\d\).*255 - x"):
        pixel_rows(255 - digits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixel_rows(digits)
        pixel_rows(np.random.default_rng(0).random((100, 784)))  # noise: not light


def test_labels_may_be_whole_floats() -> None:
    labels = digit_labels(np.array([0.0, 9.0, 3.0]), 3)
    assert labels.dtype == np.int64 and labels.tolist() == [0, 9, 3]


def test_a_split_built_by_hand_is_checked_and_scaled(digits) -> None:
    """Grey levels 0-255 as 28x28 images become rows in [0, 1]; labels that are not
    digits, or pixels that are not numbers, are refused before any training."""
    images, labels = digits
    split = Split(images, labels.astype(np.float64))
    assert split.images.dtype == np.float32 and split.images.shape == (500, 784)
    np.testing.assert_allclose(split.images, images.reshape(500, 784) / 255, rtol=1e-6)
    assert split.labels.dtype == np.int64 and split.labels.tolist() == labels.tolist()
    assert len(Split(np.zeros((0, 784)), np.zeros(0))) == 0  # a test set left unmeasured
    with pytest.raises(ArrayError, match="found 10"):
        Split(images[:3], [1, 10, 2])
    with pytest.raises(ArrayError, match="labels must be 2 digits"):
        Split(images[:2], labels[:3])
    with pytest.raises(ArrayError, match="NaN"):
        Split(np.full((2, 784), np.nan), [1, 2])
    with pytest.raises(ArrayError, match="must be an array of shape"):
        Split([[0] * 784, [0] * 783], [1, 2])


def test_a_trainer_handed_the_wrong_things_says_what_it_takes(mnist) -> None:
    from digitlab import presets

    small = Dataset(mnist.train.head(100), mnist.validation.head(50), mnist.test.head(0), (28, 28))
    spec = presets.get("book-ch1").spec
    with pytest.raises(TypeError, match=r"first argument is a Spec .* not Preset"):
        Trainer(presets.get("book-ch1"), small)
    with pytest.raises(TypeError, match=r"second argument is a Dataset .* not tuple"):
        Trainer(spec, (mnist.train.images, mnist.train.labels))
    unmeasured = Trainer(spec.with_overrides(epochs=1, train_size=100), small).run()
    assert unmeasured.history[-1].test_accuracy is None  # an empty test set: none
    no_validation = Dataset(small.train, small.test, small.test, (28, 28))
    with pytest.raises(DataError, match="no validation images"):
        Trainer(spec, no_validation)
    with pytest.raises(DataError, match="no training images"):
        Trainer(spec, Dataset(small.test, small.validation, small.test, (28, 28)))


def test_a_dataset_built_by_hand_is_checked_and_needs_no_test_split(mnist) -> None:
    train, validation = mnist.train.head(100), mnist.validation.head(50)
    without_test = Dataset(train, validation)  # test None: a run that measures none
    assert len(without_test.test) == 0 and without_test.image_shape == (28, 28)
    spec = make_spec({"layers": [784, 10], "epochs": 1})
    assert Trainer(spec, Dataset(train, validation, None)).run().history[-1].test_accuracy is None
    with pytest.raises(TypeError, match=r"Dataset's validation is a Split.* not tuple"):
        Dataset(train, (validation.images, validation.labels))
    with pytest.raises(DataError, match=r"reads 28x28 images, not \(99, 99\)"):
        Dataset(train, validation, None, (99, 99))


class Stopper(Callback):
    """Stops the run once validation accuracy passes a bar, as a Keras callback would."""

    def __init__(self, bar: float) -> None:
        self.bar, self.seen = bar, 0

    def on_epoch_end(self, record) -> None:
        self.seen += 1
        self.stop_training = record.validation_accuracy > self.bar


def test_callbacks_are_checked_and_may_stop_the_run(mnist) -> None:
    small = mnist.head(1000, 200, 0)
    spec = make_spec({"layers": [784, 30, 10], "epochs": 5, "eta": 3.0, "cost": "quadratic"})
    with pytest.raises(TypeError, match=r"Callback objects .* not function"):
        Trainer(spec, small, callbacks=[lambda record: None])
    stopper = Stopper(0.5)
    result = Trainer(spec, small, callbacks=stopper).run()  # one alone: a list of one
    assert stopper.seen == len(result.history) < 5
    assert result.stop_reason == "Stopper stopped it (stop_training)"
    assert result.model.metrics.epochs_run == len(result.history)
    assert Trainer(spec.with_overrides(epochs=1), small, callbacks=None).callbacks == []

    class AtEpochTwo(Callback):  # sets the flag once and never clears it
        def on_epoch_end(self, record) -> None:
            if record.epoch == 2:
                self.stop_training = True

    once = AtEpochTwo()
    for _ in range(2):  # reused, it starts afresh: Keras clears the flag at each fit
        assert len(Trainer(spec, small, callbacks=[once]).run().history) == 2


def test_save_and_export_take_a_model_and_say_so(bundled: Model, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="takes a digitlab Model, not PosixPath: the path comes"):
        save_model(bundled, tmp_path / "m.npz")  # the arguments the other way round
    with pytest.raises(TypeError, match=r"save_model\(path, model\) takes a digitlab Model"):
        save_model(tmp_path / "m.npz", {"weights": []})
    assert not (tmp_path / "m.npz").exists()
    bundled.save(str(tmp_path / "m.npz"))  # Keras' habit
    assert load_model(tmp_path / "m.npz").predict(np.zeros(784)).shape == (1,)


def test_a_model_is_never_saved_over_a_file_of_another_kind(bundled: Model, mnist, tmp_path):
    """A slip of the name must not turn a picture of someone's digits into a model file;
    a model saved again over itself is, of course, written."""
    picture = tmp_path / "my-digits.png"
    Image.new("L", (28, 28), 200).save(picture)
    kept = picture.read_bytes()
    with pytest.raises(ModelFileError, match="other than a digitlab model file, and is left"):
        bundled.save(picture)
    assert picture.read_bytes() == kept
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelFileError, match="is a folder"):
        save_model(tmp_path / "folder", bundled)
    os.mkfifo(tmp_path / "pipe.npz")  # refused at once, not waited on for a writer
    with pytest.raises(ModelFileError, match="is not a regular file"):
        bundled.save(tmp_path / "pipe.npz")
    checkpoint = tmp_path / "run.checkpoint.npz"  # a digitlab file, of the other kind
    with pytest.raises(KeyboardInterrupt):
        Trainer(
            SMALL.with_overrides(epochs=2, train_size=500), mnist, [StopAfter(1)], checkpoint
        ).run()
    kept = checkpoint.read_bytes()
    with pytest.raises(ModelFileError, match="is a digitlab checkpoint file, not a model file"):
        bundled.save(checkpoint)
    assert checkpoint.read_bytes() == kept
    bundled.save(tmp_path / "m.npz")
    bundled.save(tmp_path / "m.npz")
    assert load_model(tmp_path / "m.npz").predict(np.zeros(784)).shape == (1,)


# -- Model.predict, predict_proba, score ---------------------------------------------


def test_predict_reads_every_form_alike_and_well(bundled: Model, digits) -> None:
    images, labels = digits
    answers = bundled.predict(images)
    assert answers.shape == (500,) and answers.dtype.kind == "i"
    assert (answers == labels).mean() > 0.98
    for form in (images.reshape(500, 784), images / 255, images.astype(np.float32)):
        np.testing.assert_array_equal(bundled.predict(form), answers)
    assert bundled.predict(images[0]).tolist() == [answers[0]]


def test_grey_levels_as_floats_are_scaled_not_misread(bundled: Model, digits) -> None:
    """Unscaled 0-255 floats once cost accuracy silently; now they read as 0-255."""
    images, labels = digits
    assert bundled.score(images.astype(np.float64), labels) == bundled.score(images / 255, labels)


def test_predict_proba_is_the_calibrated_answer(bundled: Model, digits) -> None:
    images, _ = digits
    probabilities = bundled.predict_proba(images[:50])
    assert probabilities.shape == (50, 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert bundled.calibration is not None
    np.testing.assert_array_equal(probabilities, bundled.probabilities(pixel_rows(images[:50])))
    raw = bundled.raw_probabilities(pixel_rows(images[:50]))
    assert not np.array_equal(probabilities, raw)  # the temperature (1.07) is applied
    np.testing.assert_array_equal(probabilities.argmax(axis=1), raw.argmax(axis=1))


def test_score_is_the_fraction_right(bundled: Model, digits) -> None:
    images, labels = digits
    assert bundled.score(images, labels) == (bundled.predict(images) == labels).mean()
    assert bundled.score(images[:1], [(bundled.predict(images[:1])[0] + 1) % 10]) == 0.0
    with pytest.raises(ArrayError, match="500 digits"):
        bundled.score(images, labels[:10])


def test_bad_images_to_a_model_are_one_clear_error(bundled: Model) -> None:
    with pytest.raises(ArrayError, match="got \\(2, 100\\)"):
        bundled.predict(np.zeros((2, 100)))
    with pytest.raises(ArrayError, match="NaN"):
        bundled.predict_proba(np.full((28, 28), np.nan))


# -- Model.summary and digitlab info ------------------------------------------------

SMALL = make_spec({"layers": [784, 30, 10], "cost": "log-likelihood", "eta": 0.1})


def small_model() -> Model:
    network = build_network(SMALL, np.random.default_rng(0))
    return Model(SMALL, network, TrainingMetrics(best_epoch=3))


def test_summary_lists_layers_totals_spec_metrics_and_calibration() -> None:
    summary = small_model().describe()
    rows = [(layer.kind, layer.output_shape, layer.parameters) for layer in summary.layers]
    assert rows == [
        ("Dense", (30,), 784 * 30 + 30),
        ("Sigmoid", (30,), 0),
        ("Dense", (10,), 30 * 10 + 10),
        ("Softmax (output)", (10,), 0),
    ]
    assert summary.trainable_parameters == summary.total_parameters == 23_860
    assert summary.format_version == FORMAT_VERSION and summary.calibration is None
    text = small_model().summary()
    for fragment in (
        "file format version 1",
        "Dense             (30,)             23,550",
        "Trainable parameters: 23,860",
        "\n  digitlab train --cost log-likelihood --eta 0.1 --seed 0\n",
        "best_epoch  3",
        "epochs_run  0",
        "Calibration: none",
    ):
        assert fragment in text, text
    assert "Untrained values" not in text


def test_summary_of_a_convolutional_network_with_batch_norm() -> None:
    spec = make_spec(
        {"layers": ["conv:8:5", "pool:2", "dense:10"], "batch_norm": True, "cost": "log-likelihood"}
    )
    summary = Model(spec, build_network(spec, np.random.default_rng(0))).describe()
    shapes = {layer.kind: layer.output_shape for layer in summary.layers}
    assert shapes["Conv2D"] == (24, 24, 8) and shapes["Pool2D"] == (12, 12, 8)
    assert summary.layers[-1].output_shape == (10,)
    assert summary.untrained_values == 16  # running mean and variance of 8 channels
    assert summary.trainable_parameters == (5 * 5 * 8 + 8) + 16 + (12 * 12 * 8 * 10 + 10)
    assert "Untrained values (batch-norm statistics): 16" in summary.text()


def test_summary_of_a_calibrated_saved_model(tmp_path: Path, mnist) -> None:
    model = calibrated(small_model(), mnist.validation.head(500))
    save_model(tmp_path / "m.npz", model)
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.format_version == FORMAT_VERSION
    record = json.loads(json.dumps(loaded.describe().to_dict()))
    assert record["calibration"] == model.calibration.to_dict()
    assert record["spec"] == SMALL.model_dump() and record["metrics"] == {
        "epochs_run": 0,
        "best_epoch": 3,
    }
    assert "Calibration: temperature" in loaded.summary()


def test_info_prints_the_summary_and_json(run_cli, tmp_path: Path) -> None:
    save_model(tmp_path / "m.npz", small_model())
    text = run_cli("info", tmp_path / "m.npz")
    assert text.returncode == 0 and text.stdout.strip() == small_model().summary()
    result = run_cli("info", tmp_path / "m.npz", "--json")
    record = json.loads(result.stdout.splitlines()[-1])
    assert record["model"] == str(tmp_path / "m.npz")
    assert record["total_parameters"] == 23_860 and record["format_version"] == FORMAT_VERSION
    assert record["layers"][0]["kind"] == "Dense"
    assert run_cli("info", "--help").returncode == 0


def test_a_model_started_from_another_says_its_command_trains_another(
    run_cli, mnist, tmp_path: Path
) -> None:
    """A run from another model's weights records them, through a checkpoint and the
    file, and ``info`` does not offer its spec's command as the way to train it again."""
    first = small_model()
    spec = SMALL.with_overrides(epochs=2, train_size=500, eta=0.01)
    checkpoint = tmp_path / "run.checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        Trainer(spec, mnist, [StopAfter(1)], checkpoint, initial=first).run()
    model = Trainer.resume(checkpoint, mnist).run().model
    expected = (
        "the weights of a model trained with "
        "`digitlab train --cost log-likelihood --eta 0.1 --seed 0`"
    )
    assert model.started_from == expected
    save_model(tmp_path / "m.npz", model)
    assert load_model(tmp_path / "m.npz").started_from == expected
    text = run_cli("info", tmp_path / "m.npz").stdout
    assert f"Started from: {expected}\n" in text
    assert "it starts from fresh weights, so it trains another model, not this one:" in text
    assert "command that trains it again" not in text
    record = json.loads(run_cli("info", tmp_path / "m.npz", "--json").stdout.splitlines()[-1])
    assert record["started_from"] == expected
    # a model trained from scratch records nothing of the kind
    assert small_model().describe().to_dict()["started_from"] is None
    assert "Started from" not in small_model().summary()
    # started again from this one: the line names one generation, however many there were
    again = Trainer(spec, mnist, initial=load_model(tmp_path / "m.npz")).run().model
    assert again.started_from.endswith(", which had itself started from another model's weights")
    assert len(again.started_from) < 2 * len(expected)
    # what could not be read back is not written
    with pytest.raises(ValueError, match="one line of at most 1000"):
        save_model(tmp_path / "long.npz", replace(model, started_from="x" * 1001))
    assert not (tmp_path / "long.npz").exists()


@pytest.mark.parametrize("record", [["a list"], "x" * 5000, "two\nlines"])
@pytest.mark.parametrize("name", ["started_from", "trained_on"])
def test_a_damaged_provenance_record_is_refused(tmp_path: Path, record: object, name) -> None:
    save_model(tmp_path / "m.npz", small_model())
    with np.load(tmp_path / "m.npz") as loaded:
        arrays = dict(loaded)
    header = json.loads(str(arrays[HEADER_KEY]))
    arrays[HEADER_KEY] = np.array(json.dumps({**header, name: record}))
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(ModelFileError, match=f"{name} is not a line of text"):
        load_model(tmp_path / "m.npz")


def test_info_on_a_damaged_file_is_one_line(run_cli, tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip at all")
    assert_one_line_error(run_cli("info", tmp_path / "bad.npz"), "not a digitlab model file")
    assert_one_line_error(run_cli("info", tmp_path / "gone.npz"), "does not exist")


# -- History in Keras' terms ---------------------------------------------------------


def record(epoch: int) -> EpochRecord:
    return EpochRecord(
        epoch=epoch,
        eta=0.5 / (epoch + 1),
        train_cost=1.0 - epoch / 10,
        train_accuracy=0.8 + epoch / 100,
        validation_cost=1.1 - epoch / 10,
        validation_accuracy=0.7 + epoch / 100,
        test_accuracy=None if epoch == 0 else 0.75,
        seconds=1.0,
    )


def test_history_in_keras_names() -> None:
    history = History([record(0), record(1)])
    assert history.history == {
        "accuracy": [0.8, 0.81],
        "val_accuracy": [0.7, 0.71],
        "loss": [1.0, 0.9],
        "val_loss": [1.1, 1.0],
        "test_accuracy": [None, 0.75],
        "eta": [0.5, 0.25],
    }
    assert set(KERAS_NAMES.values()) <= {f for f in EpochRecord.__dataclass_fields__}


def test_history_of_a_real_run_in_keras_names(mnist) -> None:
    spec = make_spec({"layers": [784, 10], "epochs": 2, "train_size": 1000, "eta": 0.1})
    history = Trainer(spec, mnist, diagnostics=False).run().history
    series = history.history
    assert all(len(values) == 2 for values in series.values())
    assert series["val_accuracy"] == [r.validation_accuracy for r in history]
    assert series["loss"] == [r.train_cost for r in history]


def test_history_to_pandas(mnist) -> None:
    pytest.importorskip("pandas")
    spec = make_spec({"layers": [784, 10], "epochs": 2, "train_size": 1000, "eta": 0.1})
    history = Trainer(spec, mnist).run().history
    frame = history.to_pandas()
    assert frame.index.name == "epoch" and frame.index.tolist() == [1, 2]  # counted from 1
    assert frame["validation_accuracy"].tolist() == history.column("validation_accuracy")
    assert list(frame.columns) == history.csv_columns()[1:]  # epoch is the index
    assert "output_stuck" in frame.columns  # the diagnostics, spread over columns
    assert History().to_pandas().empty


def test_a_history_written_with_epochs_from_0_is_read_from_1() -> None:
    """Checkpoints and history files from before epochs counted from 1 resume in order."""
    old = [{**record(epoch).to_dict(), "epoch": epoch} for epoch in range(3)]
    assert [r.epoch for r in History.from_dicts(old)] == [1, 2, 3]
    current = History([record(1), record(2)])
    assert History.from_dicts(current.to_dicts()) == current


def test_history_to_pandas_without_pandas_says_how_to_get_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    with pytest.raises(ImportError, match="pip install pandas"):
        History([record(0)]).to_pandas()


# -- the README ------------------------------------------------------------------------


def test_the_readme_snippets_run(mnist, capsys, tmp_path, monkeypatch) -> None:
    """The README's Python section for models, histories and the estimator, run as is."""
    monkeypatch.chdir(tmp_path)  # where it saves its model
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Models, histories and a scikit-learn estimator")[1]
    snippets = re.findall(r"```python\n(.*?)```", section.split("\n## ")[0], re.DOTALL)
    assert len(snippets) == 2
    namespace: dict = {}
    for snippet in snippets:
        exec(snippet, namespace)
    printed = capsys.readouterr().out
    assert "Trainable parameters: 263,050" in printed and "{'eta': " in printed
    assert load_model(tmp_path / "small.npz").spec.layers == [784, 30, 10]


def test_a_dataset_can_be_cut_for_quick_experiments(mnist) -> None:
    quick = mnist.head(validation=200, test=100)
    assert (len(quick.train), len(quick.validation), len(quick.test)) == (50_000, 200, 100)
    np.testing.assert_array_equal(quick.test.images, mnist.test.images[:100])
    assert len(mnist.head(train=10).train) == 10 and len(mnist.head().test) == 10_000


def test_a_run_may_start_from_a_trained_model(mnist) -> None:
    """Training further (Keras' second fit): the run starts from the model's weights,
    and a network of another shape is refused in one line."""
    small = mnist.head(1000, 300, 0)
    spec = make_spec({"layers": [784, 30, 10], "epochs": 1, "train_size": 1000})
    first = Trainer(spec, small).run().model
    further = Trainer(spec.with_overrides(epochs=2), small, initial=first)
    for ours, theirs in zip(further.network.arrays(), first.network.arrays(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    result = further.run()
    fresh = Trainer(spec.with_overrides(epochs=2), small).run()
    assert result.history[0].validation_accuracy > first.metrics.validation_accuracy - 0.02
    assert result.history[0].validation_accuracy > fresh.history[0].validation_accuracy
    with pytest.raises(SpecError, match=r"^initial: the model's network \(\[784, 30, 10\]"):
        Trainer(spec.with_overrides(layers=[784, 100, 10]), small, initial=first)
    with pytest.raises(TypeError, match=r"initial=model\) takes a digitlab Model, not str"):
        Trainer(spec, small, initial="m.npz")
