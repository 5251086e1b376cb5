"""Hyperparameter studies: study files, running, continuing, scaling out, reporting."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from digitlab.errors import SpecError
from digitlab.experiments.study_file import StudyFile, load_study_file

HERE = Path(__file__).parent
TINY = HERE / "studies" / "tiny-grid.toml"
ABLATION = HERE / "studies" / "tiny-ablation.toml"
SHIPPED = sorted((HERE.parent / "studies").glob("*.toml"))


@pytest.fixture
def storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def study_cli(run_cli, *args: str):
    result = run_cli("study", *map(str, args), timeout=600)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def completed_points(storage_url: str, name: str) -> list[dict]:
    study = optuna.load_study(study_name=name, storage=storage_url)
    return [t.params for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_study_files_are_valid(path: Path) -> None:
    study = load_study_file(path)
    assert study.question and study.space


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('name = "x"\n[space]\neta = [0.1]\n[search]\nsampler = "foo"\n', "search.sampler"),
        ('name = "x"\nspeed = 1\n[space]\neta = [0.1]\n', "speed: unknown key"),
        ('name = "x"\n[space]\nwings = [1, 2]\n', "space.wings: unknown hyperparameter"),
        (
            'name = "x"\n[space]\neta = { low = 0.1, high = 1.0 }\n',
            "space.eta: a grid needs a list",
        ),
        ('name = "x"\n[space]\neta = [0.1]\n[search]\nsampler = "tpe"\n', "search.trials"),
        (
            'name = "x"\n[space]\neta = { low = 1.0, high = 0.1 }\n'
            '[search]\nsampler = "random"\ntrials = 3\n',
            "low must be below high",
        ),
        ('name = "x"\n[base]\neta = -1\n[space]\nepochs = [1]\n', "base: eta"),
        ('name = "x"\n[space]\neta = []\n', "space.eta"),
        ('name = "x"\n', "name at least one hyperparameter to vary, or [variants]"),
        ('name = "x"\n[variants]\nonly = {}\n', "variants: name a reference and at least one"),
        ('name = "x"\n[variants]\na = {}\nb = { wings = 2 }\n', "variants.b.wings: unknown"),
        ('name = "x"\n[variants]\na = {}\nb = { eta = -1 }\n', "variant b: eta"),
        ('name = "x"\n[variants]\na = {}\nb = { eta = "0.5" }\n', "variant b: eta: input should"),
        ('name = "x"\n[variants]\na = {}\nb = { expand = "yes" }\n', "variant b: expand"),
        ('name = "x"\n[base]\neta = true\n[space]\nepochs = [1]\n', "base: eta: input should"),
        ('name = "x"\n[space]\nvariant = ["a"]\n', "space.variant: unknown hyperparameter"),
        (
            'name = "x"\n[space]\nvariant = ["z"]\n[variants]\na = {}\nb = { eta = 1 }\n',
            "space.variant: the variants are named in [variants] only",
        ),
        (
            'name = "x"\n[space]\neta = [0.1, 0.5]\n[variants]\na = {}\nb = { eta = 1 }\n',
            "variants.b.eta: also searched in [space]",
        ),
        (
            'name = "x"\n[space]\nhidden_layers = [1, 2]\n'
            '[variants]\na = {}\nb = { layers = "784,50,10" }\n',
            "variants.b.layers: also searched in [space]",
        ),
        (
            'name = "x"\n[variants]\na = {}\nb = { eta = 1 }\n'
            '[search]\nsampler = "random"\ntrials = 4\n',
            "variants: an ablation needs the grid sampler",
        ),
        ('name = "x"\n[variants]\na = {}\n"b|c" = { eta = 1 }\n', "'b|c' is no name"),
        ('name = "x"\n[variants]\na = {}\nb = {}\n', "variants.b: changes exactly what a"),
        ('name = "x"\n[variants]\na = {}\nb = { layers = "abc" }\n', "variant b: layers: 'abc'"),
        (
            'name = "x"\n[variants]\na = {}\nb = { hidden_units = "x" }\n',
            "variant b: hidden_units and hidden_layers must be whole numbers",
        ),
        (
            'name = "x"\n[variants]\na = {}\nb = { regularization = "foo" }\n',
            "variant b: regularization: 'foo'",
        ),
        (
            f'name = "x"\n[space]\neta = {[0.1] * 101}\nepochs = {list(range(1, 101))}\n',
            "the grid has 10,100 configurations, more than 10,000",
        ),
        # every value searched is checked when the file is read, not when its trial runs
        ('name = "x"\n[space]\neta = [0.1, nan]\n', "space.eta = nan: eta: input should"),
        ('name = "x"\n[space]\neta = [0.1, -5]\n', "space.eta = -5: eta: input should be"),
        ('name = "x"\n[space]\nhidden_units = [0, 10]\n', "space.hidden_units = 0: layers"),
        ('name = "x"\n[space]\nregularization = ["l3:5"]\n', "regularization: 'l3:5' is not"),
        ('name = "x"\n[space]\nlayers = ["abc"]\n', "space.layers = 'abc': layers: 'abc'"),
        (
            'name = "x"\n[space]\neta = { low = 0.1, high = inf }\n'
            '[search]\nsampler = "random"\ntrials = 3\n',
            "space.eta: high: input should be a finite number",
        ),
        (
            'name = "x"\n[space]\ndropout = { low = 0.0, high = 1.5 }\n'
            '[search]\nsampler = "tpe"\ntrials = 3\n',
            "space.dropout = 1.5: dropout",
        ),
    ],
)
def test_bad_study_files_name_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(SpecError, match=re.escape(fragment)) as info:
        load_study_file(tmp_path / "s.toml")
    assert "\n" not in str(info.value) and not str(info.value).rstrip().endswith(":")


def test_variants_are_searched_as_one_hyperparameter() -> None:
    """Each variant's fields change the base; quick mode leaves what a variant sets alone."""
    from digitlab.experiments.runner import RunSettings
    from digitlab.experiments.study_file import apply_params, base_spec

    study = load_study_file(ABLATION)
    assert study.space == {"variant": ["as it is", "narrower", "slower"]}
    assert study.reference == "as it is"
    base = base_spec(study)
    assert apply_params(base, {"variant": "as it is"}, {}, study.variants) == base
    narrower = apply_params(base, {"variant": "narrower"}, {}, study.variants)
    assert narrower.layers == [784, 10, 10] and narrower.epochs == base.epochs
    as_list = apply_params(base, {"layers": [784, 10, 10]}, {})  # TOML's own list works too
    assert as_list == narrower
    quick = RunSettings(study, "sqlite://", quick=True).overrides()
    assert quick == {"train_size": 500}  # a variant sets the epochs: quick mode keeps them


