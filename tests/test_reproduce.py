"""Reproduction checks: the module, and the check that published results still reproduce.

``test_results_file_reproduces`` is the CI step that keeps docs/ true: it retrains every
check recorded next to a results file (``docs/**/*.checks.json``, a study report's
``checks.json``) and fails when a figure moved, naming the command that regenerates the
file.  Each check is a cheap row (under a minute); the others here take seconds.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from digitlab.data import Dataset, load_mnist
from digitlab.errors import DataError, DigitlabError
from digitlab.spec import make_spec
from digitlab.train.history import EpochRecord, History
from digitlab.train.reproduce import (
    ACROSS_ARITHMETIC,
    UNRECORDED,
    Check,
    CheckFile,
    ChecksFileError,
    add_figures_here,
    arithmetic,
    check_from_history,
    checks_path_for,
    read_checks,
    run_check,
    source_commit,
    write_checks,
)
from digitlab.train.trainer import Trainer

DOCS = Path(__file__).resolve().parent.parent / "docs"
TINY = {"layers": [784, 10, 10], "train_size": 500, "epochs": 1, "seed": 3}


def record(epoch: int, validation: float, test: float | None) -> EpochRecord:
    return EpochRecord(
        epoch=epoch,
        eta=0.1,
        train_cost=1.0,
        train_accuracy=0.5,
        validation_cost=1.0,
        validation_accuracy=validation,
        test_accuracy=test,
        seconds=0.1,
    )


@pytest.fixture(scope="module")
def tiny_check(mnist: Dataset) -> Check:
    """A check made the way a benchmark makes one: from a finished run's history."""
    spec = make_spec(TINY)
    history = Trainer(spec, mnist, diagnostics=False).run().history
    return check_from_history("tiny, seed 3", "digitlab train --layers 784,10,10", spec, history)


def test_check_from_history_takes_the_best_validation_epoch() -> None:
    history = History([record(1, 0.90, 0.89), record(2, 0.95, 0.94), record(3, 0.95, 0.96)])
    spec = make_spec(TINY)
    check = check_from_history("label", "command", spec, history)
    assert check.expected == {"validation_accuracy": 0.95, "test_accuracy": 0.94, "best_epoch": 2}
    assert check.spec == spec.model_dump()
    without_test = check_from_history("l", "c", spec, History([record(1, 0.9, None)]))
    assert without_test.expected == {"validation_accuracy": 0.9, "best_epoch": 1}


def test_checks_round_trip(tmp_path: Path) -> None:
    checks = [
        Check("a, seed 0", "digitlab train --preset a", make_spec(TINY).model_dump(), {"x": 0.1}),
        Check(
            "b, seed 1",
            "digitlab train --preset b",
            {"layers": [784, 10]},
            {"best_epoch": 7},
            {"another machine": {"best_epoch": 6}},
        ),
    ]
    path = tmp_path / "deep" / "book.checks.json"
    write_checks(path, "docs/results/book.md", checks)
    read = read_checks(path)
    assert read == CheckFile("docs/results/book.md", source_commit(), checks, arithmetic())
    assert not list(path.parent.glob(".*.tmp"))  # written atomically: no leftovers


def test_a_rerun_that_reproduces_keeps_other_machines_figures(tmp_path: Path) -> None:
    """Regenerating a results file here must not drop the figures another machine
    recorded (this one cannot record them again); figures that moved replace them all."""
    mine = {"best_epoch": 7}
    spec = {"layers": (784, 10), "ema": 0.0}  # a field the recorded spec predates
    check = Check("a, seed 0", "digitlab train --preset a", spec, mine)
    path = tmp_path / "a.checks.json"
    path.write_text(
        '{"format": 1, "results_file": "a.md", "commit": "old", "checks": [{"label": '
        '"a, seed 0", "command": "digitlab train --preset a", "spec": {"layers": [784, 10]}, '
        f'"expected": {{"best_epoch": 6}}, "elsewhere": {{"{arithmetic()}": {{"best_epoch": 7}}}}'
        "}]}"
    )
    before = path.read_text()
    assert not write_checks(path, "a.md", [check])  # reproduced here: left as it was
    assert path.read_text() == before
    renamed = dataclasses.replace(check, label="a, trial 3", command="digitlab train --x")
    assert not write_checks(path, "b.md", [renamed])  # the same run, described anew
    read = read_checks(path)
    assert (read.results_file, read.commit) == ("b.md", "old")
    assert read.checks[0].label == "a, trial 3" and read.checks[0].command == "digitlab train --x"
    assert read.checks[0].expected == {"best_epoch": 6}  # the other machine's: kept
    assert read.checks[0].elsewhere == {arithmetic(): mine}
    moved = dataclasses.replace(check, expected={"best_epoch": 8})
    assert write_checks(path, "b.md", [moved])  # figures moved: only this machine's now
    read = read_checks(path)
    assert read.arithmetic == arithmetic() and read.checks[0].expected == {"best_epoch": 8}
    assert read.checks[0].elsewhere == {}
    other = dataclasses.replace(moved, spec={"layers": [784, 30, 10]})
    assert write_checks(path, "b.md", [other])  # another run
    assert read_checks(path).checks[0].spec == {"layers": [784, 30, 10]}


