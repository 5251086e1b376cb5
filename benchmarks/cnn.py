"""Convolutional networks: the book's chapter 6, our best network and the ensembles.

    python benchmarks/cnn.py [--presets NAME ...] [--ensembles NAME ...] [--seeds N]
                             [--no-train] [--lanes N] [--tta] [--choose]
                             [--out docs/results/cnn.md]

Each preset is trained on the 50,000 training images (seed 0); its figure is the test
accuracy at the epoch of best validation accuracy, as the book reports it.  With
``--seeds N`` each preset is trained at seeds 0 to N-1 as well, and a row of their mean
and its 95 % interval follows the seed-0 row: one seed's figure is not the recipe's.
An ensemble averages the probabilities of its members (presets at several seeds; seed 0
is the single-network row).  The runs take hours on a 2-core CPU, so every run
checkpoints each epoch and keeps its model in out/cnn/: started again, the script
resumes unfinished runs and reuses finished ones.  A finished run also leaves a record in
docs/results/runs/ (its spec, history and probabilities on the validation and test
images; see run_records.py), to be committed with the results: the tables, comparisons
and ensembles are built from the records, so they need no run trained again on a machine
without out/cnn/.  ``--no-train`` writes the table from the finished runs only and lists
the others as not run yet.  ``--lanes 2`` trains two
networks at a time, each in its own process on one core: on a 2-core CPU that finishes a
set of runs sooner than running them one after another on both cores, as a single run
leaves the second core idle for much of each step.

A preset trained with a moving average of the weights gets a section of its own: each
run's kept weights against its raw ones, which the run measures beside them.  With
``--tta`` every preset also gets one for test-time augmentation.  Both compare one run
measured two ways, so their differences carry no seed-to-seed noise.  A preset that
varies another in one ingredient (``Preset.varies``) gets a section setting each of its
runs beside the other preset's run at the same seed: two runs, so that difference does
carry the noise, and the interval over the seeds is what to read.

With ``--choose``, an ensemble is chosen on the validation images from every finished
run of the listed presets (members and their number; greedy forward selection, as
``digitlab evaluate --choose`` does), and its test accuracy given.

Next to the table goes its reproduction check (cnn.checks.json beside cnn.md): the exact
figures of its cheapest row, book-ch6-fc at seed 0 (under a minute to train), which the
test suite (tests/test_reproduce.py) retrains and compares, so an engine change that moves
them fails the tests until the table is regenerated.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from report import machine, repository_relative, table, write
from run_records import (
    RECORDS,
    RunRecord,
    RunRecordError,
    load_record,
    record_from_model,
    save_record,
)
from threadpoolctl import threadpool_limits

from digitlab.data import Dataset, load_mnist
from digitlab.errors import DigitlabError
from digitlab.evaluation.calibration import BINS
from digitlab.evaluation.scoring import counted, evaluate
from digitlab.evaluation.selection import choose_from
from digitlab.evaluation.tta import shift_averaged
from digitlab.experiments.effects import difference, interval
from digitlab.experiments.statistics import compare_paired, estimate
from digitlab.nn.model_file import Model, load_model
from digitlab.presets import ENSEMBLES, PRESETS, Ensemble, Preset, seeded_name
from digitlab.train.callbacks import EpochLog
from digitlab.train.reproduce import Check, check_from_history, checks_path_for, write_checks
from digitlab.train.to_file import has_trained, train_to_file

CHAPTER_6 = [name for name in PRESETS if name.startswith("book-ch6-")]
OURS = ["cnn-5x5", "cnn-best"]
#: The row the test suite retrains to tell whether the table still reproduces: the
#: cheapest one (a dense network, about 45 s on 2 cores).  It exercises what every row
#: shares -- data, shuffling, initialisation, sigmoid, softmax + log-likelihood, SGD, the
#: choice of the best epoch -- though not the convolution or pooling themselves.
CHECKED = "book-ch6-fc"
WORK = Path("out/cnn")  # models and checkpoints; their records go to RECORDS
HEADER = [
    "preset",
    "network",
    "book %",
    "ours: test % at best validation epoch",
    "ours − book",
    "validation %",
    "best epoch",
    "training time (min)",
    "wall time (min)",
    "command",
]


def model_path(preset: Preset, seed: int) -> Path:
    return WORK / f"{seeded_name(preset.name, seed)}.npz"


def record_path(preset: Preset, seed: int) -> Path:
    return RECORDS / f"{seeded_name(preset.name, seed)}.npz"


def ensure_trained(preset: Preset, seed: int, data: Dataset, train: bool) -> RunRecord | None:
    """The record of ``preset``'s run at ``seed``: the committed one if there is one;
    else the run's model is trained (or resumed) now if ``train``, and a finished model
    is recorded.  None when neither a record nor a finished model is there.  A record or
    model of another spec there is an error: it would be reported as this preset's run."""
    path, record_file = model_path(preset, seed), record_path(preset, seed)
    spec = preset.spec.with_overrides(seed=seed)
    if record_file.exists():
        record = load_record(record_file)
        if record.spec != spec:
            raise RunRecordError(
                f"{record_file} records a run of another spec than {preset.name}'s at seed "
                f"{seed}; delete it to record a new run"
            )
        if path.exists() and load_model(path).metrics != record.metrics:
            raise RunRecordError(
                f"{path} is not the run {record_file} records (its figures differ): delete "
                "the record to record this model, or move the model away"
            )
        return record
    if train:
        name = seeded_name(preset.name, seed)
        print(f"{name}: training into {path}", file=sys.stderr)
        train_to_file(spec, data, path, [EpochLog(name)])
    if not has_trained(spec, path):
        return None
    record = record_from_model(path, data, machine())
    save_record(record, record_file)
    print(f"wrote {record_file}", file=sys.stderr)
    return record


