"""The robustness benchmark's conditions, the robust augmentation and the generated
non-digits: shapes, ranges, labels untouched, and the same images from the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.data import distortions
from digitlab.data.augment import robust_distortion
from digitlab.data.outliers import KINDS, TRAINING_KINDS, non_digits
from digitlab.evaluation.conditions import CONDITIONS, by_name, distort
from digitlab.evaluation.robustness import RobustnessRow, distorted_test_sets, robustness
from digitlab.nn.build import build_network
from digitlab.nn.model_file import Model
from digitlab.spec import make_spec


@pytest.mark.parametrize("condition", CONDITIONS, ids=lambda c: c.name)
def test_every_condition_gives_network_inputs_repeatably(mnist, condition) -> None:
    digits = mnist.test.images[:12]
    first, again = distort(condition, digits), distort(condition, digits)
    assert first.shape == (12, 784) and first.dtype == np.float32
    assert 0 <= first.min() and first.max() <= 1
    assert np.array_equal(first, again)
    if condition.name != "clean":
        assert not np.allclose(first, digits)  # it changes something


def test_conditions_keep_the_digit_recognisable(mnist) -> None:
    """Each distorted digit still resembles its original more than another digit."""
    digits = mnist.test.images[:40]
    for condition in CONDITIONS:
        inputs = distort(condition, digits)
        own = [np.corrcoef(a, b)[0, 1] for a, b in zip(inputs, digits, strict=True)]
        other = [np.corrcoef(a, b)[0, 1] for a, b in zip(inputs, digits[::-1], strict=True)]
        assert np.mean(own) > np.mean(other) + 0.2, condition.name


def test_warp_by_nothing_is_the_identity(mnist) -> None:
    digits = mnist.test.images[:5]
    same = distortions.warp(digits, np.zeros(5), np.ones(5), np.zeros(5), np.zeros((5, 2)))
    assert np.allclose(same.reshape(5, -1), digits, atol=1e-5)


def test_thicker_and_thinner_pens_change_the_ink_the_right_way(mnist) -> None:
    digits = mnist.test.images[:10]
    assert distortions.thicker(digits).sum() > digits.sum() > distortions.thinner(digits).sum()


def test_robust_augmentation_keeps_range_and_repeats_from_a_seed(mnist) -> None:
    digits = mnist.train.images[:64]
    first = robust_distortion(digits, np.random.default_rng(3))
    again = robust_distortion(digits, np.random.default_rng(3))
    assert first.shape == digits.shape and first.dtype == np.float32
    assert 0 <= first.min() and first.max() <= 1 and np.array_equal(first, again)
    assert not np.array_equal(first, robust_distortion(digits, np.random.default_rng(4)))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_generated_non_digits_are_images_of_each_kind(mnist, kind) -> None:
    images = non_digits(30, mnist.train.images[:100], np.random.default_rng(0), (kind,))
    assert images.shape == (30, 784) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    again = non_digits(30, mnist.train.images[:100], np.random.default_rng(0), (kind,))
    assert np.array_equal(images, again)


def test_training_never_sees_the_kinds_kept_for_measuring(mnist) -> None:
    """Outlier exposure draws the training kinds only; the evaluation's unseen rows use
    the others, so they measure doubt on what no model was shown."""
    from digitlab.evaluation.doubt import GENERATED

    digits = mnist.train.images[:100]
    default = non_digits(60, digits, np.random.default_rng(5))
    explicit = non_digits(60, digits, np.random.default_rng(5), TRAINING_KINDS)
    assert np.array_equal(default, explicit)
    unseen = {kind for kinds in GENERATED.values() for kind in kinds} - set(TRAINING_KINDS)
    assert unseen == {"letters", "scribbles", "overlays"}
    assert unseen.isdisjoint(TRAINING_KINDS)


def test_outlier_exposure_trains_non_digits_towards_equal_probabilities(mnist) -> None:
    """With outliers, generated non-digits get flatter answers than without."""
    from digitlab.train import Trainer

    fields = {
        "layers": [784, 30, 10],
        "cost": "log-likelihood",
        "eta": 0.5,
        "epochs": 3,
        "train_size": 3000,
    }
    others = non_digits(500, mnist.train.images[:1000], np.random.default_rng(99))
    top = {}
    for share in (0.0, 0.3):
        spec = make_spec({**fields, "outliers": share})
        model = Trainer(spec, mnist, use_test=False, diagnostics=False).run().model
        top[share] = model.network.probabilities(others).max(axis=1).mean()
    assert top[0.3] < top[0.0] - 0.1


def test_robustness_scores_each_model_on_each_set(mnist) -> None:
    spec = make_spec({"layers": [784, 10], "cost": "log-likelihood"})
    model = Model(spec, build_network(spec, np.random.default_rng(0)))
    test = mnist.test.head(50)
    sets = distorted_test_sets(test, [by_name("clean"), by_name("gaussian blur")])
    [row] = robustness({"untrained": [model]}, sets, test.labels)
    assert set(row.accuracy) == {"clean", "gaussian blur"}
    assert row.mean == row.accuracy["gaussian blur"]  # the clean set is not averaged in
    assert RobustnessRow("m", {"clean": 1.0, "a": 0.5, "b": 0.7}).mean == pytest.approx(0.6)
