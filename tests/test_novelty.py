"""The second judge of doubt: how far an image's features lie from every digit's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis

from digitlab.data.outliers import non_digits
from digitlab.errors import ModelFileError
from digitlab.evaluation.calibration import calibrated, joint_thresholds
from digitlab.nn.model_file import (
    FEATURES_KEY,
    FORMAT,
    load_model,
    read_container,
    save_model,
    write_container,
)
from digitlab.nn.novelty import DigitFeatures
from digitlab.predict import load_bundled_model, predict_fields
from digitlab.spec import make_spec


def clouds(n: int = 3000, channels: int = 5, seed: int = 0):
    """Ten Gaussian clouds sharing one (correlated) covariance: features with labels."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(channels, channels))
    centres = rng.normal(0, 3, (10, channels))
    labels = rng.integers(0, 10, n)
    features = centres[labels] + rng.normal(size=(n, channels)) @ mixing
    return features, labels


def test_distances_are_squared_mahalanobis_to_the_nearest_centre() -> None:
    features, labels = clouds()
    fitted = DigitFeatures.fit(features, labels)
    means = np.stack([features[labels == d].mean(axis=0) for d in range(10)])
    residuals = features - means[labels]
    inverse = np.linalg.inv(residuals.T @ residuals / len(features))
    probes = features[:20] + np.linspace(0, 5, 20)[:, None]
    expected = [min(mahalanobis(p, m, inverse) ** 2 for m in means) for p in probes]
    assert np.allclose(fitted.distances(probes), expected, rtol=1e-3, atol=1e-3)


def test_a_centre_is_near_and_a_far_point_is_far() -> None:
    features, labels = clouds()
    fitted = DigitFeatures.fit(features, labels)
    centre = features[labels == 3].mean(axis=0, keepdims=True)
    assert fitted.distances(centre)[0] < 1e-3
    assert fitted.distances(centre + 100)[0] > 100 * np.median(fitted.distances(features))


def test_fitting_needs_every_digit() -> None:
    features, labels = clouds()
    with pytest.raises(ValueError, match="digit 7"):
        DigitFeatures.fit(features[labels != 7], labels[labels != 7])


def test_the_joint_thresholds_flag_the_share_together_and_evenly() -> None:
    rng = np.random.default_rng(1)
    confidences, distances = rng.random(20_000), rng.random(20_000)
    found = joint_thresholds(confidences, distances, share=0.02)
    by_probability = confidences < found.unsure_below
    by_distance = distances > found.unlike_above
    assert (by_probability | by_distance).mean() == pytest.approx(0.02, abs=2e-4)
    assert by_probability.mean() == pytest.approx(by_distance.mean(), abs=2e-4)


@pytest.fixture(scope="module")
def small_conv_model(mnist):
    from digitlab.train import Trainer

    spec = make_spec(
        {
            "layers": ["conv:8:5", "pool:2", "dense:10"],
            "activation": "relu",
            "init": "he",
            "cost": "log-likelihood",
            "eta": 0.05,
            "epochs": 1,
            "train_size": 3000,
        }
    )
    return Trainer(spec, mnist.head(validation=2000), use_test=False, diagnostics=False).run().model


def test_a_convolutional_model_learns_its_digits_features_and_keeps_them(
    small_conv_model, tmp_path: Path, mnist
) -> None:
    found = small_conv_model.calibration
    assert found.digit_features is not None and found.digit_features.channels == 8
    validation = small_conv_model.answers(mnist.validation.images[:2000])
    assert validation.unsure.mean() == pytest.approx(0.01, abs=0.002)  # the fitted share
    save_model(tmp_path / "m.npz", small_conv_model)
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.calibration == found  # compared by value, arrays included
    assert np.array_equal(
        loaded.calibration.digit_features.whitening, found.digit_features.whitening
    )
    images = mnist.test.images[:300]
    assert np.array_equal(
        loaded.answers(images).distances, small_conv_model.answers(images).distances
    )


def test_a_dense_model_has_no_features_to_judge_by(mnist) -> None:
    from digitlab.train import Trainer

    spec = make_spec({"layers": [784, 20, 10], "epochs": 1, "train_size": 1000})
    model = (
        Trainer(spec, mnist.head(validation=1000), use_test=False, diagnostics=False).run().model
    )
    assert model.calibration is not None and model.calibration.digit_features is None
    answers = model.answers(mnist.test.images[:50])
    assert answers.unlike_digits is None and answers.distances is None
    assert predict_fields(model, mnist.test.images[:3])[0].unlike_digits is None


