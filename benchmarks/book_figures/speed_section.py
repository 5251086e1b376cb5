"""Chapter 5: the Markdown section of the speed experiment (:mod:`.speed`).

The book's speeds of the hidden layers against ours, at initialisation and after
training, and sentences generated from them: why the early layers learn slowly with
sigmoid neurons and not with ReLU, and how training changes the speeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from report import table

from .speed import BOOK_SPEED_END, BOOK_SPEED_START, DEPTHS, SpeedRun, find_speed

TITLE = "Chapter 5: the speed of learning of each hidden layer"


def section(result: list[SpeedRun], image: str) -> str:
    """The Markdown section: the book's speeds against ours, the plot and the findings."""
    commands = ", ".join(f"`{net.command}`" for net in result)
    return f"""The book measures the speed of learning of a hidden layer as the length of the
gradient of the cost with respect to its biases, ‖∂C/∂b‖, averaged over the first 1,000
training images, in networks of 30-neuron sigmoid layers with N(0,1/n_in) weights and the
cross-entropy cost.  At initialisation it reports 0.07 / 0.31 for two hidden layers,
0.012 / 0.060 / 0.283 for three and 0.003 / 0.017 / 0.070 / 0.285 for four: the first of
four learns about 100 times slower than the last, the vanishing gradient.  It then trains
on those 1,000 images (its generate_gradient.py: 500 epochs of full-batch gradient
descent, η = 0.1, λ = 5.0) and plots the speeds per epoch; its values after training
below are the last points of its curves, from its data files.  The same networks with
ReLU hidden neurons (all else equal, N(0,1) biases included) are ours, not the book's.
Speeds are written first hidden layer / … / last.

{comparison_table(result)}

![Speed of learning of each hidden layer per epoch, sigmoid and ReLU, two to four hidden
layers]({image})

{speed_findings(result)}

One network's training alone: {commands}; with `--history h.json` its history holds the
speeds per epoch (`dense1_bias_gradient_norm`, ...)."""


def comparison_table(result: list[SpeedRun]) -> str:
    """A row per network: the speeds and the first / last ratio at initialisation and
    after training, the book's (sigmoid only) beside ours."""
    epochs = len(result[0].speeds) - 1
    header = [
        "network",
        "hidden neurons",
        "book: speeds at initialisation",
        f"ours (median of {len(result[0].start)} seeds)",
        "book: first / last",
        "ours",
        "book: speeds after 499 epochs",
        f"ours after {epochs} (seed 0)",
        "book: first / last",
        "ours",
    ]
    return table(header, [comparison_row(net) for net in result])


def comparison_row(net: SpeedRun) -> list[str]:
    """One network's cells of :func:`comparison_table` (the book's only for sigmoid)."""
    book = net.activation == "sigmoid"
    start, end = BOOK_SPEED_START[net.depth], BOOK_SPEED_END[net.depth]
    return [
        f"[784,{','.join(['30'] * net.depth)},10]",
        net.activation,
        speeds_text(start) if book else "—",
        speeds_text(np.median(net.start_speeds, axis=0)),
        ratio_text(start[0] / start[-1]) if book else "—",
        ratio_text(net.start_ratio),
        speeds_text(end) if book else "—",
        speeds_text(net.speeds[-1]),
        ratio_text(end[0] / end[-1]) if book else "—",
        ratio_text(net.speeds[-1, 0] / net.speeds[-1, -1]),
    ]


def speeds_text(values: Sequence[float]) -> str:
    """Speeds first hidden layer to last, as ``0.012 / 0.06 / 0.283``."""
    return " / ".join(f"{value:.3g}" for value in values)


def ratio_text(ratio: float) -> str:
    """``1/96`` for the ratio 0.0104: how many times slower the first layer learns."""
    return f"1/{1 / ratio:.3g}" if ratio < 1 else f"{ratio:.3g}"


