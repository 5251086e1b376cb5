"""Robustness and doubt: how our models hold up outside MNIST's test set, and whether
they know when they are shown something that is not a digit.

    python benchmarks/robustness.py [--models NAME ...] [--images N] [--no-train]
                                    [--out docs/results/robustness.md]

Each model is its preset trained at seed 0 on the 50,000 training images.  The small ones
(book-ch1, mlp-web) are trained here into out/robustness/ in a few minutes; the
convolutional ones are shared with benchmarks/cnn.py in out/cnn/ (20-60 minutes each on
2 cores; started again, a run resumes from its last epoch).  ``--no-train`` reports the
models already trained and lists the others.

Every model is calibrated on the validation set (a temperature, and the threshold below
which an answer is "unsure"; for a convolutional network also the distance from its
digits' features beyond which an image is unlike any digit, the two thresholds together
flagging 1 % of validation digits), then scored:

- on each condition of digitlab.evaluation.conditions, applied to the first ``--images``
  test images (all 10,000 by default; the distorted sets are cached in out/robustness/);
- for doubt: the share of MNIST test digits and of non-digits called unsure, and the
  AUROC of the calibrated top probability and of the feature distance, on Fashion-MNIST's
  test set (Debian's dataset-fashion-mnist; skipped with a note when it is not installed)
  and on generated non-digits: kinds some models train on, and kinds none does.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from report import machine, table, write

from digitlab.data import Dataset, Split, load_mnist
from digitlab.data.fashion import load_fashion_mnist_test
from digitlab.errors import DataError, DigitlabError
from digitlab.evaluation.calibration import UNSURE_SHARE, calibrated, unsure_threshold
from digitlab.evaluation.conditions import CONDITIONS, distort
from digitlab.evaluation.doubt import DoubtScore, doubt_scores, generated_non_digits
from digitlab.evaluation.robustness import RobustnessRow, robustness
from digitlab.nn.model_file import Model, load_model
from digitlab.presets import PRESETS, seeded_name
from digitlab.train.callbacks import EpochLog
from digitlab.train.to_file import train_to_file

MODELS = ["book-ch1", "mlp-web", "book-ch6-conv2", "cnn-best", "cnn-robust"]
#: Where each model is kept: the convolutional ones share benchmarks/cnn.py's folder.
FOLDERS = {
    "book-ch6-conv2": Path("out/cnn"),
    "cnn-best": Path("out/cnn"),
    "cnn-robust": Path("out/cnn"),
}
WORK = Path("out/robustness")
#: How many images of each generated non-digit set are scored.
GENERATED_COUNT = 2_000
#: The targets issue 13 set, shown beside the measurements.
FASHION_TARGET, DIGITS_TARGET = 0.90, 0.02


def model_path(preset: str) -> Path:
    return FOLDERS.get(preset, WORK) / f"{seeded_name(preset, 0)}.npz"


def trained_models(names: list[str], data: Dataset, train: bool) -> dict[str, Model]:
    """The models that exist (training the missing ones first unless ``train`` is off),
    each calibrated on the validation set if it was not already."""
    models = {}
    for name in names:
        path = model_path(name)
        if train:
            train_to_file(PRESETS[name].spec, data, path, [EpochLog(name)])
        if path.exists():
            model = load_model(path)
            # calibrated here even if it was before, so that every model is judged by
            # this version's calibration (an older one lacks the digit features), each
            # fitted on the first 20,000 training images and the validation set
            models[name] = calibrated(model, data.validation, data.train)
        else:
            print(f"{name}: not trained yet ({path}); run without --no-train", file=sys.stderr)
    return models


def distorted_sets(test: Split) -> dict[str, np.ndarray]:
    """Every condition's inputs for ``test``, cached (the photographs take minutes)."""
    cache = WORK / f"conditions-{len(test)}.npz"
    names = [condition.name for condition in CONDITIONS]
    if cache.exists():
        with np.load(cache) as stored:
            if sorted(stored.files) == sorted(names):
                return {name: stored[name] for name in names}
    sets = {}
    for condition in CONDITIONS:
        print(f"distorting the test set: {condition.name}", file=sys.stderr)
        sets[condition.name] = distort(condition, test.images)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **sets)
    return sets