def test_whole_numbers_written_as_floats_are_searched_as_trials_take_them(tmp_path) -> None:
    (tmp_path / "s.toml").write_text('name = "x"\n[space]\nepochs = [10.0, 20.0]\n')
    assert load_study_file(tmp_path / "s.toml").space == {"epochs": [10.0, 20.0]}


def test_quick_mode_never_makes_a_study_larger() -> None:
    """A base already smaller than the quick settings keeps its own budget."""
    from digitlab.experiments.runner import RunSettings

    def quick(base: dict) -> dict:
        study = StudyFile.model_validate({"name": "s", "base": base, "space": {"eta": [0.1]}})
        return RunSettings(study, "sqlite://", quick=True).overrides()

    assert quick({"train_size": 100, "epochs": 1}) == {"train_size": 100, "epochs": 1}
    assert quick({"epochs": 30}) == {"train_size": 5000, "epochs": 3}


def test_ablation_study_end_to_end(run_cli, storage: str, tmp_path: Path) -> None:
    run = study_cli(run_cli, "run", ABLATION, "--storage", storage)
    assert run.returncode == 0, run.stderr
    points = completed_points(storage, "tiny-ablation")
    assert sorted(p["variant"] for p in points) == ["as it is", "narrower", "slower"]
    out = tmp_path / "tiny-ablation"
    report = study_cli(run_cli, "report", ABLATION, "--storage", storage, "--out", out)
    assert report.returncode == 0, report.stderr
    text = (out / "README.md").read_text()
    findings = text.split("## Findings")[1].split("## Why")[0]
    assert "| variant | validation accuracy |" in findings
    assert "Against **as it is**, the reference (seed by seed, a paired t-test" in findings
    assert "  - narrower (layers=784,10,10): " in findings
    assert "  - slower (eta=0.05, epochs=1): " in findings
    assert (out / "effect-variant.png").stat().st_size > 0


