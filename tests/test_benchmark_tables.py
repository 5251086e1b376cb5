"""How the accuracy benchmark names the seeds a row stands for, what it says of the
moving average of the weights, of a variant against its base and of a chosen ensemble,
and the run records that let it say so on a machine without the models."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import cnn
import numpy as np
import pytest
import run_records

from digitlab.evaluation.scoring import evaluate
from digitlab.evaluation.selection import choose_members
from digitlab.evaluation.tta import shift_averaged
from digitlab.nn.model_file import TrainingMetrics, load_model
from digitlab.presets import Preset
from digitlab.spec import make_spec
from digitlab.train.history import EpochRecord, History
from digitlab.train.to_file import train_to_file


def test_consecutive_seeds_read_as_a_range() -> None:
    assert cnn.seed_list([0, 1, 2, 3]) == "0–3"
    assert cnn.seed_list([2, 3, 4]) == "2–4"


def test_two_seeds_and_gaps_are_listed() -> None:
    assert cnn.seed_list([0, 1]) == "0, 1"
    assert cnn.seed_list([0, 2, 3]) == "0, 2, 3"
    assert cnn.seed_list([5]) == "5"


def record_of(epochs: list[EpochRecord]) -> run_records.RunRecord:
    """A run record holding ``epochs`` (the averaging section reads only its history)."""
    spec = make_spec({"layers": [784, 10], "epochs": len(epochs)})
    nothing = np.zeros((0, 10), np.float32)
    return run_records.RunRecord(spec, TrainingMetrics(), History(epochs), nothing, None, None, "")


def averaged_epoch(epoch: int, averaged: float, raw: float | None) -> EpochRecord:
    return EpochRecord(
        epoch, 0.001, 0.1, 0.99, 0.1, averaged, averaged + 0.001, 60.0,
        raw_validation_accuracy=raw, raw_test_accuracy=None if raw is None else raw + 0.002,
    )  # fmt: skip


def test_the_averaging_section_pairs_each_run_with_its_raw_weights() -> None:
    runs = {
        0: record_of([averaged_epoch(1, 0.9950, 0.9948), averaged_epoch(2, 0.9960, 0.9945)]),
        1: record_of([averaged_epoch(1, 0.9955, 0.9949)]),
    }  # fmt: skip
    section = cnn.averaging_section("cnn-record", runs)
    # seed 0: the average is best at epoch 2, the raw weights at epoch 1
    assert "| seed 0 | 2 | 99.60 | 99.70 | 1 | 99.48 | 99.68 | +0.12 / +0.02 |" in section
    assert "| seed 1 | 1 | 99.55 | 99.65 | 1 | 99.49 | 99.69 | +0.06 / -0.04 |" in section
    # paired over the two runs: validation gains +0.12 and +0.06, test +0.02 and -0.04
    assert "Over seeds 0, 1, paired run by run: validation +0.09 points (95 % interval" in section
    assert "; test -0.01 points (95 % interval" in section


def test_runs_without_raw_accuracies_give_no_averaging_section() -> None:
    runs = {0: record_of([averaged_epoch(1, 0.995, None)])}
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
    monkeypatch.setattr(cnn, "RECORDS", tmp_path / "runs")
    runs = {}
    for seed in (0, 1, 2):
        train_to_file(variant.spec.with_overrides(seed=seed), mnist, cnn.model_path(variant, seed))
        runs[seed] = cnn.ensure_trained(variant, seed, mnist, False)
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


TINY = make_spec({"layers": [784, 10], "cost": "log-likelihood", "epochs": 2,
                  "train_size": 300, "eta": 0.5})  # fmt: skip


@pytest.fixture(scope="module")
def tiny_models(mnist, tmp_path_factory) -> Path:
    """A folder holding three seeds of a tiny preset, trained as the benchmark trains."""
    folder = tmp_path_factory.mktemp("out")
    for seed in range(3):
        train_to_file(TINY.with_overrides(seed=seed), mnist, folder / f"tiny-seed{seed}.npz")
    return folder


@pytest.fixture
def tiny_runs(mnist, tiny_models: Path, tmp_path: Path, monkeypatch) -> dict:
    """The tiny preset's three runs in a fresh out/cnn of the test's own, recorded."""
    shutil.copytree(tiny_models, tmp_path / "out")
    preset = Preset("tiny", TINY, "a tiny network")
    monkeypatch.setattr(cnn, "PRESETS", {"tiny": preset})
    monkeypatch.setattr(cnn, "WORK", tmp_path / "out")
    monkeypatch.setattr(cnn, "RECORDS", tmp_path / "runs")
    return {seed: cnn.ensure_trained(preset, seed, mnist, False) for seed in range(3)}


def test_a_record_holds_what_evaluate_says_of_its_model(mnist, tiny_runs) -> None:
    preset = cnn.PRESETS["tiny"]
    for seed, record in tiny_runs.items():
        path = cnn.model_path(preset, seed)
        model = load_model(path)
        assert record.spec == model.spec and record.metrics == model.metrics
        again = run_records.load_record(cnn.record_path(preset, seed))
        assert again.history == record.history and again.measured == record.measured
        assert model.calibration is not None  # train_to_file calibrates what it saves
        assert again.temperature == model.calibration.temperature
        for split in ("validation", "test"):
            images = getattr(mnist, split).images
            assert again.probabilities(split).dtype == np.float32
            np.testing.assert_array_equal(again.probabilities(split),
                                          model.raw_probabilities(images))  # fmt: skip
            vote = again.vote(split)
            np.testing.assert_array_equal(vote.answers.probabilities, model.probabilities(images))
        assert record.confidence(mnist.validation).nll == scored_nll(model, mnist)
    # an ensemble's figure from the records is the one evaluate gives its models
    models = [load_model(cnn.model_path(preset, seed)) for seed in tiny_runs]
    for split in ("validation", "test"):
        from_records = cnn.averaged_accuracy(list(tiny_runs.values()), split,
                                             getattr(mnist, split).labels)  # fmt: skip
        assert from_records == 100 * evaluate(models, getattr(mnist, split)).accuracy


def scored_nll(model, mnist) -> float:
    return evaluate([model], mnist.validation).uncalibrated.nll


def test_records_stand_in_for_models_that_are_gone(mnist, tiny_runs, tmp_path: Path) -> None:
    preset = cnn.PRESETS["tiny"]
    for seed in tiny_runs:
        cnn.model_path(preset, seed).unlink()
    again = cnn.ensure_trained(preset, 1, mnist, False)
    assert again is not None and again.metrics == tiny_runs[1].metrics
    assert cnn.seeds_row(preset, {0: tiny_runs[0], 1: again})[0] == "`tiny`, seeds 0, 1"
    # a run neither recorded nor trained is not there
    assert cnn.ensure_trained(preset, 7, mnist, False) is None


def test_a_model_that_is_not_the_recorded_run_is_refused(mnist, tiny_runs) -> None:
    """A model retrained or recalibrated after its run was recorded would be silently
    ignored, while --tta reads it: one page would mix two runs."""
    import shutil

    preset = cnn.PRESETS["tiny"]
    shutil.copy(cnn.model_path(preset, 1), cnn.model_path(preset, 0))
    with pytest.raises(run_records.RunRecordError, match="is not the run"):
        cnn.ensure_trained(preset, 0, mnist, False)


def test_a_record_of_another_spec_is_refused(mnist, tiny_runs) -> None:
    changed = Preset("tiny", TINY.with_overrides(eta=0.1), "a tiny network")
    with pytest.raises(run_records.RunRecordError, match="another spec"):
        cnn.ensure_trained(changed, 0, mnist, False)


@pytest.mark.parametrize("content", [b"", b"not a zip file", b"PK\x03\x04broken", b"\x93NUMPY"])
def test_a_damaged_record_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "r.npz"
    path.write_bytes(content)
    with pytest.raises(run_records.RunRecordError, match=r"r\.npz"):
        run_records.load_record(path)


def test_a_record_with_wrong_probabilities_is_refused(tiny_runs, tmp_path: Path) -> None:
    record = tiny_runs[0]
    path = tmp_path / "r.npz"
    wrong = run_records.RunRecord(record.spec, record.metrics, record.history,
                                  record.validation[:, :9], None, None, "")  # fmt: skip
    run_records.save_record(wrong, path)
    with pytest.raises(run_records.RunRecordError, match="not \\(n, 10\\)"):
        run_records.load_record(path)


def test_the_chosen_ensemble_is_chosen_on_validation_as_evaluate_chooses(mnist, tiny_runs):
    preset = cnn.PRESETS["tiny"]
    candidates = {f"tiny-seed{seed}": record for seed, record in tiny_runs.items()}
    section = cnn.chosen_ensemble_section(candidates, mnist)
    models = [load_model(cnn.model_path(preset, seed)) for seed in tiny_runs]
    choice = choose_members(models, mnist.validation)
    chosen = [models[index] for index in choice.members]
    test = 100 * evaluate(chosen, mnist.test).accuracy
    taken = "The one run taken" if len(chosen) == 1 else f"The {len(chosen)} runs taken, averaged"
    assert f"{taken}: **{test:.2f} % on test**" in section
    assert "(calibrated)" in section  # train_to_file calibrates, so the steps' NLL is
    first = choice.steps[0]
    assert f"| 1 | `tiny-seed{first.member}` | {100 * choice.alone[first.member]:.2f} |" in section
    assert "## An ensemble chosen on validation from 3 runs" in section