def doubt(models: dict[str, Model], data: Dataset) -> dict[str, list[DoubtScore]]:
    """Each model's doubt table: the test digits, Fashion-MNIST, the generated sets."""
    others = generated_non_digits(GENERATED_COUNT, data.train.images)
    try:
        others = {"Fashion-MNIST test": load_fashion_mnist_test().images, **others}
    except DataError as error:
        print(f"note: {error}; Fashion-MNIST rows left out", file=sys.stderr)
    tables = {}
    for name, model in models.items():
        answers = {key: model.answers(images) for key, images in others.items()}
        tables[name] = doubt_scores(model.answers(data.test.images), answers)
    return tables


@dataclass(frozen=True)
class JudgeRow:
    """One non-digit set's flagged share under each judge alone and under both."""

    name: str
    probability: float
    distance: float
    both: float


def judge_comparison(model: Model, data: Dataset) -> list[JudgeRow]:
    """How the default model's two judges fare alone and together on the sets that chose
    between them: validation digits (each judge alone at its own 1 % threshold) and the
    generated non-digits.  Fashion-MNIST has no part in it."""
    if model.calibration is None or model.calibration.digit_features is None:
        return []
    validation = model.answers(data.validation.images)
    alone_below = unsure_threshold(validation.probabilities.max(axis=1))
    alone_above = float(np.quantile(validation.distances, 1 - UNSURE_SHARE))
    sets = {
        "MNIST test digits": data.test.images,
        **generated_non_digits(GENERATED_COUNT, data.train.images),
    }
    rows = []
    for name, images in sets.items():
        answers = model.answers(images)
        rows.append(
            JudgeRow(
                name,
                float((answers.probabilities.max(axis=1) < alone_below).mean()),
                float((answers.distances > alone_above).mean()),
                float(answers.unsure.mean()),
            )
        )
    return rows


def judges_section(rows: list[JudgeRow] | None) -> str:
    if not rows:
        return ""
    body = [
        [row.name, *(f"{100 * v:.1f}" for v in (row.probability, row.distance, row.both))]
        for row in rows
    ]
    return (
        f"Why two judges: `{DEFAULT}`'s share called unsure by each alone, each at the "
        "threshold that flags 1 % of validation digits by itself, and by both together "
        "(the rule above).  The distance was added, and the feature layer chosen, on the "
        "generated rows only -- above all the unseen kinds -- before Fashion-MNIST was "
        "scored with it; the channels are averaged over positions because that keeps the "
        "stored centres and covariance small (64 channels: under 20 KB), where the full "
        "feature map (1,600 values) would need a 10 MB covariance.\n\n"
        + table(["images", "top probability alone %", "distance alone %", "both %"], body)
    )