def test_grid_study_end_to_end(run_cli, storage: str, tmp_path: Path) -> None:
    run = study_cli(run_cli, "run", TINY, "--storage", storage)
    assert run.returncode == 0, run.stderr
    points = completed_points(storage, "tiny-grid")
    assert sorted(p["hidden_units"] for p in points) == [10, 30, 100]

    again = study_cli(run_cli, "run", TINY, "--storage", storage)  # continues: nothing to do
    assert again.returncode == 0 and len(completed_points(storage, "tiny-grid")) == 3

    listed = study_cli(run_cli, "list", "--storage", storage, "--json")
    [entry] = json.loads(listed.stdout.strip().splitlines()[-1])["studies"]
    assert entry["name"] == "tiny-grid" and entry["trials"]["complete"] == 3

    out = tmp_path / "docs" / "tiny-grid"
    report = study_cli(run_cli, "report", TINY, "--storage", storage, "--out", out)
    assert report.returncode == 0, report.stderr
    for name in [
        "README.md",
        "trials.csv",
        "summary.json",
        "effect-hidden_units.png",
        "learning-curves.png",
        "history.png",
        "confusion.png",
        "misclassified.png",
    ]:
        assert (out / name).stat().st_size > 0, name
    with open(out / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(int(r["hidden_units"]) for r in rows) == [10, 30, 100]
    values = [float(r["validation_accuracy"]) for r in rows]
    assert values[0] == max(values) and all(r["repeats"] == "2" for r in rows)

    text = (out / "README.md").read_text()
    best = rows[0]
    assert f"**hidden_units={best['hidden_units']}**" in text
    assert "digitlab train" in text
    findings = text.split("## Findings")[1].split("## Why")[0]
    table = text.split("## All trials")[1]
    assert "### hidden_units" in findings and "| hidden_units |" in findings
    lines = [line.split("|")[1:-1] for line in table.strip().splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0]]
    shown = [cells[header.index("validation_accuracy")].strip() for cells in lines[1:]]
    assert len(shown) == 3
    for value in shown:  # every configuration's accuracy is quoted as the table shows it
        assert value in findings
    for number in re.findall(r"\d+\.\d\d %", findings):
        assert number in shown
    index = (out.parent / "README.md").read_text()
    assert "[tiny-grid](tiny-grid/README.md)" in index and "Does a wider hidden layer help" in index


def test_grid_study_stores_what_optuna_dashboard_plots(
    run_cli, storage: str, tmp_path: Path
) -> None:
    """Numbers as numeric distributions, a named objective and one user attribute per
    figure; the printed report command works as printed and writes under out/."""
    run = study_cli(run_cli, "run", TINY, "--storage", storage, "--quick")
    assert run.returncode == 0, run.stderr
    study = optuna.load_study(study_name="tiny-grid-quick", storage=storage)
    assert study.metric_names == ["validation accuracy"]
    trial = study.best_trial
    distribution = trial.distributions["hidden_units"]
    assert isinstance(distribution, optuna.distributions.IntDistribution) and distribution.log
    attrs = trial.user_attrs
    assert isinstance(attrs["test_accuracy"], float) and attrs["best_epoch"] >= 1
    assert attrs["train_seconds"] > 0 and attrs["diverged_runs"] == 0
    assert attrs["run 0"]["seed"] == 0 and len(json.dumps(attrs["run 0"])) < 300
    run0 = trial.system_attrs["digitlab:run 0"]  # curves and diagnostics, for the report
    assert len(run0["validation_cost"]) == len(run0["train_cost"]) == 1
    assert run0["initial"]["layers"][0]["bias_gradient_norm"] > 0

    command = run.stdout.strip().splitlines()[-1].removeprefix("report: ")
    assert command.endswith(f"--quick --storage {storage}")
    words = shlex.split(command)
    assert words[0] == "digitlab"
    report = study_cli(lambda *args, **kw: run_cli(*args, cwd=tmp_path, **kw), *words[2:])
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "out" / "studies" / "tiny-grid-quick" / "README.md").read_text()
    assert "**Quick mode**: 500 training images, 1 epoch," in text
    assert "one seed per configuration" in text and "not a finding" in text
    index = (tmp_path / "out" / "studies" / "README.md").read_text()
    assert "none: one seed each, so no difference was tested" in index
    assert "quick look, one seed each, no difference tested; highest: hidden_units=" in index

    listed = study_cli(run_cli, "list", "--storage", storage, "--json")
    [entry] = json.loads(listed.stdout.strip().splitlines()[-1])["studies"]
    assert entry["trials"] == {
        "complete": 3,
        "diverged": 0,
        "running": 0,
        "waiting": 0,
        "pruned": 0,
        "failed": 0,
    }


def test_reading_a_storage_that_is_not_there_makes_none(run_cli, tmp_path: Path) -> None:
    """study list and report only read: a mistyped SQLite path is an error, not a new
    empty database in new folders, and a file that is no database is left as it was."""
    typo = tmp_path / "typo" / "s.db"
    for command in (["list"], ["report", TINY, "--out", tmp_path / "r"]):
        result = study_cli(run_cli, *command, "--storage", f"sqlite:///{typo}")
        assert result.returncode == 1
        assert f"no study storage at {typo}: the file does not exist" in result.stderr
    assert not (tmp_path / "typo").exists()
    (tmp_path / "notes.db").write_text("")
    result = study_cli(run_cli, "list", "--storage", f"sqlite:///{tmp_path / 'notes.db'}")
    assert result.returncode == 1 and "it is not a SQLite database" in result.stderr
    assert (tmp_path / "notes.db").read_text() == ""
    stored = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(study_name="there", storage=stored)
    listed = study_cli(run_cli, "list", "--storage", stored + "?timeout=30")  # a URL's options
    assert listed.returncode == 0 and "there" in listed.stdout


