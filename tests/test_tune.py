"""Tuning a model to one person's digits: it learns their hand, keeps MNIST, and is
measured on digits of theirs it never saw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab.data.mnist import Dataset, Split
from digitlab.errors import DataError
from digitlab.nn.model_file import Model, load_model, save_model
from digitlab.spec import make_spec
from digitlab.train import Trainer
from digitlab.train.tune import Accuracy, Change, held_out_split, tune


def shifted_hand(split: Split, by: int = 5) -> Split:
    """A person who writes every digit low and to the right: MNIST's digits moved ``by``
    pixels down and right, which a fully-connected network trained on MNIST reads badly."""
    images = np.roll(split.images.reshape(-1, 28, 28), (by, by), axis=(1, 2))
    return Split(images.reshape(-1, 784), split.labels)


@pytest.fixture(scope="module")
def model(mnist: Dataset) -> Model:
    spec = make_spec({"layers": [784, 30, 10], "epochs": 2, "train_size": 5000})
    return Trainer(spec, mnist, use_test=False, diagnostics=False).run().model


@pytest.fixture(scope="module")
def person(mnist: Dataset) -> Split:
    """800 of the person's digits, from validation images the tuning does not choose on."""
    return shifted_hand(
        Split(mnist.validation.images[5000:5800], mnist.validation.labels[5000:5800])
    )


def test_the_held_out_digits_are_a_seeded_share_of_each_digit(person: Split) -> None:
    tuning, held = held_out_split(person, 0.25, seed=3)
    assert len(tuning) + len(held) == len(person)
    for digit in range(10):
        mine = int((person.labels == digit).sum())
        assert int((held.labels == digit).sum()) == round(0.25 * mine)
    again, _ = held_out_split(person, 0.25, seed=3)
    np.testing.assert_array_equal(again.images, tuning.images)
    everything, none = held_out_split(person, 0.0, seed=3)
    assert len(everything) == len(person) and len(none) == 0
    _, one = held_out_split(Split(person.images[:2], np.array([4, 4])), 0.1, seed=0)
    assert len(one) == 1  # at least one of a digit with two or more
    kept, none = held_out_split(Split(person.images[:1], np.array([4])), 0.9, seed=0)
    assert len(kept) == 1 and len(none) == 0  # never a digit's last image
    with pytest.raises(DataError, match="between 0 and 1"):
        held_out_split(person, 1.0, seed=0)


def test_tuning_learns_the_hand_keeps_mnist_and_says_so_on_unseen_digits(
    model: Model, person: Split, mnist: Dataset
) -> None:
    tuned = tune(model, person, mnist, epochs=3, seed=0)
    own = tuned.own
    assert own is not None
    assert tuned.tuning_digits + tuned.choosing_digits + own.before.count == len(person)
    assert tuned.choosing_digits == pytest.approx(0.2 * 600, abs=10)
    assert own.before.count == pytest.approx(200, abs=5)  # a quarter of each digit
    assert tuned.rehearsal_digits == 4 * tuned.tuning_digits
    assert own.after.value > own.before.value + 0.2  # the shifted hand is learnt
    assert own.verdict().startswith("better (p = ")
    assert tuned.mnist.before.count == len(mnist.test)
    assert tuned.mnist.after.value > tuned.mnist.before.value - 0.02  # MNIST is kept
    for change in (own, tuned.mnist):  # the counts agree with each other
        assert change.before.right - change.only_before + change.only_after == change.after.right
    assert tuned.model.calibration is not None and len(tuned.history) == 3
    assert tuned.model.spec.eta == pytest.approx(model.spec.eta / 10)
    # its spec alone would train from scratch on MNIST: the model says where it started
    assert tuned.model.started_from.startswith("the weights of a model trained with `digitlab")
    assert tuned.model.started_from.endswith(
        f"; then tuned on {tuned.tuning_digits} of a person's own digits mixed with "
        f"{tuned.rehearsal_digits} of MNIST's (`digitlab tune`)"
    )


def test_a_change_within_the_noise_is_called_so() -> None:
    same = Change(Accuracy(90, 100), Accuracy(91, 100), only_before=4, only_after=5)
    assert same.verdict() == "not shown to differ (p = 1.00)"
    assert Change(Accuracy(5, 10), Accuracy(5, 10), 0, 0).p_value == 1.0
    low, high = Accuracy(90, 100).interval()
    assert low < 0.9 < high and Accuracy(90, 100).text().startswith("90.00% (82.")


def write_folder(split: Split, folder: Path) -> None:
    for index, (image, label) in enumerate(zip(split.images, split.labels, strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        pixels = np.rint(image.reshape(28, 28) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / str(label) / f"{index}.png")


def test_the_command_tunes_a_folder_and_reports_in_json(
    run_cli, model: Model, person: Split, tmp_path: Path
) -> None:
    save_model(tmp_path / "m.npz", model)
    write_folder(Split(person.images[:200], person.labels[:200]), tmp_path / "mine")
    (tmp_path / "mine" / "notes.txt").write_text("not a digit folder")
    result = run_cli(
        "tune", "--model", tmp_path / "m.npz", "--images", tmp_path / "mine",
        "--out", tmp_path / "tuned.npz", "--epochs", "1", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr and "notes.txt" in result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["tuning_digits"] + found["choosing_digits"] + found["yours"]["images"] == 200
    assert found["mnist_test"]["images"] == 10_000
    assert 0 <= found["yours"]["p_value"] <= 1
    assert load_model(tmp_path / "tuned.npz").spec.layers == [784, 30, 10]
    plain = run_cli(
        "tune", "--model", tmp_path / "m.npz", "--images", tmp_path / "mine",
        "--out", tmp_path / "t2.npz", "--epochs", "1", "--held-out", "0",
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert "none held out, so what the tuning gained is not measured" in plain.stdout


def test_tune_never_writes_over_a_picture_or_the_model_it_tunes(
    run_cli, model: Model, person: Split, tmp_path: Path
) -> None:
    save_model(tmp_path / "m.npz", model)
    write_folder(Split(person.images[:20], person.labels[:20]), tmp_path / "mine")
    picture = next((tmp_path / "mine").rglob("*.png"))
    kept = {path: path.read_bytes() for path in (picture, tmp_path / "m.npz")}
    for out, says in ((picture, "is no name for a model file; end it in .npz"),
                      (tmp_path / "m.npz", "--out and --model name the same file")):  # fmt: skip
        result = run_cli(
            "tune", "--model", tmp_path / "m.npz", "--images", tmp_path / "mine",
            "--out", out, "--epochs", "1",
        )  # fmt: skip
        assert result.returncode == 1 and says in result.stderr, result.stderr
    assert all(path.read_bytes() == content for path, content in kept.items())


def test_tune_says_what_it_takes(model: Model, person: Split, mnist: Dataset) -> None:
    from digitlab.data.folders import LabelledImages
    from digitlab.errors import ModelFileError
    from digitlab.evaluation.tta import shift_averaged

    folder = LabelledImages(person, [], [])
    with pytest.raises(TypeError, match="a Split, not LabelledImages: a folder's digits are"):
        tune(model, folder, mnist)
    with pytest.raises(DataError, match="no digits of yours"):
        tune(model, Split(np.zeros((0, 784)), np.zeros(0)), mnist)
    with pytest.raises(DataError, match="MNIST's test set"):
        tune(model, person, Dataset(mnist.train, mnist.validation))
    with pytest.raises(ModelFileError, match="test-time augmentation"):
        tune(shift_averaged(model), person, mnist)