def train_in_lane(preset: str, seed: int) -> None:
    """One run in a worker process of its own, on one core."""
    threadpool_limits(1)
    ensure_trained(PRESETS[preset], seed, load_mnist(), True)


def train_all(runs: list[tuple[str, int]], data: Dataset, lanes: int) -> None:
    """Train (or resume, or keep) each (preset, seed) run, ``lanes`` at a time."""
    if lanes == 1:
        for preset, seed in runs:
            ensure_trained(PRESETS[preset], seed, data, True)
        return
    spawn = multiprocessing.get_context("spawn")  # no forking of a process that has threads
    with ProcessPoolExecutor(lanes, mp_context=spawn) as pool:
        for done in [pool.submit(train_in_lane, *run) for run in runs]:
            done.result()


def time_cells(runs: list[tuple[float, float | None]], suffix: str = "") -> list[str]:
    training = sum(run[0] for run in runs)
    walls = [run[1] for run in runs]
    wall = "—" if None in walls else f"{sum(walls):.0f}{suffix}"
    return [f"{training:.0f}{suffix}", wall]


def versus_book(ours: float, book: float | None) -> list[str]:
    if book is None:
        return ["—", f"{ours:.2f}", "—"]
    return [f"{book:.2f}", f"{ours:.2f}", f"{ours - book:+.2f}"]


def command_for(preset: Preset, seed: int = 0) -> str:
    return f"digitlab train --preset {preset.name} --seed {seed}"


def check_for(preset: Preset, record: RunRecord) -> Check:
    """The reproduction check of a finished seed-0 run: its figures from the history it
    recorded, exactly as the table shows them."""
    name = f"{preset.name}, seed 0"
    return check_from_history(name, command_for(preset), record.spec, record.history)


def preset_row(preset: Preset, record: RunRecord) -> list[object]:
    metrics = record.metrics
    return [
        f"`{preset.name}`",
        preset.summary,
        *versus_book(100 * metrics.test_accuracy, preset.book_accuracy),
        f"{100 * metrics.validation_accuracy:.2f}",
        f"{metrics.best_epoch} of {metrics.epochs_run}",
        *time_cells([record.minutes()]),
        f"`{command_for(preset)}`",
    ]


