"""How the accuracy benchmark names the seeds a row stands for, and what it says of the
moving average of the weights."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import cnn

from digitlab.evaluation.scoring import evaluate
from digitlab.evaluation.tta import shift_averaged
from digitlab.nn.model_file import load_model
from digitlab.presets import Preset
from digitlab.spec import make_spec
from digitlab.train.history import EpochRecord, History
from digitlab.train.to_file import history_path_for, train_to_file


def test_consecutive_seeds_read_as_a_range() -> None:
    assert cnn.seed_list([0, 1, 2, 3]) == "0–3"
    assert cnn.seed_list([2, 3, 4]) == "2–4"


def test_two_seeds_and_gaps_are_listed() -> None:
    assert cnn.seed_list([0, 1]) == "0, 1"
    assert cnn.seed_list([0, 2, 3]) == "0, 2, 3"
    assert cnn.seed_list([5]) == "5"


def write_history(path: Path, records: list[EpochRecord]) -> Path:
    """A model path whose history file holds ``records`` (the section reads only that)."""
    History(records).write(history_path_for(path))
    return path


def averaged_epoch(epoch: int, averaged: float, raw: float | None) -> EpochRecord:
    return EpochRecord(
        epoch, 0.001, 0.1, 0.99, 0.1, averaged, averaged + 0.001, 60.0,
        raw_validation_accuracy=raw, raw_test_accuracy=None if raw is None else raw + 0.002,
    )  # fmt: skip


def test_the_averaging_section_pairs_each_run_with_its_raw_weights(tmp_path: Path) -> None:
    runs = {
        0: write_history(tmp_path / "a.npz", [averaged_epoch(1, 0.9950, 0.9948),
                                              averaged_epoch(2, 0.9960, 0.9945)]),
        1: write_history(tmp_path / "b.npz", [averaged_epoch(1, 0.9955, 0.9949)]),
    }  # fmt: skip
    section = cnn.averaging_section("cnn-record", runs)
    # seed 0: the average is best at epoch 2, the raw weights at epoch 1
    assert "| seed 0 | 2 | 99.60 | 99.70 | 1 | 99.48 | 99.68 | +0.12 / +0.02 |" in section
    assert "| seed 1 | 1 | 99.55 | 99.65 | 1 | 99.49 | 99.69 | +0.06 / -0.04 |" in section
    # paired over the two runs: validation gains +0.12 and +0.06, test +0.02 and -0.04
    assert "Over seeds 0, 1, paired run by run: validation +0.09 points (95 % interval" in section
    assert "; test -0.01 points (95 % interval" in section


def test_runs_without_raw_accuracies_give_no_averaging_section(tmp_path: Path) -> None:
    runs = {0: write_history(tmp_path / "a.npz", [averaged_epoch(1, 0.995, None)])}
    assert cnn.averaging_section("cnn-best", runs) == ""


def test_the_tta_section_puts_each_run_beside_itself_with_shifts(mnist, tmp_path: Path) -> None:
    spec = make_spec({"layers": ["conv:4:5", "pool:2", "dense:10"], "cost": "log-likelihood",
                      "epochs": 1, "train_size": 500, "eta": 0.1})  # fmt: skip
    runs = {}
    for seed in (0, 1):
        runs[seed] = tmp_path / f"s{seed}.npz"
        train_to_file(spec.with_overrides(seed=seed), mnist, runs[seed])
    section = cnn.tta_section("tiny", runs, mnist)
    for seed, path in runs.items():
        model = load_model(path)
        shifted = [shift_averaged(model)]
        cells = [
            f"{100 * evaluate(models, split).accuracy:.2f}"
            for models in (shifted, [model])
            for split in (mnist.validation, mnist.test)
        ]
        row = f"| seed {seed} | 1 | {cells[0]} | {cells[1]} | 1 | {cells[2]} | {cells[3]} | "
        assert row in section
    assert "Over seeds 0, 1, paired run by run: validation " in section and "; test " in section


def test_a_variant_is_set_beside_its_base_preset_seed_by_seed(
    mnist, tmp_path: Path, monkeypatch
) -> None:
    spec = make_spec({"layers": ["conv:4:5", "pool:2", "dense:10"], "cost": "log-likelihood",
                      "epochs": 1, "train_size": 500, "eta": 0.1})  # fmt: skip
    base = Preset("tiny", spec, "a tiny network")
    variant = Preset("tiny-fast", spec.with_overrides(eta=0.3), "a tiny network at eta 0.3",
                     varies="tiny")  # fmt: skip
    monkeypatch.setattr(cnn, "PRESETS", {"tiny": base, "tiny-fast": variant})
    monkeypatch.setattr(cnn, "WORK", tmp_path)
    runs = {}
    for seed in (0, 1, 2):
        runs[seed] = cnn.model_path(variant, seed)
        train_to_file(variant.spec.with_overrides(seed=seed), mnist, runs[seed])
    for seed in (0, 1):  # the base preset has no run at seed 2
        train_to_file(base.spec.with_overrides(seed=seed), mnist, cnn.model_path(base, seed))
    section = cnn.variant_section(variant, runs, mnist)
    assert "## `tiny-fast` against `tiny`" in section
    assert "`tiny-fast` is a tiny network at eta 0.3." in section
    for seed in (0, 1):
        cells = []
        for preset in (variant, base):
            metrics = load_model(cnn.model_path(preset, seed)).metrics
            cells += [str(metrics.best_epoch), f"{100 * metrics.validation_accuracy:.2f}",
                      f"{100 * metrics.test_accuracy:.2f}"]  # fmt: skip
        assert f"| seed {seed} | {' | '.join(cells)} | " in section
    assert "| seed 2 |" not in section
    assert "Over seeds 0, 1, paired run by run: validation " in section
    # how sure each run is, before calibration, from the evaluation module itself
    for seed in (0, 1):
        cells = []
        for preset in (variant, base):
            scores = evaluate([load_model(cnn.model_path(preset, seed))], mnist.validation)
            cells += [f"{scores.uncalibrated.nll:.4f}", f"{100 * scores.uncalibrated.ece:.2f}"]
        assert f"| seed {seed} | {' | '.join(cells)} |" in section
    assert "Over seeds 0, 1, paired run by run: NLL " in section
    assert "; calibration error " in section


def test_a_preset_that_varies_none_has_no_variant_section(mnist) -> None:
    assert cnn.variant_section(cnn.PRESETS["cnn-best"], {}, mnist) == ""