def test_a_report_keeps_its_study_and_is_written_again_from_it(
    run_cli, storage: str, tmp_path: Path
) -> None:
    """The database gone, the report's journal.log is the study: the report written
    again from it is the same, and reading commands take it as their storage."""
    assert study_cli(run_cli, "run", TINY, "--storage", storage).returncode == 0
    out = tmp_path / "report"
    assert study_cli(run_cli, "report", TINY, "--storage", storage, "--out", out).returncode == 0
    first = {name: (out / name).read_bytes() for name in ("README.md", "trials.csv", "journal.log")}
    journal = out / "journal.log"
    again = f"digitlab study report {TINY} --storage {journal} --out {out}"
    assert again in " ".join(first["README.md"].decode().split())
    Path(storage.removeprefix("sqlite:///")).unlink()

    listed = study_cli(run_cli, "list", "--storage", journal, "--json")
    [entry] = json.loads(listed.stdout.strip().splitlines()[-1])["studies"]
    assert entry["name"] == "tiny-grid" and entry["trials"]["complete"] == 3
    rewritten = study_cli(run_cli, *shlex.split(again)[2:])
    assert rewritten.returncode == 0, rewritten.stderr
    assert {name: (out / name).read_bytes() for name in first} == first  # the journal too
    from digitlab.experiments.storage import read_storage

    kept_study = optuna.load_study(study_name="tiny-grid", storage=read_storage(str(journal)))
    assert kept_study.metric_names == ["validation accuracy"]  # what optuna-dashboard shows

    kept = journal.read_bytes()
    refused = study_cli(run_cli, "run", TINY, "--storage", journal)
    assert refused.returncode == 1 and "a study runs in a database" in refused.stderr
    # a report from a database with fewer trials, or another study, keeps the journal
    fewer = f"sqlite:///{tmp_path / 'fewer.db'}"
    partial = optuna.create_study(study_name="tiny-grid", storage=fewer, direction="maximize")
    for key, value in kept_study.user_attrs.items():
        partial.set_user_attr(key, value)
    partial.add_trials(kept_study.trials[:1])
    refused = study_cli(run_cli, "report", TINY, "--storage", fewer, "--out", out)
    assert refused.returncode == 1 and "keeps 2 trial(s) of 'tiny-grid' that" in refused.stderr
    assert study_cli(run_cli, "run", TINY, "--storage", fewer, "--quick").returncode == 0
    refused = study_cli(run_cli, "report", TINY, "--quick", "--storage", fewer, "--out", out)
    assert "keeps the study 'tiny-grid', not 'tiny-grid-quick'" in refused.stderr
    assert journal.read_bytes() == kept and (out / "README.md").read_bytes() == first["README.md"]
    other = study_cli(run_cli, "report", TINY, "--quick", "--storage", journal)
    assert f"no study named 'tiny-grid-quick' in {journal}: it keeps 'tiny-grid'" in other.stderr


def test_a_journal_written_mid_study_gives_way_to_the_study_gone_on(tmp_path: Path) -> None:
    """A report written while the study ran kept queued and running trials; the same
    study, further on, may replace its journal.  Another run of the study may not."""
    from optuna.distributions import IntDistribution
    from optuna.trial import create_trial

    from digitlab.experiments.storage import (
        StorageError,
        check_journal_replaceable,
        save_journal,
    )

    def done(x: int, value: float) -> optuna.trial.FrozenTrial:
        return create_trial(
            params={"x": x}, distributions={"x": IntDistribution(0, 9)}, value=value
        )

    study = optuna.create_study(study_name="s", direction="maximize")
    study.add_trial(done(1, 0.5))
    study.enqueue_trial({"x": 2})
    journal = tmp_path / "journal.log"
    save_journal(study, journal)
    trial = study.ask()  # the queued point runs and finishes
    study.tell(trial, 0.7)
    check_journal_replaceable(journal, study)
    again = optuna.create_study(study_name="s", direction="maximize")
    again.add_trials([done(1, 0.5), done(2, 0.7)])  # the same points, another run
    with pytest.raises(StorageError, match="keeps 1 trial"):
        check_journal_replaceable(journal, again)


COMMITTED_JOURNALS = sorted((HERE.parent / "docs" / "studies").glob("*/journal.log"))