def test_a_checks_file_from_before_arithmetic_was_recorded_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "old.checks.json"
    path.write_text(
        '{"format": 1, "results_file": "r.md", "commit": "abc", "checks": '
        '[{"label": "x", "command": "c", "spec": {}, "expected": {"a": 1}}]}'
    )
    read = read_checks(path)
    assert read.arithmetic == UNRECORDED and read.checks[0].elsewhere == {}


def test_checks_path_sits_next_to_the_results_file() -> None:
    assert checks_path_for(Path("docs/results/book.md")) == Path("docs/results/book.checks.json")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "is not JSON"),
        ("[]", "holds no JSON object"),
        ('{"format": 99}', "format"),
        ('{"format": 1, "results_file": "r.md", "commit": "abc"}', '"checks"'),
        (
            '{"format": 1, "results_file": "r.md", "commit": "abc", "checks": '
            '[{"label": "x", "command": "c", "spec": {}, "expected": {"a": "high"}}]}',
            'check 1: "expected": "a" is not a number',
        ),
        (
            '{"format": 1, "results_file": "r.md", "commit": "abc", "checks": '
            '[{"label": "x", "spec": {}, "expected": {"a": 1}}]}',
            'check 1: "command"',
        ),
        (
            '{"format": 1, "results_file": "r.md", "commit": "abc", "checks": '
            '[{"label": "x", "command": "c", "spec": {}, "expected": {"a": 1}, '
            '"elsewhere": {"m": {"a": null}}}]}',
            'check 1: "elsewhere" for m: "a" is not a number',
        ),
        (
            '{"format": 1, "results_file": "r.md", "commit": "abc", "arithmetic": 3, "checks": []}',
            '"arithmetic" is not text',
        ),
    ],
)
def test_a_malformed_checks_file_is_a_one_line_error(
    tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "x.checks.json"
    path.write_text(content)
    with pytest.raises(ChecksFileError) as caught:
        read_checks(path)
    message = str(caught.value)
    assert isinstance(caught.value, DigitlabError)
    assert "\n" not in message and str(path) in message and reason in message


def test_a_missing_checks_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ChecksFileError, match="does not exist"):
        read_checks(tmp_path / "none.checks.json")


def test_source_commit_outside_git_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert source_commit() == "unknown"
    monkeypatch.setenv("PATH", str(tmp_path))  # no git program at all
    assert source_commit() == "unknown"


def test_source_commit_says_when_the_source_has_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    git("init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "engine.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "--short", "HEAD")
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path / "docs")  # from a subfolder: the repository's src counts
    (tmp_path / "docs" / "notes.md").write_text("results\n")  # outside src: no matter
    assert source_commit() == head
    (tmp_path / "src" / "engine.py").write_text("x = 2\n")
    assert source_commit() == head + "+uncommitted changes"


def test_a_check_that_reproduces_reports_nothing(tiny_check: Check, mnist: Dataset) -> None:
    assert tiny_check.expected["best_epoch"] == 1
    assert run_check(tiny_check, mnist, arithmetic()) == []


def test_a_check_whose_figure_moved_says_which_and_how(tiny_check: Check, mnist: Dataset) -> None:
    committed = tiny_check.expected["validation_accuracy"]
    wrong = dataclasses.replace(
        tiny_check, expected={**tiny_check.expected, "validation_accuracy": committed + 0.01}
    )
    assert run_check(wrong, mnist, arithmetic()) == [
        f"validation_accuracy: committed {committed + 0.01!r}, now {committed!r}"
    ]


def test_a_machine_checks_the_figures_of_its_own_arithmetic(
    tiny_check: Check, mnist: Dataset
) -> None:
    true = tiny_check.expected
    off = {**true, "best_epoch": true["best_epoch"] + 1}
    mine = dataclasses.replace(tiny_check, expected=off, elsewhere={arithmetic(): true})
    assert run_check(mine, mnist, UNRECORDED) == []
    others = dataclasses.replace(tiny_check, elsewhere={"another machine": off})
    assert run_check(others, mnist, UNRECORDED) == []  # none for this arithmetic: the main
    wrong_here = dataclasses.replace(tiny_check, elsewhere={arithmetic(): off})
    assert run_check(wrong_here, mnist, UNRECORDED) == [
        f"best_epoch: committed {off['best_epoch']}, now 1"
    ]


def test_figures_of_other_arithmetic_are_compared_within_a_tolerance(
    tiny_check: Check, mnist: Dataset
) -> None:
    """Main figures known to come from other arithmetic cannot be reproduced exactly here:
    the accuracies must come within ACROSS_ARITHMETIC, and the best epoch may differ."""
    true = tiny_check.expected
    close = {**true, "best_epoch": 9, "validation_accuracy": true["validation_accuracy"] + 0.004}
    theirs = dataclasses.replace(tiny_check, expected=close)
    assert run_check(theirs, mnist, "another machine") == []
    assert run_check(theirs, mnist, arithmetic()) != []  # this machine's own: exact
    assert run_check(theirs, mnist, UNRECORDED) != []  # unrecorded origin: maybe its own
    far = {**true, "test_accuracy": true["test_accuracy"] - 0.006}
    (line,) = run_check(dataclasses.replace(tiny_check, expected=far), mnist, "another machine")
    assert line.startswith("test_accuracy: committed") and "on another machine" in line
    assert f"more than {ACROSS_ARITHMETIC} away" in line


