"""Augmentation keeps labels and pixel range, is repeatable for a seed, and really moves pixels."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from digitlab.data.augment import AUGMENTATIONS, expand_by_shifts, random_warp, shifted
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


#: Every per-epoch warp: the named augmentations, and the affine warp at the ranges a
#: spec's rotation, zoom and translation choose (cnn-record's, with a zoom).
WARPS = {**AUGMENTATIONS, "ranges": partial(random_warp, rotation=20, zoom=0.1, translation=3)}


@pytest.mark.parametrize("name", sorted(WARPS))
def test_warps_keep_range_are_seeded_and_change_images(mnist, name: str) -> None:
    """Each warped image is still its own digit, in its own place (so its label still
    fits), with pixels in [0, 1], and the same seed warps the same way."""
    images = mnist.train.images[:200]
    warp = WARPS[name]
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
#: another digit; affine and elastic 0.65 against 0.27; the ranges above 0.46 against 0.26).
SAME_DIGIT_MARGIN = {"affine": 0.3, "elastic": 0.3, "robust": 0.1, "ranges": 0.1}


def test_a_warp_with_zero_ranges_gives_the_same_images(mnist) -> None:
    images = mnist.train.images[:100]
    assert np.array_equal(random_warp(images, np.random.default_rng(0), 0, 0, 0), images)


def ink_centres(images: np.ndarray) -> np.ndarray:
    """Each image's centre of brightness, (row, column) in pixels."""
    square = images.reshape(-1, 28, 28)
    total = square.sum(axis=(1, 2))
    rows = (square.sum(axis=2) * np.arange(28)).sum(axis=1) / total
    cols = (square.sum(axis=1) * np.arange(28)).sum(axis=1) / total
    return np.stack([rows, cols], axis=1)


@pytest.mark.parametrize("translation", [1.0, 3.0])
def test_translation_alone_moves_digits_up_to_its_range(mnist, translation: float) -> None:
    images = mnist.train.images[:300]
    moved = random_warp(images, np.random.default_rng(1), 0, 0, translation)
    distance = np.abs(ink_centres(moved) - ink_centres(images))
    assert distance.max() <= translation + 0.3  # ink cut off at the border shifts it a little
    assert np.median(distance) > translation / 4  # measured: about translation / 2


def test_rotation_alone_keeps_digits_in_place(mnist) -> None:
    images = mnist.train.images[:300]
    turned = random_warp(images, np.random.default_rng(1), 20, 0, 0)
    assert not np.array_equal(turned, images)
    # MNIST centres each digit's mass in the image, and the warp turns it about the centre
    # (measured over seeds 0-3: the mass moved at most 0.38 pixels)
    assert np.abs(ink_centres(turned) - ink_centres(images)).max() < 0.75


@pytest.mark.parametrize(("rows", "cols"), [(0, 0), (2, -1), (-3, 0), (0, 5)])
def test_shifted_moves_whole_pixels_and_fills_with_black(mnist, rows: int, cols: int) -> None:
    images = mnist.train.images[:20]
    moved = shifted(images, rows, cols).reshape(-1, 28, 28)
    square = images.reshape(-1, 28, 28)
    expected = np.roll(square, (rows, cols), axis=(1, 2))
    kept_r = slice(max(rows, 0), 28 + min(rows, 0))
    kept_c = slice(max(cols, 0), 28 + min(cols, 0))
    assert np.array_equal(moved[:, kept_r, kept_c], expected[:, kept_r, kept_c])
    outside = np.ones((28, 28), dtype=bool)
    outside[kept_r, kept_c] = False
    assert not moved[:, outside].any()


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