@pytest.mark.parametrize("journal", COMMITTED_JOURNALS, ids=lambda path: path.parent.name)
def test_the_committed_reports_keep_studies_they_can_be_written_again_from(journal) -> None:
    """Each committed journal still opens, holds the trials its report lists, and fits
    its shipped study file, so scripts/rewrite-study-reports.sh can use it."""
    from digitlab.experiments.storage import read_storage

    storage = read_storage(str(journal))
    [name] = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    with open(journal.parent / "trials.csv") as handle:
        assert len(list(csv.DictReader(handle))) == len(study.trials)
    shipped = load_study_file(HERE.parent / "studies" / f"{journal.parent.name}.toml")
    assert study.user_attrs["fingerprint"] == shipped.space_fingerprint()


def _journal_damaged(journal: Path, how: str) -> None:
    lines = journal.read_bytes().splitlines(keepends=True)
    if how == "cut":
        journal.write_bytes(b"".join(lines)[:-10])
    elif how == "garbled line":
        lines[3] = lines[3][:40] + b"\n"
        journal.write_bytes(b"".join(lines))
    elif how == "unknown operation":
        lines[3] = b'{"op_code": 99, "worker_id": "x"}\n'
        journal.write_bytes(b"".join(lines))
    elif how == "not a journal":
        journal.write_text("name,accuracy\nx,1\n")
    elif how == "empty":
        journal.write_bytes(b"")
    elif how == "a whole line lost":
        journal.write_bytes(b"".join(lines[:-2] + lines[-1:]))
    elif how == "its count lost":
        journal.write_bytes(b"".join(lines[:-1]))
    elif how == "a line added":
        journal.write_bytes(b"".join([*lines, lines[-1]]))
    elif how == "deeply nested":
        lines[3] = b'{"op_code": 0, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
        journal.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    ("how", "fragment"),
    [
        ("cut", "ends in the middle of a line"),
        ("garbled line", "line 4 is not a journal entry"),
        ("unknown operation", "damaged"),
        ("not a journal", "neither a SQLite database nor an Optuna journal file"),
        ("empty", "it is empty"),
        ("a whole line lost", "holds 4 entries where it was written with 5, so lines were lost"),
        ("a line added", "holds 6 entries where it was written with 5"),
        ("its count lost", "its last entry, which counts the others, is missing"),
        ("deeply nested", "line 4 is not a journal entry"),
        ("too large", "a study journal is read up to"),
        ("missing", "the file does not exist"),
        ("a folder", "it is not a file"),
    ],
)
def test_a_damaged_journal_is_one_clear_error(tmp_path: Path, monkeypatch, how, fragment) -> None:
    """A journal is a file from elsewhere: checked before Optuna replays it, and one
    clear error when it is damaged, never a study with trials silently missing."""
    from digitlab.experiments import storage as storage_module
    from digitlab.experiments.storage import StorageError, read_storage, save_journal

    study = optuna.create_study(study_name="kept", direction="maximize")
    study.set_user_attr("repeats", 2)
    for value in (0.5, 0.75):
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=value))
    journal = tmp_path / "journal.log"
    save_journal(study, journal)
    assert [
        t.value
        for t in optuna.load_study(study_name="kept", storage=read_storage(str(journal))).trials
    ] == [0.5, 0.75]

    if how == "too large":
        monkeypatch.setattr(storage_module, "MAX_JOURNAL_BYTES", 100)
    elif how == "missing":
        journal.unlink()
    elif how == "a folder":
        journal.unlink()
        journal.mkdir()
    else:
        _journal_damaged(journal, how)
    with pytest.raises(StorageError, match=fragment):
        read_storage(str(journal))


def test_changed_search_space_is_a_clear_error(run_cli, storage: str, tmp_path: Path) -> None:
    assert study_cli(run_cli, "run", TINY, "--storage", storage, "--quick").returncode == 0
    changed = tmp_path / "tiny-grid.toml"
    changed.write_text(TINY.read_text().replace("[10, 30, 100]", "[10, 300]"))
    result = study_cli(run_cli, "run", changed, "--storage", storage, "--quick")
    assert result.returncode == 1
    assert (
        "already exists with a different base or search space"
        in result.stderr.strip().splitlines()[-1]
    )


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("nonsense://nowhere", "cannot open study storage nonsense://nowhere"),
        (
            "postgresql://someone:secret@127.0.0.1:9/none",
            "cannot open study storage postgresql://someone:***@",
        ),
    ],
)
def test_bad_or_unreachable_storage_is_one_line(run_cli, url: str, fragment: str) -> None:
    result = study_cli(run_cli, "list", "--storage", url)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and fragment in line and "secret" not in line


def test_unknown_study_report_is_a_clear_error(run_cli, storage: str) -> None:
    optuna.create_study(study_name="another", storage=storage)
    result = study_cli(run_cli, "report", TINY, "--storage", storage)
    assert result.returncode == 1 and "run it first with `digitlab study run`" in result.stderr