def test_figures_added_here_make_another_machines_file_check_here(
    tiny_check: Check, mnist: Dataset, tmp_path: Path
) -> None:
    off = {**tiny_check.expected, "best_epoch": 2}
    theirs = dataclasses.replace(tiny_check, expected=off)
    path = tmp_path / "r.checks.json"
    write_checks(path, "r.md", [theirs])
    text = path.read_text().replace(arithmetic(), "another machine")
    path.write_text(text)
    assert run_check(read_checks(path).checks[0], mnist, read_checks(path).arithmetic) == []
    assert run_check(read_checks(path).checks[0], mnist, UNRECORDED) != []
    (line,) = add_figures_here(path, mnist)
    read = read_checks(path)
    assert read.arithmetic == "another machine" and read.checks[0].expected == off
    assert read.checks[0].elsewhere == {arithmetic(): tiny_check.expected}
    assert arithmetic() in line and run_check(read.checks[0], mnist, read.arithmetic) == []
    (kept,) = add_figures_here(path, mnist)  # figures it has are not retrained over
    assert kept.endswith(f"kept the figures it has for {arithmetic()}")
    (again,) = add_figures_here(path, mnist, replace=True)
    assert str(tiny_check.expected) in again
    write_checks(path, "r.md", [theirs])  # written here: its main figures are this machine's
    assert "already" in add_figures_here(path, mnist)[0]


def test_a_check_whose_spec_no_longer_validates_is_a_mismatch(mnist: Dataset) -> None:
    check = Check("old", "digitlab train", {**TINY, "retired_option": 1}, {"best_epoch": 1})
    (problem,) = run_check(check, mnist, arithmetic())
    assert "retired_option" in problem


# The CI check: every results file under docs/ still reproduces at this commit.


def _published_checks() -> list:
    """One test parameter per check in docs/ (a malformed checks file: one that fails)."""
    files = sorted({*DOCS.rglob("*.checks.json"), *DOCS.rglob("checks.json")})
    params = []
    for path in files:
        try:
            checks = read_checks(path)
        except DigitlabError as error:
            name = str(path.relative_to(DOCS.parent))
            params.append(pytest.param(path, name, None, UNRECORDED, str(error), id=name))
            continue
        for check in checks.checks:
            name = f"{checks.results_file}: {check.label}"
            param = (path, checks.results_file, check, checks.arithmetic, None)
            params.append(pytest.param(*param, id=name))
    return params


@pytest.fixture(scope="module")
def published_data() -> Dataset:
    """MNIST, or a skip where it cannot be had (no cache and no network)."""
    try:
        return load_mnist()
    except DataError as error:
        pytest.skip(f"MNIST is not available, so results cannot be retrained: {error}")


@pytest.mark.parametrize(
    ("path", "results_file", "check", "written_with", "error"), _published_checks()
)
def test_results_file_reproduces(
    path: Path,
    results_file: str,
    check: Check | None,
    written_with: str,
    error: str | None,
    published_data: Dataset,
) -> None:
    if check is None:
        pytest.fail(f"{error}", pytrace=False)
    mismatches = run_check(check, published_data, written_with)
    if mismatches:
        pytest.fail(
            "\n".join(
                [
                    f"{check.label} ({path.relative_to(DOCS.parent)}):",
                    *(f"  {line}" for line in mismatches),
                    f"results file {results_file} no longer reproduces at this commit: "
                    f"regenerate it with {regenerate_command(results_file, check)}",
                    f"(this row alone: {check.command})",
                    f"this machine computes with {arithmetic()}, "
                    + (
                        "and these are the figures recorded for it"
                        if arithmetic() in check.elsewhere or written_with == arithmetic()
                        else "which has no figures of its own here: if the engine is unchanged "
                        "since the file was written, record them at that commit with "
                        "python scripts/add-checks-here.py"
                    ),
                ]
            ),
            pytrace=False,
        )


def regenerate_command(results_file: str, check: Check) -> str:
    """The command that regenerates a results file: the one its header names (every
    generated file says "Generated by `COMMAND`" near the top), else the check's own."""
    results = DOCS.parent / results_file
    if results.is_dir():
        results = results / "README.md"
    try:
        text = results.read_text(encoding="utf-8")
    except OSError:
        return check.command
    marker = "Generated by `"
    start = text.find(marker)
    end = text.find("`", start + len(marker))
    if start < 0 or end < 0:
        return check.command
    return text[start + len(marker) : end]


def test_the_published_checks_are_found() -> None:
    found = {param.values[0] for param in _published_checks()}
    assert DOCS / "results" / "cnn.checks.json" in found
