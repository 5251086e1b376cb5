"""Test-time augmentation: probabilities averaged over shifted copies of each image."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab.data.augment import shifted
from digitlab.errors import ArrayError, ModelFileError
from digitlab.evaluation.scoring import evaluate
from digitlab.evaluation.tta import SHIFTS, shift_averaged
from digitlab.nn.model_file import Model, load_model, save_model
from digitlab.spec import make_spec
from digitlab.train import Trainer


@pytest.fixture(scope="module")
def model(mnist) -> Model:
    """A small calibrated network: softmax outputs, one epoch on 2,000 images."""
    spec = make_spec(
        {"layers": [784, 30, 10], "cost": "log-likelihood", "epochs": 1, "train_size": 2000}
    )
    return Trainer(spec, mnist, use_test=False, diagnostics=False).run().model


def test_with_the_identity_alone_it_is_the_plain_answer(model: Model, mnist) -> None:
    images = mnist.test.images[:500]
    alone = shift_averaged(model, [(0, 0)])
    assert model.calibration is not None
    assert np.array_equal(alone.raw_probabilities(images), model.raw_probabilities(images))
    assert np.array_equal(alone.predict_proba(images), model.predict_proba(images))


def test_it_averages_the_answers_for_each_shift(model: Model, mnist) -> None:
    images = mnist.test.images[:500]
    each = [model.raw_probabilities(shifted(images, *shift)) for shift in SHIFTS]
    averaged = shift_averaged(model).raw_probabilities(images)
    assert averaged.dtype == np.float32
    np.testing.assert_allclose(averaged, np.mean(each, axis=0), rtol=1e-6)
    np.testing.assert_allclose(averaged.sum(axis=1), 1, rtol=1e-5)
    assert not np.allclose(averaged, each[0])  # the shifts do change the answer


def test_scoring_sees_the_averaged_answers(model: Model, mnist) -> None:
    split = mnist.test.head(1000)
    averaged = shift_averaged(model)
    expected = (averaged.predict_proba(split.images).argmax(axis=1) == split.labels).mean()
    assert evaluate([averaged], split).accuracy == pytest.approx(expected)


@pytest.mark.parametrize("shifts", [[], [(0, 28)], [(1,)], [(0.5, 0)]])
def test_shifts_that_are_not_whole_pixels_inside_the_image_are_refused(
    model: Model, shifts
) -> None:
    with pytest.raises(ArrayError, match="shifts"):
        shift_averaged(model, shifts)


def test_evaluate_and_predict_take_tta(run_cli, model: Model, mnist, tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save_model(path, model)
    image = tmp_path / "digit.png"
    pixels = mnist.test.images[0].reshape(28, 28)
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(image)

    plain = json.loads(run_cli("evaluate", path, "--json").stdout.splitlines()[-1])
    result = run_cli("evaluate", path, "--tta", "--json")
    assert result.returncode == 0, result.stderr
    averaged = json.loads(result.stdout.splitlines()[-1])
    assert averaged["images"] == plain["images"] == 10_000
    assert averaged["test_accuracy"] == evaluate([shift_averaged(model)], mnist.test).accuracy
    assert averaged["uncalibrated"] != plain["uncalibrated"]
    # the temperature fitted on single images is used as it is, and evaluate says so
    assert model.calibration is not None
    assert "note: with --tta the calibration" in result.stderr
    assert "note: with --tta" not in run_cli("evaluate", path).stderr

    result = run_cli("predict", path, image, "--tta", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])["predictions"][0]
    plain_answer = json.loads(run_cli("predict", path, image, "--json").stdout.splitlines()[-1])
    assert answer["digit"] == mnist.test.labels[0]
    assert answer["probabilities"] != plain_answer["predictions"][0]["probabilities"]


def test_saving_or_exporting_it_is_refused_not_silently_plain(model: Model, tmp_path: Path) -> None:
    """A file holds the network alone: the averaging would be lost without a word."""
    averaged = shift_averaged(model)
    calls = [
        ("save_model(path, model)", lambda: save_model(tmp_path / "m.npz", averaged)),
        ("save_model(path, model)", lambda: averaged.save(tmp_path / "m.npz")),
    ]
    if importlib.util.find_spec("onnx") is not None:
        from digitlab.interop.onnx_export import export_onnx

        calls.append(
            ("export_onnx(model, path)", lambda: export_onnx(averaged, tmp_path / "m.onnx"))
        )
    for call, attempt in calls:
        with pytest.raises(ModelFileError, match=rf"^{re.escape(call)}: a file holds the net"):
            attempt()
    assert not list(tmp_path.iterdir())
    save_model(tmp_path / "m.npz", model)  # the model itself saves, and wraps again
    again = shift_averaged(load_model(tmp_path / "m.npz"))
    images = np.zeros((2, 784), dtype=np.float32)
    np.testing.assert_array_equal(again.predict_proba(images), averaged.predict_proba(images))