def test_a_model_without_the_training_split_is_calibrated_without_features(
    small_conv_model, mnist
) -> None:
    again = calibrated(replace(small_conv_model, calibration=None), mnist.validation.head(1000))
    assert again.calibration is not None and again.calibration.digit_features is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: {"centres": f.centres[:9], "whitening": f.whitening},
        lambda f: {"centres": f.centres, "whitening": f.whitening[:, :4]},
        lambda f: {"centres": f.centres * np.nan, "whitening": f.whitening},
        lambda f: {"centres": f.centres.astype(np.int32), "whitening": f.whitening},
        lambda f: {"whitening": f.whitening},
    ],
    ids=["nine centres", "not square", "NaN", "integers", "missing"],
)
def test_damaged_digit_features_are_refused(small_conv_model, tmp_path: Path, damage) -> None:
    path = tmp_path / "m.npz"
    save_model(path, small_conv_model)
    header, arrays = read_container(path, FORMAT)
    kept = {k: v for k, v in arrays.items() if not k.startswith(FEATURES_KEY)}
    stored = damage(small_conv_model.calibration.digit_features)
    kept.update({f"{FEATURES_KEY}/{k}": v for k, v in stored.items()})
    write_container(
        path, FORMAT, {"spec": header["spec"], "calibration": header["calibration"]}, kept
    )
    with pytest.raises(ModelFileError, match="digit-feature"):
        load_model(path)


def test_features_of_another_width_are_refused(small_conv_model, tmp_path: Path) -> None:
    features, labels = clouds(channels=6)
    other = DigitFeatures.fit(features, labels)
    model = replace(
        small_conv_model, calibration=replace(small_conv_model.calibration, digit_features=other)
    )
    save_model(tmp_path / "m.npz", model)
    with pytest.raises(ModelFileError, match="wrong shape"):
        load_model(tmp_path / "m.npz")


def test_the_bundled_model_calls_unseen_kinds_of_non_digit_unsure(mnist) -> None:
    """Letters it never trained on: the features catch most of what the top probability
    alone would answer confidently (docs/results/robustness.md has the full table)."""
    model = load_bundled_model()
    letters = non_digits(1000, mnist.train.images, np.random.default_rng(5), ("letters",))
    answers = model.answers(letters)
    assert answers.unsure.mean() >= 0.7
    assert answers.unlike_digits.mean() >= 0.6
    assert model.answers(mnist.test.images[:2000]).unsure.mean() <= 0.02
    [answer] = predict_fields(model, letters[:1])
    assert answer.unlike_digits is not None


def test_ties_and_few_digits_still_keep_the_joint_share() -> None:
    rng = np.random.default_rng(2)
    confidences = rng.random(300)
    distances = np.repeat(rng.random(30), 10)  # heavily tied
    found = joint_thresholds(confidences, distances, share=0.05)
    flagged = (confidences < found.unsure_below) | (distances > found.unlike_above)
    assert flagged.mean() <= 0.05 + 10 / 300  # at most one tied group over


def test_with_test_time_augmentation_the_distance_is_of_the_image_as_given(
    small_conv_model, mnist
) -> None:
    from digitlab.evaluation.tta import shift_averaged

    images = mnist.test.images[:50]
    plain, shifted = (
        small_conv_model.answers(images),
        shift_averaged(small_conv_model).answers(images),
    )
    assert np.array_equal(plain.distances, shifted.distances)
    assert not np.array_equal(plain.probabilities, shifted.probabilities)
    unshifted_first = shift_averaged(small_conv_model, [(1, 0), (0, 1)]).answers(images)
    assert np.array_equal(plain.distances, unshifted_first.distances)


def test_an_unreadable_answer_counts_as_doubt(small_conv_model) -> None:
    answers = small_conv_model.answers(np.full((2, 784), np.nan, dtype=np.float32))
    assert answers.unsure.all()


def test_a_convolutional_model_calibrated_before_digit_features_cannot_tell(
    small_conv_model, tmp_path: Path, mnist
) -> None:
    older = replace(
        small_conv_model, calibration=small_conv_model.calibration.by_top_probability_alone()
    )
    save_model(tmp_path / "m.npz", older)
    loaded = load_model(tmp_path / "m.npz")
    [answer] = predict_fields(loaded, mnist.test.images[:1])
    assert answer.unsure is not None and answer.unlike_digits is None
    assert loaded.calibration.unsure_below == small_conv_model.calibration.alone_unsure_below


@pytest.mark.parametrize(
    "change",
    [
        {"unlike_above": -1.0},
        {"unlike_above": float("nan")},
        {"unlike_above": True},
        {"alone_unsure_below": None},
    ],
    ids=["negative", "NaN", "a truth value", "half the record"],
)
def test_a_damaged_distance_threshold_is_refused(small_conv_model, tmp_path: Path, change) -> None:
    path = tmp_path / "m.npz"
    save_model(path, small_conv_model)
    header, arrays = read_container(path, FORMAT)
    calibration = {**header["calibration"], **change}
    write_container(path, FORMAT, {"spec": header["spec"], "calibration": calibration}, arrays)
    with pytest.raises(ModelFileError, match="calibration"):
        load_model(path)


def test_features_that_overflow_single_precision_are_refused(small_conv_model, tmp_path: Path):
    path = tmp_path / "m.npz"
    save_model(path, small_conv_model)
    header, arrays = read_container(path, FORMAT)
    arrays[f"{FEATURES_KEY}/whitening"] = (
        arrays[f"{FEATURES_KEY}/whitening"].astype(np.float64) * 1e300
    )
    write_container(
        path, FORMAT, {"spec": header["spec"], "calibration": header["calibration"]}, arrays
    )
    with pytest.raises(ModelFileError, match="digit-feature"):
        load_model(path)
