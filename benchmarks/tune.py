"""Tuning the bundled model to one person's hand: what it gains on their unseen digits,
and what it keeps on MNIST's.

    python benchmarks/tune.py [--seeds 3] [--out docs/results/tune.md]

No person's digits can be downloaded here, so each "hand" is made from 800 of MNIST's
validation digits (images 5,000-5,799, which the tuning never chooses on) under one
condition of docs/results/robustness.md: ``motion blur``, the bundled model's weakest
(shaky photos), and ``photo``, one it already reads well.  Each seed holds a different
quarter of the hand out, draws a different MNIST mix and runs differently
(:func:`digitlab.train.tune.tune`, as ``digitlab tune`` runs it: 5 epochs).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from report import machine, table, write

from digitlab.data import load_mnist
from digitlab.data.mnist import Split
from digitlab.evaluation.conditions import by_name, distort
from digitlab.predict import load_bundled_model
from digitlab.train.tune import tune

HANDS = ("motion blur", "photo")
PERSON = slice(5000, 5800)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs/results/tune.md"))
    args = parser.parse_args()
    data = load_mnist()
    model = load_bundled_model()
    rows, gains, kept = [], {hand: [] for hand in HANDS}, []
    for hand in HANDS:
        images = distort(by_name(hand), data.validation.images[PERSON], seed=0)
        person = Split(images, data.validation.labels[PERSON])
        for seed in range(args.seeds):
            started = time.perf_counter()
            tuned = tune(model, person, data, seed=seed, report=print)
            seconds = time.perf_counter() - started
            own = tuned.own
            gains[hand].append(own.after.value - own.before.value)
            kept.append(tuned.mnist)
            rows.append([hand, seed, own.text(), tuned.mnist.text(), f"{seconds:.0f}"])
            print(rows[-1])
    summary = "\n".join(
        f"- **{hand}**: held-out accuracy changed by {100 * statistics.mean(values):+.1f} "
        f"points on average over {len(values)} seeds "
        f"({', '.join(f'{100 * v:+.1f}' for v in values)})."
        for hand, values in gains.items()
    )
    forgot = sum(change.p_value < 0.05 for change in kept)
    summary += (
        f"\n- **MNIST's test set**: {kept[0].before.value:.2%} before; after, "
        f"{min(c.after.value for c in kept):.2%} to {max(c.after.value for c in kept):.2%}, "
        f"shown to differ in {forgot} of {len(kept)} runs."
    )
    text = f"""# Tuning the bundled model to one person's hand

{machine()}

Reproduce: `python benchmarks/tune.py --seeds {args.seeds}` (`digitlab tune --images DIR
--out mine.npz` does the same for a folder of your own digits).

Each hand is 800 of MNIST's validation digits (5,000-5,799) under one condition of
[robustness.md](robustness.md): **motion blur** (a shaken camera, the bundled model's
weakest condition) and **photo** (one it already reads well).  Per seed, a quarter of
each digit is held out and a fifth of the rest set aside for choosing; the bundled model
(`cnn-robust`) is trained further for 5 epochs on the remaining 60 % mixed with four
times as many MNIST training digits, at a tenth of its learning rate, keeping the epoch
(and refitting the calibration) best on the set-aside digits and 2,000 MNIST validation
digits.  Accuracy on the held-out quarter and on MNIST's 10,000 test digits,
before → after, with 95 % (Wilson) intervals; the verdict is McNemar's exact test on the
same images' answers.  Times are wall seconds on a machine shared with other work.

## In short

{summary}

## Every run

{table(["hand", "seed", "held-out digits of the hand", "MNIST test", "seconds"], rows)}
"""
    write(args.out, text)


if __name__ == "__main__":
    main()
