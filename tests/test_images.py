"""Own-image preprocessing: any size, polarity and position ends up in MNIST's form."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab.data.images import load_image, to_mnist
from digitlab.errors import ImageError


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def photo_of(
    digit: np.ndarray, scale: int, canvas: tuple[int, int], at: tuple[int, int]
) -> np.ndarray:
    """The digit enlarged, dark ink on a light page, somewhere off-centre on a big canvas."""
    big = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize((28 * scale,) * 2))
    page = np.full(canvas, 230.0, dtype=np.float32)
    top, left = at
    page[top : top + big.shape[0], left : left + big.shape[1]] -= big * (200 / 255)
    return page / 255


@pytest.mark.parametrize(
    ("scale", "canvas", "at"),
    [(1, (28, 28), (0, 0)), (6, (400, 300), (20, 130)), (3, (90, 500), (2, 400))],
)
def test_mnist_digits_survive_any_size_position_and_polarity(mnist, scale, canvas, at) -> None:
    for index in range(5):
        digit = mnist.test.images[index].reshape(28, 28)
        result = to_mnist(photo_of(digit, scale, canvas, at))
        assert result.shape == (28, 28) and result.dtype == np.float32
        assert 0 <= result.min() and result.max() <= 1
        row, col = centre_of_mass(result)
        assert abs(row - 14) <= 0.5 + 1e-6 and abs(col - 14) <= 0.5 + 1e-6  # as MNIST's own
        rows, cols = np.nonzero(result > 0.1)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 21  # fits MNIST's 20x20 box
        correlation = np.corrcoef(result.ravel(), digit.ravel())[0, 1]
        assert correlation > 0.85


def test_light_on_dark_and_dark_on_light_agree(mnist) -> None:
    digit = mnist.test.images[0].reshape(28, 28)
    assert np.allclose(to_mnist(digit), to_mnist(1 - digit), atol=1e-5)


def test_blank_and_nan_images_are_errors() -> None:
    with pytest.raises(ImageError, match="blank"):
        to_mnist(np.ones((50, 50)))
    with pytest.raises(ImageError, match="NaN"):
        to_mnist(np.full((28, 28), np.nan))
    with pytest.raises(ImageError, match="2-D"):
        to_mnist(np.zeros((3, 28, 28)))


def test_load_image_reads_png_jpeg_and_transparency(tmp_path: Path) -> None:
    strokes = np.zeros((60, 40, 4), dtype=np.uint8)
    strokes[10:50, 18:22] = (0, 0, 0, 255)  # a black "1" on a transparent canvas
    Image.fromarray(strokes, "RGBA").save(tmp_path / "one.png")
    pixels = load_image(tmp_path / "one.png")
    assert pixels.shape == (60, 40) and pixels[0, 0] == 1.0 and pixels[30, 20] == 0.0
    buffer = io.BytesIO()
    Image.fromarray((pixels * 255).astype(np.uint8)).save(buffer, "JPEG")
    assert load_image(buffer.getvalue()).shape == (60, 40)


def test_unreadable_images_are_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    with pytest.raises(ImageError, match="not a readable"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "missing.png")
