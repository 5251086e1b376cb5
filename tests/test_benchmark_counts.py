"""The work the speed benchmark credits each network with, counted by hand."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import speed


def test_training_flops_of_book_ch6_conv2_match_a_hand_count() -> None:
    # Forward multiply-adds per image: conv 20 of 5x5 over 24x24 outputs, conv 40 of
    # 5x5x20 over 8x8, dense 640x100 and 100x10.  A training step repeats them for the
    # weights' gradients, and for the inputs' gradients of all layers but the first.
    first = 24 * 24 * 20 * 25
    forward = first + 8 * 8 * 40 * 5 * 5 * 20 + 640 * 100 + 100 * 10
    assert speed.training_flops(speed.NETWORKS["book-ch6-conv2"]) == 2 * (3 * forward - first)


def test_training_flops_of_cnn_best_count_its_padded_convolution_at_full_size() -> None:
    first = 24 * 24 * 32 * 25
    forward = first + 12 * 12 * 64 * 9 * 32 + 10 * 10 * 64 * 9 * 64 + 1600 * 512 + 512 * 10
    assert speed.training_flops(speed.NETWORKS["cnn-best"]) == 2 * (3 * forward - first)