def seed_list(seeds: list[int]) -> str:
    """``0-3`` (with an en dash) for a run of consecutive seeds, else ``0, 2, 3``."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def seeds_row(preset: Preset, runs: dict[int, RunRecord]) -> list[object]:
    """A preset at several seeds (``runs``: each finished seed's record): the mean test
    and validation accuracy, each with its 95 % interval (Student's t) and range."""
    metrics = [record.metrics for record in runs.values()]
    test = estimate([m.test_accuracy for m in metrics])
    validation = estimate([m.validation_accuracy for m in metrics])
    seeds = seed_list(sorted(runs))
    return [
        f"`{preset.name}`, seeds {seeds}",
        f"the mean over seeds; test {interval(test)}; validation {interval(validation)}",
        *versus_book(100 * test.mean, preset.book_accuracy),
        f"{100 * validation.mean:.2f}",
        "—",
        *time_cells([record.minutes() for record in runs.values()], " in all"),
        f"`digitlab train --preset {preset.name} --seed S`, S = {seeds}",
    ]


@dataclass(frozen=True)
class Measured:
    """One way of measuring a finished run: the epoch whose weights were measured, and
    their validation and test accuracy (None when the run did not measure the test set)."""

    epoch: int
    validation: float
    test: float | None


def cells(measured: Measured) -> list[str]:
    test = "—" if measured.test is None else f"{100 * measured.test:.2f}"
    return [str(measured.epoch), f"{100 * measured.validation:.2f}", test]


def paired_section(
    title: str, intro: str, names: tuple[str, str], pairs: dict[int, tuple[Measured, Measured]]
) -> str:
    """A results section comparing each run measured two ways (``pairs``: seed -> (with,
    without)), with the mean gain over seeds by a paired t-test; "" without pairs."""
    if not pairs:
        return ""
    with_, without = names
    header = ["run", f"{with_}: epoch", "validation %", "test %"]
    header += [f"{without}: epoch", "validation %", "test %", "gain, validation / test (points)"]
    rows = []
    for seed, (kept, other) in sorted(pairs.items()):
        gain = f"{100 * (kept.validation - other.validation):+.2f} / "
        gain += "—" if None in (kept.test, other.test) else f"{100 * (kept.test - other.test):+.2f}"
        rows.append([f"seed {seed}", *cells(kept), *cells(other), gain])
    summary = ""
    if len(pairs) > 1:
        measured = [pairs[seed] for seed in sorted(pairs)]
        gains = []
        for split in ("validation", "test"):
            if any(None in (getattr(a, split), getattr(b, split)) for a, b in measured):
                continue
            test = compare_paired([getattr(a, split) for a, _ in measured],
                                  [getattr(b, split) for _, b in measured])  # fmt: skip
            alike = "" if test.paired else " by Welch's test, as every run gained alike"
            gains.append(f"{split} {difference(test)}{alike}")
        summary = f"\n\nOver seeds {seed_list(sorted(pairs))}, paired run by run: "
        summary += "; ".join(gains) + "."
    return f"\n\n## {title}\n\n{intro}\n\n{table(header, rows)}{summary}\n"


def averaging_section(name: str, runs: dict[int, RunRecord]) -> str:
    """What the moving average bought in each finished run of preset ``name`` that
    recorded its raw weights' accuracies, and over the seeds; "" if none did."""
    pairs = {}
    for seed, record in runs.items():
        effect = record.history.averaging_effect()
        if effect is not None:
            kept = effect.averaged
            pairs[seed] = (
                Measured(kept.epoch, kept.validation_accuracy, kept.test_accuracy),
                Measured(
                    effect.raw_epoch, effect.raw_validation_accuracy, effect.raw_test_accuracy
                ),
            )
    return paired_section(
        f"`{name}`: what the moving average of the weights bought",
        "The average never feeds back into training, so each run's raw weights, measured "
        "beside the average after every epoch, are exactly the same run without it: the "
        "average's effect with no seed-to-seed noise.  Each side is taken at its own best "
        "validation epoch, as each would have been reported.",
        ("the average (kept)", "the raw weights"),
        pairs,
    )


def tta_section(name: str, runs: dict[int, Path], data: Dataset) -> str:
    """Each finished run of preset ``name`` (``runs``: seed -> its model, which this needs
    beyond the record) measured with and without test-time augmentation (its image and
    1-pixel shifts, averaged), and over the seeds."""

    def measured(model: Model, answering: Model) -> Measured:
        return Measured(
            model.metrics.best_epoch,
            evaluate([answering], data.validation).accuracy,
            evaluate([answering], data.test).accuracy,
        )

    pairs = {}
    for seed, path in runs.items():
        model = load_model(path)
        # both sides measured here, in one process, not one from training's own record
        pairs[seed] = (measured(model, shift_averaged(model)), measured(model, model))
    return paired_section(
        f"`{name}`: what test-time augmentation buys",
        "The kept weights of each run answer for the image and its four 1-pixel shifts, "
        "their probabilities averaged (`digitlab evaluate --tta`), against the image "
        "alone: the same weights, so again no seed-to-seed noise in the difference.",
        ("with test-time augmentation", "the image alone"),
        pairs,
    )


@dataclass(frozen=True)
class Confidence:
    """How sure a run's kept weights are of their answers on the validation images, before
    any calibration: the mean negative log-likelihood of the true digits, and the expected
    calibration error (how far the confidence it states is from how often it is right)."""

    nll: float
    ece: float


def confidence_of(record: RunRecord, data: Dataset) -> Confidence:
    scores = record.confidence(data.validation)
    return Confidence(scores.nll, scores.ece)


def confidence_part(names: tuple[str, str], pairs: dict[int, tuple[Confidence, Confidence]]) -> str:
    """What an ingredient did to how sure the network is: each pair of runs' validation
    NLL and calibration error, and over the seeds the paired differences."""
    first, second = names
    header = ["run", f"{first}: NLL", "ECE (points)", f"{second}: NLL", "ECE (points)"]
    rows = [
        [f"seed {seed}", f"{a.nll:.4f}", f"{100 * a.ece:.2f}", f"{b.nll:.4f}", f"{100 * b.ece:.2f}"]
        for seed, (a, b) in sorted(pairs.items())
    ]
    summary = ""
    if len(pairs) > 1:
        measured = [pairs[seed] for seed in sorted(pairs)]
        nll = compare_paired([a.nll for a, _ in measured], [b.nll for _, b in measured])
        ece = compare_paired([a.ece for a, _ in measured], [b.ece for _, b in measured])
        nll_text = f"{nll.difference:+.4f}"
        if nll.low is not None:
            nll_text += f" (95 % interval {nll.low:+.4f} to {nll.high:+.4f}, {nll.p_text()})"
        summary = (
            f"\n\nOver seeds {seed_list(sorted(pairs))}, paired run by run: NLL {nll_text}; "
            f"calibration error {difference(ece)}."
        )
    return (
        "\n\nHow sure each run is of its answers, on the validation images and before any "
        "calibration (`digitlab evaluate MODEL --split validation`): the mean negative "
        "log-likelihood of the true digits (lower is better), and the expected calibration "
        "error, the gap between the confidence a network states and how often it is right, "
        f"averaged over {BINS} bins of confidence.  An ingredient can leave the accuracy alone "
        f"and still change these.\n\n{table(header, rows)}{summary}\n"
    )


def variant_section(preset: Preset, runs: dict[int, RunRecord], data: Dataset) -> str:
    """Each finished run of ``preset`` beside the run of the preset it varies at the same
    seed: their accuracies and how sure each is, and the mean differences over the seeds;
    "" for a preset that varies none."""
    if preset.varies is None:
        return ""
    base = PRESETS[preset.varies]
    pairs, confidences = {}, {}
    for seed, record in runs.items():
        base_record = ensure_trained(base, seed, data, False)
        if base_record is not None:
            pairs[seed] = (measured_as_kept(record), measured_as_kept(base_record))
            confidences[seed] = (confidence_of(record, data), confidence_of(base_record, data))
    names = (f"`{preset.name}`", f"`{base.name}`")
    return paired_section(
        f"`{preset.name}` against `{base.name}`",
        f"`{preset.name}` is {preset.summary}.  Each run is set beside the other "
        "preset's run at the same seed, which starts from the same weights; their paths "
        "then part, so unlike the sections that measure one run two ways, each difference "
        "carries the seed-to-seed noise of training, and only the interval over the seeds "
        "says whether the ingredient did anything.  Seeds without a run of both are left "
        "out.",
        names,
        pairs,
    ) + (confidence_part(names, confidences) if confidences else "")


def measured_as_kept(record: RunRecord) -> Measured:
    """A finished run as it was kept: its best validation epoch and that epoch's figures."""
    metrics = record.metrics
    return Measured(metrics.best_epoch, metrics.validation_accuracy, metrics.test_accuracy)


def averaged_accuracy(records: list[RunRecord], split: str, labels: np.ndarray) -> float:
    """The accuracy, in %, of ``records``' probabilities averaged on ``split``, counted
    as ``digitlab evaluate`` counts its models' (calibrated only if all are)."""
    probabilities = np.mean(counted([record.vote(split) for record in records]), axis=0)
    return 100 * float((probabilities.argmax(axis=1) == labels).mean())


def ensemble_row(ensemble: Ensemble, records: list[RunRecord], data: Dataset) -> list[object]:
    def accuracy(split: str) -> float:
        return averaged_accuracy(records, split, getattr(data, split).labels)

    members = [100 * record.metrics.test_accuracy for record in records]
    validation = [100 * record.metrics.validation_accuracy for record in records]
    return [
        f"`{ensemble.name}`",
        f"{ensemble.summary}; members {min(members):.2f}–{max(members):.2f} "
        f"(mean {statistics.mean(members):.2f}; validation mean "
        f"{statistics.mean(validation):.2f})",
        *versus_book(accuracy("test"), ensemble.book_accuracy),
        f"{accuracy('validation'):.2f}",
        "—",
        *time_cells([record.minutes() for record in records], " in all"),
        f"`digitlab train --preset {ensemble.name}`",
    ]


def chosen_ensemble_section(candidates: dict[str, RunRecord], data: Dataset) -> str:
    """An ensemble whose members, and their number, are chosen on the validation images
    from ``candidates`` (run name -> record) by greedy forward selection
    (:mod:`digitlab.evaluation.selection`, as ``digitlab evaluate --choose`` chooses),
    with the test accuracy of what was chosen: the test set plays no part in the choice."""
    names = list(candidates)
    votes = [candidates[name].vote("validation") for name in names]
    choice = choose_from(votes, data.validation.labels)
    members = [candidates[names[index]] for index in choice.members]
    test = averaged_accuracy(members, "test", data.test.labels)
    header = ["step", "run taken", "its validation % alone", "ensemble validation %",
              "ensemble NLL"]  # fmt: skip
    rows = [
        [number, f"`{names[step.member]}`", f"{100 * choice.alone[step.member]:.2f}",
         f"{100 * step.accuracy:.2f}",
         f"{step.nll:.4f}" + (" (calibrated)" if step.calibrated else "")]
        for number, step in enumerate(choice.steps, 1)
    ]  # fmt: skip
    left = [f"`{name}`" for index, name in enumerate(names) if choice.step_of(index) is None]
    left_out = f"Left out: {', '.join(left)}." if left else "Every candidate was taken."
    taken = "The one run taken" if len(members) == 1 else f"The {len(members)} runs taken, averaged"
    return (
        f"\n\n## An ensemble chosen on validation from {len(names)} runs\n\n"
        "Starting from the run with the best validation accuracy, the run whose addition "
        "gives the averaged probabilities the best validation accuracy is taken, one at a "
        "time, until no addition improves it (ties broken by the validation NLL).\n\n"
        f"{table(header, rows)}\n\n{left_out}  {taken}: **{test:.2f} % on test**.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--presets",
        nargs="*",
        default=CHAPTER_6 + OURS,
        choices=list(PRESETS),
        help="single networks (default: chapter 6 and ours)",
    )
    parser.add_argument(
        "--ensembles",
        nargs="*",
        default=list(ENSEMBLES),
        choices=list(ENSEMBLES),
        help="ensembles (default: all)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="train each preset at seeds 0 to N-1 and add a row of their mean (default 1)",
    )
    parser.add_argument(
        "--no-train", action="store_true", help="report finished models only; train nothing"
    )
    parser.add_argument(
        "--lanes",
        type=int,
        default=1,
        help="networks trained at once, one core each (default 1: one at a time, all cores)",
    )
    parser.add_argument(
        "--tta",
        action="store_true",
        help="also measure each finished run with test-time augmentation (about a minute "
        "per convolutional network)",
    )
    parser.add_argument(
        "--choose",
        action="store_true",
        help="also choose an ensemble on validation from every finished run of the presets",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/results/cnn.md"))
    args = parser.parse_args()
    if args.lanes < 1:
        parser.error("--lanes must be at least 1")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    data = load_mnist()
    if not args.no_train:
        runs = [(name, seed) for name in args.presets for seed in range(args.seeds)]
        runs += [member for name in args.ensembles for member in ENSEMBLES[name].members]
        train_all(list(dict.fromkeys(runs)), data, args.lanes)

    rows, missing, checks, sections = [], [], [], []
    candidates: dict[str, RunRecord] = {}
    for name in args.presets:
        record = ensure_trained(PRESETS[name], 0, data, False)
        finished = {0: record} if record else {}
        if record:
            rows.append(preset_row(PRESETS[name], record))
            if name == CHECKED:
                checks.append(check_for(PRESETS[name], record))
        else:
            missing.append(name)
        if args.seeds > 1:
            found = {
                seed: ensure_trained(PRESETS[name], seed, data, False) for seed in range(args.seeds)
            }
            trained = {seed: record for seed, record in found.items() if record}
            if len(trained) > 1:
                rows.append(seeds_row(PRESETS[name], trained))
            finished = trained
            if len(trained) < args.seeds:
                missing.append(f"{name} at seeds {seed_list(sorted(set(found) - set(trained)))}")
        candidates |= {seeded_name(name, seed): record for seed, record in finished.items()}
        sections.append(averaging_section(name, finished))
        sections.append(variant_section(PRESETS[name], finished, data))
        if args.tta:
            models = {seed: model_path(PRESETS[name], seed) for seed in finished}
            on_disk = {seed: path for seed, path in models.items() if path.exists()}
            sections.append(tta_section(name, on_disk, data))
            if len(on_disk) < len(models):
                absent = seed_list(sorted(set(models) - set(on_disk)))
                missing.append(f"test-time augmentation of {name} at seeds {absent} (no model)")
    for name in args.ensembles:
        ensemble = ENSEMBLES[name]
        records = [
            ensure_trained(PRESETS[preset], seed, data, False) for preset, seed in ensemble.members
        ]
        finished = [record for record in records if record]
        if len(finished) == len(records):
            rows.append(ensemble_row(ensemble, finished, data))
        else:
            missing.append(f"{name} ({len(finished)} of {len(records)} members trained)")
    if args.choose and len(candidates) > 1:
        sections.append(chosen_ensemble_section(candidates, data))
    pending = f"\n\nNot run yet: {', '.join(missing)}." if missing else ""
    command = " ".join(["python benchmarks/cnn.py", *sys.argv[1:]])
    write(
        args.out,
        f"""# Convolutional networks: the book's chapter 6 on a CPU, and past it

Generated by `{command}`. {machine()}{pending}

Each network is trained once (seed 0) on the 50,000 training images; the figure is the
test accuracy at the epoch with the best validation accuracy, as the book reports it.
A row "seeds ..." is a network at several seeds: the mean of their figures, with the
95 % interval of the mean (Student's t) and the range.
Training time is the sum of the epochs' training passes; wall time adds the measuring
after each epoch (10,000 training images, the validation and test sets, and for a run
with a moving average of the weights the raw weights on the last two as well), "—" where
the run predates that being timed.
An ensemble averages its members' probabilities; its members are presets at the seeds it
names, and its row gives their range and mean.
Validation accuracy (the last 10,000 training images) is what choices were made on; for
an ensemble it is the averaged probabilities' accuracy on those images.
The runs measured here went two at a time, one core each (as `--lanes 2` runs them),
except where [cnn-recipe.md](cnn-recipe.md) or [recipe.md](recipe.md) says otherwise;
they also show how `cnn-best`, our best ensemble and the record recipe were chosen.

{table(HEADER, rows)}{"".join(sections)}""",
    )
    if checks:
        write_checks(checks_path_for(args.out), repository_relative(args.out), checks)
        print(f"wrote {checks_path_for(args.out)}")
    else:
        print(f"note: no reproduction check, as the table has no {CHECKED} row", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except DigitlabError as error:  # e.g. out/cnn holds a model of an older preset
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        sys.exit("interrupted: run the same command again to resume (runs checkpoint each epoch)")