def speed_findings(result: list[SpeedRun]) -> str:
    """Our speeds at initialisation against the book's, why the early layers are slow
    (sigmoid against ReLU), and how training changes the speeds."""
    sigmoid, relu = (
        find_speed(result, "sigmoid", DEPTHS[-1]),
        find_speed(result, "relu", DEPTHS[-1]),
    )
    comparisons = "; ".join(speed_start_finding(find_speed(result, "sigmoid", d)) for d in DEPTHS)
    return f"""At initialisation, with sigmoid neurons (medians over {len(sigmoid.start)} \
seeds): {comparisons}.

Why the early layers are slow, measured: one layer further back the speed is \
{sigmoid.factor_per_layer:.1f} times smaller with sigmoid neurons (four hidden layers, \
geometric mean), against {relu.factor_per_layer:.2f} times with ReLU, so the first of four \
hidden layers learns {ratio_text(sigmoid.start_ratio)} as fast as the last with sigmoid \
neurons and {ratio_text(relu.start_ratio)} with ReLU.  Backpropagation multiplies the \
gradient by w·σ'(z) at every layer and σ' is at most 1/4 (the book's argument); a ReLU's \
slope is 1 wherever it is active.  ReLU pays otherwise: at initialisation \
{100 * relu.dead_at_start:.0f} % of its hidden units (four hidden layers, all seeds) are \
dead, silent for all 1,000 images, and learn nothing (a consequence of the N(0,1) biases, \
not measured separately).

{speed_training_findings(result)}"""


def speed_start_finding(net: SpeedRun) -> str:
    """Ours against the book's speeds at initialisation, and whether the book's single
    initialisation lies inside our range over seeds."""
    book = BOOK_SPEED_START[net.depth]
    ours = np.median(net.start_speeds, axis=0)
    worst = max(abs(o / b - 1) for o, b in zip(ours, book, strict=True))
    text = (
        f"{net.depth} hidden layers {speeds_text(ours)}, every layer within "
        f"{100 * worst:.0f} % of the book's {speeds_text(book)}"
    )
    if len(net.start) == 1:
        return text
    low, high = net.start_speeds.min(axis=0), net.start_speeds.max(axis=0)
    within = sum(lo <= b <= hi for lo, b, hi in zip(low, book, high, strict=True))
    return f"{text} ({within} of {len(book)} of the book's values inside our range over seeds)"


def speed_training_findings(result: list[SpeedRun]) -> str:
    """How the speeds and the ratio between the layers change with training, against the
    book's end points."""
    epochs = len(result[0].speeds) - 1
    lines = "\n".join(f"- {speed_training_line(net)}" for net in result)
    relu = [net for net in result if net.activation == "relu"]
    faster = sum(net.speeds[-1, 0] > net.speeds[-1, -1] for net in relu)
    return f"""During training (seed 0, {epochs} epochs):

{lines}

With ReLU the first hidden layer ends faster than the last in {faster} of {len(relu)} \
networks.  Each end point, ours and the book's, is a single run (we train one seed per \
network), so how much of the gap between them another random start would close is not \
measured, and no other cause of it was."""


def speed_training_line(net: SpeedRun) -> str:
    """One network's speeds at the end against the start, and its first / last ratio
    against the book's (sigmoid only)."""
    falls = net.speeds[-1] < net.speeds[0]
    slowest = np.mean(net.speeds[:, 0] == net.speeds.min(axis=1))
    end = net.speeds[-1, 0] / net.speeds[-1, -1]
    line = (
        f"{net.activation}, {net.depth} hidden layers: "
        + (
            "every layer's speed is lower at the end than at the start"
            if falls.all()
            else f"{falls.sum()} of {net.depth} layers' speeds are lower at the end"
        )
        + f"; first / last {ratio_text(net.speeds[0, 0] / net.speeds[0, -1])} at "
        f"initialisation, {ratio_text(end)} at the end"
    )
    if net.activation == "sigmoid":
        book = BOOK_SPEED_END[net.depth][0] / BOOK_SPEED_END[net.depth][-1]
        line += f" (the book: {ratio_text(book)}; ours is {end / book:.2f} times that)"
    return f"{line}; the first hidden layer is the slowest in {100 * slowest:.0f} % of the epochs"