def test_diverging_trials_are_results_not_crashes(run_cli, storage: str, tmp_path: Path) -> None:
    path = tmp_path / "eta.toml"
    path.write_text(
        'name = "eta"\n[base]\nlayers = [784, 30, 10]\nactivation = "relu"\ncost = "quadratic"\n'
        'output_activation = "linear"\ntrain_size = 500\nepochs = 2\n'
        "[space]\neta = [0.01, 1000.0]\n"
    )
    assert study_cli(run_cli, "run", path, "--storage", storage).returncode == 0
    report = study_cli(run_cli, "report", path, "--storage", storage, "--out", tmp_path / "r")
    assert report.returncode == 0, report.stderr
    with open(tmp_path / "r" / "trials.csv") as handle:
        states = {r["eta"]: r["state"] for r in csv.DictReader(handle)}
    assert states == {"0.01": "complete", "1000.0": "diverged"}
    assert (
        "eta=1000: 1 of 1 runs diverged (cost NaN/inf) in epoch 1"
        in (tmp_path / "r" / "README.md").read_text()
    )


def test_tpe_study_respects_its_budget(run_cli, storage: str, tmp_path: Path) -> None:
    path = tmp_path / "tpe.toml"
    path.write_text(
        'name = "tpe"\n[base]\ntrain_size = 500\nepochs = 2\n'
        "[space]\neta = { low = 0.05, high = 2.0, log = true }\n"
        "hidden_units = { low = 10, high = 50, int = true }\n"
        '[search]\nsampler = "tpe"\ntrials = 4\npruner = "median"\n'
    )
    run = study_cli(run_cli, "run", path, "--storage", storage)
    assert run.returncode == 0, run.stderr
    assert "Warning" not in run.stderr  # asking Optuna for trials outside its own loop
    points = completed_points(storage, "tpe")
    assert len(points) == 4 and all(10 <= p["hidden_units"] <= 50 for p in points)


def slow_grid(tmp_path: Path, name: str, points: int = 4) -> Path:
    """A grid whose trials take a second or two each, long enough to kill a worker mid-trial."""
    path = tmp_path / f"{name}.toml"
    units = ", ".join(str(20 + 10 * i) for i in range(points))
    path.write_text(
        f'name = "{name}"\n[base]\ntrain_size = 20000\nepochs = 3\n'
        f"[space]\nhidden_units = [{units}]\n"
    )
    return path