def examples_figure(sets: dict[str, np.ndarray], path: Path) -> None:
    """The first test digit under every condition, side by side."""
    fig, axes = plt.subplots(1, len(sets), figsize=(1.1 * len(sets), 1.5))
    for axis, (name, images) in zip(axes, sets.items(), strict=True):
        axis.imshow(images[0].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        axis.set_title(name.replace(" ", "\n"), fontsize=7)
        axis.axis("off")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")


def interval(accuracy: float, n: int) -> float:
    """Half-width of the 95 % interval of an accuracy measured on ``n`` images (normal
    approximation to the binomial): the sampling noise of the test images alone."""
    return 1.96 * float(np.sqrt(accuracy * (1 - accuracy) / n))


def robustness_section(rows: list[RobustnessRow], n: int) -> str:
    names = list(rows[0].accuracy)
    body = [
        [row.model, *(f"{100 * row.accuracy[c]:.2f}" for c in names), f"**{100 * row.mean:.2f}**"]
        for row in sorted(rows, key=lambda r: r.mean)
    ]
    worst = max(interval(v, n) for row in rows for v in row.accuracy.values())
    return (
        table(["model", *names, "mean (all but clean)"], body)
        + f"\n\nAccuracy in % on {n:,} test images per condition.  The sampling noise of "
        f"{n:,} images is at most ±{100 * worst:.2f} points (95 %) for any cell here; "
        "each model is one training run (seed 0), so differences between models of a few "
        "tenths of a point are not shown to be real, while differences of points are."
    )


def doubt_section(tables: dict[str, list[DoubtScore]], models: dict[str, Model]) -> str:
    sets = [score.name for score in next(iter(tables.values()))]
    header = ["model", "temperature", "unsure below", "unlike digits above"]
    header += [
        f"{name}: unsure %" + ("" if i == 0 else " (AUROC: top probability / distance)")
        for i, name in enumerate(sets)
    ]
    body = []
    for name, scores in tables.items():
        calibration = models[name].calibration
        unlike = "—" if calibration.unlike_above is None else f"{calibration.unlike_above:.1f}"
        cells = [f"{100 * scores[0].flagged:.2f}"]
        cells += [
            f"{100 * s.flagged:.1f} ({s.auroc:.3f} / "
            + ("—" if s.distance_auroc is None else f"{s.distance_auroc:.3f}")
            + ")"
            for s in scores[1:]
        ]
        body.append(
            [
                name,
                f"{calibration.temperature:.2f}",
                f"{calibration.unsure_below:.3f}",
                unlike,
                *cells,
            ]
        )
    return table(header, body)


def calibration_section(models: dict[str, Model]) -> str:
    body = [
        [
            name,
            "{:.4f} → {:.4f}".format(*model.calibration.validation_nll),
            f"{100 * model.calibration.validation_ece[0]:.2f} → "
            f"{100 * model.calibration.validation_ece[1]:.2f}",
        ]
        for name, model in models.items()
    ]
    return table(["model", "validation NLL (raw → calibrated)", "validation ECE % (15 bins)"], body)


DEFAULT = "cnn-robust"


def targets_section(
    rows: list[RobustnessRow],
    tables: dict[str, list[DoubtScore]],
    models: dict[str, Model],
) -> str:
    """Issue 13's targets, each beside what was measured here (only for the models this
    run scored)."""
    by_name = {row.model: row for row in rows}
    lines = []

    def check(met: bool) -> str:
        return "met" if met else "**not met**"

    if DEFAULT in by_name:
        row, test = by_name[DEFAULT], models[DEFAULT].metrics.test_accuracy
        best = max(rows, key=lambda r: r.mean)
        lines += [
            f"- `{DEFAULT}` (the bundled model) on MNIST's test set: {100 * test:.2f} % "
            f"(target ≥ 99.5 %: {check(test >= 0.995)}).",
            f"- `{DEFAULT}`'s mean over the conditions: {100 * row.mean:.2f} % (target ≥ 97 %: "
            f"{check(row.mean >= 0.97)}); the best mean of the models scored is "
            f"`{best.model}`'s, {100 * best.mean:.2f} % (target: `{DEFAULT}`'s: "
            f"{check(best.model == DEFAULT)}).",
        ]
    if "cnn-best" in by_name:
        best = by_name["cnn-best"].accuracy
        gap = best["photo"] - best["clean"]
        lines.append(
            f"- `cnn-best` on the photo condition: {100 * best['photo']:.2f} % against "
            f"{100 * best['clean']:.2f} % clean, {100 * gap:+.2f} points (target: within "
            f"1 point: {check(gap >= -0.01)})."
        )
    if DEFAULT in tables:
        scores = {score.name: score for score in tables[DEFAULT]}
        digits = scores["MNIST test digits"].flagged
        line = (
            f"- `{DEFAULT}` calls {100 * digits:.2f} % of MNIST's test digits unsure (target "
            f"≤ {100 * DIGITS_TARGET:.0f} %: {check(digits <= DIGITS_TARGET)})"
        )
        fashion = scores.get("Fashion-MNIST test")
        if fashion is not None:
            line += (
                f" and {100 * fashion.flagged:.1f} % of Fashion-MNIST's test images (target "
                f"≥ {100 * FASHION_TARGET:.0f} %: {check(fashion.flagged >= FASHION_TARGET)}; "
                f"AUROC {fashion.auroc:.3f} by the top probability"
                + (
                    ""
                    if fashion.distance_auroc is None
                    else f", {fashion.distance_auroc:.3f} by the distance from the digits' features"
                )
                + ")"
            )
        lines.append(line + ".")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=sorted(PRESETS))
    parser.add_argument("--images", type=int, default=10_000, help="test images per condition")
    parser.add_argument("--no-train", action="store_true", help="score the trained models only")
    parser.add_argument("--out", type=Path, default=Path("docs/results/robustness.md"))
    args = parser.parse_args()
    data = load_mnist()
    models = trained_models(args.models, data, train=not args.no_train)
    if not models:
        sys.exit("error: no trained models to score")
    test = data.test.head(args.images)
    sets = distorted_sets(test)
    rows = robustness({name: [model] for name, model in models.items()}, sets, test.labels)
    figures = args.out.with_suffix("")
    figures.mkdir(parents=True, exist_ok=True)
    examples_figure(sets, figures / "conditions.png")
    command = "python benchmarks/robustness.py" + (
        "" if args.models == MODELS else " --models " + " ".join(args.models)
    )
    tables = doubt(models, data)
    judges = judge_comparison(models[DEFAULT], data) if DEFAULT in models else None
    text = f"""# Robustness and doubt

{machine()}

Reproduce: `{command}` (the distorted test sets are cached in `out/robustness/`; the
convolutional models are trained by the same command, or by `python benchmarks/cnn.py`).

## In short

{targets_section(rows, tables, models)}

## Accuracy outside MNIST's test set

![the first test digit under every condition]({figures.name}/conditions.png)

{robustness_section(rows, len(test))}

What each condition does (one fixed, seeded severity each, in the spirit of MNIST-C;
`digitlab.evaluation.conditions`):

{chr(10).join(f"- **{c.name}**: {c.description}" for c in CONDITIONS)}

`cnn-robust` trains on random warps (rotation, slant, size, shift), elastic wobble,
thicker, thinner and broken strokes, Gaussian blur, Gaussian noise and washed-out
contrast (`augment = "robust"`, `digitlab.data.augment.robust_distortion`), at random
strengths; it never sees shot noise, impulse noise or motion blur, and the to_mnist
conditions (translation, inverted, photo) test the preprocessing every model shares.

## Confidence: calibration

A temperature fitted on the validation set (`digitlab calibrate MODEL`; training does it
at the end) changes no answer, only how sure each answer claims to be:

{calibration_section(models)}

## Doubt: saying "unsure"

An answer is *unsure* when the calibrated top probability is below the model's
threshold (torn between digits) or, for a convolutional network, when the image's
features lie further than the model's distance from every digit's (unlike any digit:
`digitlab.nn.novelty`: the squared Mahalanobis distance of what the convolutions hand
to the dense layers, each channel averaged over positions, to the nearest digit's mean,
with one covariance fitted on 20,000 training digits).  The thresholds are chosen on
validation digits so that, together, they flag 1 % of them.  Fashion-MNIST is a test
only: no model trains on it and it chooses nothing.  Targets (issue 13): at least
{100 * FASHION_TARGET:.0f} % of Fashion-MNIST called unsure while at most
{100 * DIGITS_TARGET:.0f} % of MNIST test digits are.  AUROC: the chance a test digit gets
a higher top probability (or a smaller distance) than a non-digit.

{doubt_section(tables, models)}

{judges_section(judges)}

`cnn-robust` trains with outlier exposure: generated non-digits of the same *kinds* as
the "generated letters" and "generated blobs" rows (other images, other seed) with the
target "all digits equally likely", so for it those rows are easier than Fashion-MNIST,
which it has never seen.  The three "unseen kinds" rows are generated too, but no model
trains on their kinds (other capital letters, random scribbles, two digits drawn across
each other): they show how far the doubt it learned carries to non-digits it was never
shown, as Fashion-MNIST does, without using Fashion-MNIST to choose anything.
"""
    write(args.out, text)


if __name__ == "__main__":
    try:
        main()
    except DigitlabError as error:
        sys.exit(f"error: {error}")
