"""Augmentation keeps labels and pixel range, is repeatable for a seed, and really moves pixels."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.data.augment import AUGMENTATIONS, expand_by_shifts
from digitlab.spec import make_spec
from digitlab.train import Trainer

from .interrupt import StopAfter


def test_expansion_is_the_originals_and_four_one_pixel_shifts(mnist) -> None:
    images, labels = mnist.train.images[:50], mnist.train.labels[:50]
    expanded, expanded_labels = expand_by_shifts(images, labels)
    assert expanded.shape == (250, 784) and np.array_equal(expanded_labels, np.tile(labels, 5))
    square = images.reshape(-1, 28, 28)
    down = expanded[200:].reshape(-1, 28, 28)  # the last copy: shifted right by one
    assert np.array_equal(expanded[:50], images)
    assert np.array_equal(down[:, :, 1:], square[:, :, :-1]) and not down[:, :, 0].any()
    assert expanded.min() >= 0 and expanded.max() <= 1


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_warps_keep_range_are_seeded_and_change_images(mnist, name: str) -> None:
    images = mnist.train.images[:200]
    warp = AUGMENTATIONS[name]
    first = warp(images, np.random.default_rng(7))
    again = warp(images, np.random.default_rng(7))
    other = warp(images, np.random.default_rng(8))
    assert first.shape == images.shape and first.dtype == np.float32
    assert first.min() >= 0 and first.max() <= 1
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    changed = np.abs(first - images).mean(axis=1)
    assert (changed > 0.01).mean() > 0.9  # nearly every digit really moved
    # ...but stays the same digit: ink mostly kept, still strongly like the original
    assert np.median(first.sum(axis=1) / images.sum(axis=1)) == pytest.approx(1, abs=0.15)
    own = np.median([np.corrcoef(a, b)[0, 1] for a, b in zip(first, images, strict=True)])
    other = np.median([np.corrcoef(a, b)[0, 1] for a, b in zip(first, images[::-1], strict=True)])
    assert own > other + SAME_DIGIT_MARGIN[name]


#: How much more a warped digit must correlate, pixel by pixel, with its original than
#: with another digit.  The robust warp shifts digits by up to 3 pixels and turns them by
#: up to 20 degrees, which lowers any pixel correlation (measured: 0.42 against 0.26 for
#: another digit; affine and elastic 0.65 against 0.27).
SAME_DIGIT_MARGIN = {"affine": 0.3, "elastic": 0.3, "robust": 0.1}


def test_trainer_with_expansion_and_augmentation_resumes_identically(mnist, tmp_path) -> None:
    spec = make_spec(
        {
            "layers": [784, 20, 10],
            "epochs": 3,
            "train_size": 400,
            "expand": True,
            "augment": "elastic",
            "seed": 3,
        }
    )
    straight = Trainer(spec, mnist, use_test=False)
    straight.run()
    assert len(straight.train) == 2000  # 400 images and their four shifts

    checkpoint = tmp_path / "run.checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        Trainer(spec, mnist, [StopAfter(1)], checkpoint, use_test=False).run()
    resumed = Trainer.resume(checkpoint, mnist, use_test=False)
    resumed.run()
    for a, b in zip(resumed.network.arrays(), straight.network.arrays(), strict=True):
        assert np.array_equal(a, b)