def start_quietly(arguments: list[str], mnist_dir: Path) -> subprocess.Popen:
    """``digitlab ARGUMENTS`` started in the background, its output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "digitlab", *arguments],
        env={**os.environ, "DIGITLAB_DATA_DIR": str(mnist_dir)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_killed_worker_loses_nothing_and_the_rerun_completes(
    run_cli, mnist_dir, storage, tmp_path
) -> None:
    path = slow_grid(tmp_path, "killed")
    command = ["study", "run", str(path), "--storage", storage, "--heartbeat", "1"]
    worker = start_quietly(command, mnist_dir)
    deadline = time.monotonic() + 300
    states = {}
    while time.monotonic() < deadline and worker.poll() is None:
        try:
            study = optuna.load_study(study_name="killed", storage=storage)
            states = [t.state for t in study.trials]
        except KeyError:
            states = []
        if (
            states.count(optuna.trial.TrialState.COMPLETE) >= 1
            and optuna.trial.TrialState.RUNNING in states
        ):
            break
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert worker.returncode == -signal.SIGKILL, (
        "the study finished before the worker could be killed"
    )
    finished_before = completed_points(storage, "killed")

    rerun = study_cli(run_cli, "run", path, "--storage", storage, "--heartbeat", "1")
    assert rerun.returncode == 0, rerun.stderr
    # Optuna's own warnings (experimental heartbeats, the stale trial it failed) stay quiet:
    # the rerun says what it does in its own words.
    assert not re.search(r"^\[W |Warning", rerun.stderr, re.MULTILINE), rerun.stderr
    study = optuna.load_study(study_name="killed", storage=storage)
    done = completed_points(storage, "killed")
    assert sorted(p["hidden_units"] for p in done) == [20, 30, 40, 50]  # each point exactly once
    assert all(p in done for p in finished_before)  # nothing finished was lost or rerun
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1  # the killed trial: failed, then retried


def test_two_local_workers_share_a_grid(run_cli, storage: str, tmp_path: Path) -> None:
    path = slow_grid(tmp_path, "pair", points=6)
    result = study_cli(run_cli, "run", path, "--storage", storage, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert sorted(p["hidden_units"] for p in completed_points(storage, "pair")) == [
        20,
        30,
        40,
        50,
        60,
        70,
    ]
    assert {"[worker 0]", "[worker 1]"} <= set(re.findall(r"\[worker \d\]", result.stderr))


POSTGRES = os.environ.get("DIGITLAB_TEST_POSTGRES")


@pytest.mark.skipif(
    not POSTGRES and not os.environ.get("CI"), reason="no test PostgreSQL server (see .ci/run)"
)
def test_two_machines_share_a_study_through_postgresql(mnist_dir, tmp_path: Path) -> None:
    """Two independent `study run` processes (as on two machines) against one database."""
    assert POSTGRES, (
        "CI must start a PostgreSQL server and set DIGITLAB_TEST_POSTGRES (see .ci/run)"
    )
    name = f"pg-{os.getpid()}-{int(time.time())}"
    path = slow_grid(tmp_path, name, points=6)
    env = {**os.environ, "DIGITLAB_DATA_DIR": str(mnist_dir)}
    command = [sys.executable, "-m", "digitlab", "study", "run", str(path), "--storage", POSTGRES]
    machines = [
        subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [m.communicate(timeout=600) for m in machines]
    assert [m.returncode for m in machines] == [0, 0], outputs
    points = completed_points(POSTGRES, name)
    assert sorted(p["hidden_units"] for p in points) == [
        20,
        30,
        40,
        50,
        60,
        70,
    ]  # each exactly once
    assert all("trial" in err for _, err in outputs)  # both machines did work
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "digitlab",
            "study",
            "report",
            str(path),
            "--storage",
            POSTGRES,
            "--out",
            str(tmp_path / "report"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert report.returncode == 0, report.stderr
    with open(tmp_path / "report" / "trials.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 6
    shutil.rmtree(tmp_path / "report")


RANDOM_STUDY = """
name = "two-machines"
question = "Do two processes sampling one study draw different trials?"
[base]
layers = [784, 30, 10]
[space]
eta = { low = 0.001, high = 10.0, log = true }
hidden_units = [10, 20, 30, 40, 50, 60, 70, 80]
[search]
sampler = "SAMPLER"
trials = 8
"""


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # asked by hand, not optimize()
@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_two_processes_on_one_study_draw_different_trials(tmp_path: Path, sampler) -> None:
    """Each `study run` opens the study with its own sampler from the same study file --
    as two machines do.  Their trials must differ, and one process alone must repeat."""
    from digitlab.experiments.runner import RunSettings, open_study, suggest
    from digitlab.experiments.storage import open_storage
    from digitlab.experiments.study_file import load_study_file

    path = tmp_path / "study.toml"
    path.write_text(RANDOM_STUDY.replace("SAMPLER", sampler))
    study_file = load_study_file(path)

    def draws(storage_url: str, processes: int) -> list[dict]:
        settings = RunSettings(study_file, storage_url, quick=False)
        studies = [open_study(settings, open_storage(storage_url)) for _ in range(processes)]
        trials = []
        for turn in range(4):
            study = studies[turn % processes]
            trial = study.ask()
            trials.append(suggest(trial, study_file))
            study.tell(trial, 0.5)
        return trials

    shared = draws(f"sqlite:///{tmp_path / 'shared.db'}", processes=2)
    assert len({tuple(sorted(t.items())) for t in shared}) == 4
    again = draws(f"sqlite:///{tmp_path / 'again.db'}", processes=2)
    assert again == shared  # repeatable: the seeds follow the trial numbers


def test_a_seed_in_the_search_space_is_the_seed_trained_with(tmp_path: Path, mnist) -> None:
    from digitlab.experiments.runner import RunSettings, run_study
    from digitlab.experiments.study_file import load_study_file

    path = tmp_path / "seeds.toml"
    path.write_text(
        'name = "seeds"\nquestion = "q"\n[base]\nlayers = [784, 10, 10]\ntrain_size = 200\n'
        'epochs = 1\n[space]\nseed = [3, 7]\n[search]\nsampler = "grid"\nrepeats = 1\n'
    )
    settings = RunSettings(load_study_file(path), f"sqlite:///{tmp_path / 's.db'}", quick=False)
    study = run_study(settings)
    seeds = {t.params["seed"]: t.user_attrs["spec"]["seed"] for t in study.trials}
    assert seeds == {3: 3, 7: 7}
    runs = {t.params["seed"]: t.system_attrs["digitlab:run 0"]["seed"] for t in study.trials}
    assert runs == {3: 3, 7: 7}  # the run really trained with the trial's seed


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux's /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if int(fields.get("PPid", "0").strip()) == pid:
            found.append(int(status.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:\t", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_killed_study_run(mnist_dir, storage, tmp_path) -> None:
    path = tmp_path / "orphans.toml"  # trials of minutes: killed long before they end
    path.write_text('name = "orphans"\n[base]\nepochs = 50\n[space]\nhidden_units = [100, 200]\n')
    parent = start_quietly(
        ["study", "run", str(path), "--storage", storage, "--workers", "2"], mnist_dir
    )
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = [
            p
            for p in children_of(parent.pid)
            if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
        ]
        time.sleep(0.1)
    assert len(workers) == 2, "the workers did not start"
    running = 0
    while time.monotonic() < deadline and running < 2:  # both at work, not starting up
        try:
            trials = optuna.load_study(study_name="orphans", storage=storage).trials
            running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
        except KeyError:
            pass
        time.sleep(0.1)
    assert running == 2, "the workers did not start training"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(alive(w) for w in workers)


def test_a_study_whose_creation_was_killed_is_finished_by_the_next_run(
    tmp_path: Path, monkeypatch
) -> None:
    """The creator died after queueing one of three grid points: the next run waits for
    it, then queues the other two (not the first again) and goes on."""
    from digitlab.experiments import runner
    from digitlab.experiments.runner import RunSettings, open_study
    from digitlab.experiments.storage import open_storage
    from digitlab.experiments.study_file import load_study_file

    monkeypatch.setattr(runner, "READY_TIMEOUT", 0.2)
    settings = RunSettings(
        load_study_file(Path(__file__).parent / "studies/tiny-grid.toml"),
        f"sqlite:///{tmp_path / 'half.db'}",
        quick=False,
    )
    half = optuna.create_study(study_name="tiny-grid", storage=open_storage(settings.storage_url))
    half.enqueue_trial({"hidden_units": 10})
    study = open_study(settings, open_storage(settings.storage_url))
    assert study.user_attrs["ready"]
    queued = sorted(t.system_attrs["fixed_params"]["hidden_units"] for t in study.trials)
    assert queued == [10, 30, 100]


def test_a_point_that_failed_for_want_of_disk_is_run_again(tmp_path: Path, monkeypatch) -> None:
    """A trial that fails because the disk or database did (not because training
    diverged) is queued again: the rerun completes every grid point exactly once."""
    import errno

    from digitlab.experiments import runner
    from digitlab.experiments.runner import RunSettings, run_study
    from digitlab.experiments.study_file import load_study_file

    settings = RunSettings(
        load_study_file(Path(__file__).parent / "studies/tiny-grid.toml"),
        f"sqlite:///{tmp_path / 'full.db'}",
        quick=True,
    )
    real = runner.run_trial
    calls = []

    def disk_full_once(trial, *args, **kwargs):
        calls.append(trial.params)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(trial, *args, **kwargs)

    monkeypatch.setattr(runner, "run_trial", disk_full_once)
    with pytest.raises(OSError):
        run_study(settings)
    monkeypatch.setattr(runner, "run_trial", real)
    study = run_study(settings)
    complete = [t.params["hidden_units"] for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(complete) == [10, 30, 100]
    assert [t.params for t in study.trials if t.state.name == "FAIL"] == [calls[1]]


def _claim_all(storage_url: str, name: str) -> list[int]:
    """Claim queued trials until none is left; the numbers this process got."""
    from digitlab.experiments.runner import claim_queued_trial
    from digitlab.experiments.storage import open_storage

    storage = open_storage(storage_url)
    study = optuna.load_study(study_name=name, storage=storage)
    taken = []
    while (trial := claim_queued_trial(study, storage)) is not None:
        taken.append(trial.number)
    return taken


def test_processes_racing_for_queued_trials_never_take_one_twice(tmp_path: Path) -> None:
    """Four processes claim 60 queued trials from one SQLite file at once: every trial is
    taken exactly once (Optuna's read-then-write claim let two processes take one)."""
    import multiprocessing

    from digitlab.experiments.storage import open_storage

    url = f"sqlite:///{tmp_path / 'race.db'}"
    study = optuna.create_study(study_name="race", storage=open_storage(url))
    for index in range(60):
        study.enqueue_trial({"x": index})
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        taken = pool.starmap(_claim_all, [(url, "race")] * 4)
    numbers = [number for mine in taken for number in mine]
    assert sorted(numbers) == list(range(60))


def test_the_index_of_studies_never_overwrites_someone_elses_readme(tmp_path: Path) -> None:
    """A report's folder sits in a folder whose README.md becomes the index of studies;
    a README.md there that is no such index is the user's, and stays as it was."""
    from digitlab.experiments.report import INDEX_START, write_index

    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "README.md").write_text("# My project\n")
    assert write_index(mine) is False
    assert (mine / "README.md").read_text() == "# My project\n"
    fresh = tmp_path / "docs"
    fresh.mkdir()
    assert write_index(fresh) is True  # none there: written
    assert (fresh / "README.md").read_text().startswith(INDEX_START)
    assert write_index(fresh) is True  # an index: rewritten
