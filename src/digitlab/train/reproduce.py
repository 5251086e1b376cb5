"""Checks that keep published results true: cheap runs whose figures must not move.

A results file (``docs/results/book.md``, a study report) shows figures that a command
reproduces -- until an engine change moves them, and the file silently describes a
program that no longer exists.  So every generated results file gets a small JSON
sidecar of *checks*: for one or a few cheap rows, the spec that was trained, the command
a person runs to get it, and the exact figures the file shows.  The test suite retrains
each check and compares the new figures with ``==``, not within a tolerance: training is
deterministic for a given spec, seed and engine, so any difference means the engine
changed the numbers, and the results file has to be regenerated at the new commit.

The sidecar of ``X.md`` is ``X.checks.json`` next to it (:func:`checks_path_for`); a
study report folder keeps its checks in ``checks.json``.  Each sidecar also records the
commit it was written at (:func:`source_commit`), so a reader can tell which source the
figures belong to.

"Deterministic" holds for one machine's arithmetic, not for every CPU: the BLAS picks
matrix-product kernels for the processor it finds, and NumPy picks SIMD code for its
elementwise functions, and kernels that add in another order round differently.  A few
last-bit differences in epoch 1 grow into other accuracies by epoch 30.  So a sidecar
names the arithmetic its figures came from (:func:`arithmetic`), and a check may carry
figures for other arithmetic too (:func:`add_figures_here`): a machine compares with the
figures of its own arithmetic exactly.  Where it has none and the sidecar's main figures
are known to come from other arithmetic, exactness is out of reach, so the accuracies
are compared within :data:`ACROSS_ARITHMETIC` (and the best epoch, where chaotic runs
differ most, not at all): the engine still has to train about as well as it did, which
catches an error that costs more than that, not a subtler one.  A sidecar that does not
say where its main figures came from (written before arithmetic was recorded) is
compared with them exactly.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitlab.atomic import atomic_write
from digitlab.data.mnist import Dataset
from digitlab.errors import DigitlabError, DivergenceError, SpecError
from digitlab.nn.model_file import TrainingMetrics
from digitlab.spec import Spec, make_spec
from digitlab.train.history import History
from digitlab.train.trainer import Trainer, summarise

#: The figures a check compares: those of the best-validation epoch, as summarise() names them.
CHECKED_METRICS = ("validation_accuracy", "test_accuracy", "best_epoch")
#: Written into every checks file; a file of another version is refused rather than misread.
FORMAT_VERSION = 1
#: What a checks file written before arithmetic was recorded says it was computed with.
UNRECORDED = "not recorded"
#: What a checks file's name ends in when it sits next to the results file it guards.
CHECKS_SUFFIX = ".checks.json"
#: Seconds a git command may take before the commit is reported as unknown.
GIT_TIMEOUT = 10
#: How far (as a fraction) an accuracy may lie from figures recorded on other arithmetic.
#: The published checks, run on an Intel Xeon and on an AMD EPYC, differed by at most
#: 0.0013 (book-ch1's test accuracy); this allows about four times that.
ACROSS_ARITHMETIC = 0.005
#: The figures compared within ACROSS_ARITHMETIC; the others are not compared across it.
ACCURACIES = ("validation_accuracy", "test_accuracy")


class ChecksFileError(DigitlabError):
    """A checks file is missing, not JSON, or not shaped as :func:`write_checks` writes it."""


@dataclass(frozen=True)
class Check:
    """One cheap run of a results file and the figures the file shows for it.

    ``label`` names the row (``"book-ch1, seed 0"``); ``command`` is what a person runs to
    reproduce it (``"digitlab train --preset book-ch1 --seed 0"``); ``spec`` is the run's
    complete spec, seed included, as ``Spec.model_dump()`` gives it; ``expected`` maps
    metric names of :func:`digitlab.train.trainer.summarise` to their exact values.
    """

    label: str
    command: str
    spec: dict[str, Any]
    expected: dict[str, float]
    #: The same run's figures on other arithmetic, by :func:`arithmetic`'s name for it.
    elsewhere: dict[str, dict[str, float]] = field(default_factory=dict)

    def expected_with(self, arithmetic: str) -> dict[str, float]:
        """The figures a machine of ``arithmetic`` must reproduce: its own where the
        check has them, else the main ones."""
        return self.elsewhere.get(arithmetic, self.expected)

    def exact_with(self, arithmetic: str, written_with: str) -> bool:
        """Whether :meth:`expected_with` gives figures a machine of ``arithmetic`` can
        reproduce exactly, for a check whose main figures came from ``written_with``:
        its own, or main figures of unrecorded origin (which may be its own)."""
        return arithmetic in self.elsewhere or written_with in (arithmetic, UNRECORDED)


@dataclass(frozen=True)
class CheckFile:
    """The checks of one results file (repository-relative, e.g. ``"docs/results/book.md"``),
    the commit they were written at and the arithmetic their main figures came from."""

    results_file: str
    commit: str
    checks: list[Check]
    arithmetic: str = UNRECORDED


def arithmetic() -> str:
    """A name for what decides this machine's float rounding: NumPy's BLAS and the
    kernels it chose for this processor, and the best SIMD level NumPy's functions
    dispatch to here (``"openblas Haswell, numpy X86_V3"``).  With the same versions of
    the libraries, machines of one name run the same kernels and compute the same
    numbers; machines of different names may not.  A part that cannot be told is named
    ``unknown``."""
    from threadpoolctl import threadpool_info

    blas_libraries = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    # SciPy may load a BLAS of its own; NumPy's is the one that multiplies our matrices
    own = [info for info in blas_libraries if "numpy" in str(info.get("filepath", ""))]
    blas = sorted(
        {
            f"{info.get('internal_api', 'unknown')} {info.get('architecture') or ''}".strip()
            for info in own or blas_libraries
        }
    )
    return f"{' + '.join(blas) or 'no BLAS'}, numpy {_simd_level()}"


def _simd_level() -> str:
    """The last (most capable) of the SIMD targets NumPy dispatches to that this
    processor has, else its baseline's; ``unknown`` where NumPy does not say."""
    try:
        from numpy._core import _multiarray_umath as core
    except ImportError:  # NumPy 1.x
        try:
            from numpy.core import _multiarray_umath as core
        except ImportError:
            return "unknown"
    features = getattr(core, "__cpu_features__", {})
    found = [level for level in getattr(core, "__cpu_dispatch__", []) if features.get(level)]
    levels = found or list(getattr(core, "__cpu_baseline__", []))
    return levels[-1] if levels else "unknown"


def checks_path_for(results_file: Path) -> Path:
    """Where the checks of a results file live: ``X.md`` -> ``X.checks.json`` next to it."""
    results_file = Path(results_file)
    return results_file.with_name(results_file.stem + CHECKS_SUFFIX)


def source_commit() -> str:
    """The commit the source is at: the short hash of HEAD of the git repository holding
    the current directory, followed by ``+uncommitted changes`` when anything under its
    ``src`` folder differs from that commit (the figures then belong to no commit), or
    ``unknown`` outside git or without git.  Never raises: a results file is worth writing
    even where its provenance cannot be told."""
    try:
        top = _git("rev-parse", "--show-toplevel", cwd=None)
        commit = _git("rev-parse", "--short", "HEAD", cwd=top)
        changes = _git("status", "--porcelain", "--", "src", cwd=top)
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return "unknown"
    if not commit:
        return "unknown"
    return commit + "+uncommitted changes" if changes else commit


def _git(*args: str, cwd: str | None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=True,
    )
    return done.stdout.strip()


def check_from_history(label: str, command: str, spec: Spec, history: History) -> Check:
    """The check a finished run gives: the best-validation epoch's validation and test
    accuracy and its 1-based number, exactly as :func:`summarise` reports them (and so
    as a model file and the results tables record them).  A history without test
    accuracies checks the other two."""
    summary = summarise(history, spec.train_size or 0)
    if summary.best_epoch is None:
        raise ValueError(f"{label}: the run has no epochs to check")
    return Check(label, command, spec.model_dump(), _figures_of(summary, CHECKED_METRICS))


def _figures_of(summary: TrainingMetrics, names: Iterable[str]) -> dict[str, float]:
    """The named figures of a run's summary as plain numbers, leaving out those it has not
    (a run without test accuracies)."""
    found = {name: getattr(summary, name, None) for name in names}
    return {name: _plain(value) for name, value in found.items() if value is not None}


def write_checks(path: Path, results_file: str, checks: list[Check]) -> bool:
    """Write the checks of ``results_file`` to ``path`` as JSON, atomically, with the
    commit the source is at now; call it when the results file itself is written.

    Where the file already holds the same runs (the same specs, in order) and this
    machine's figures for each equal the new ones, the rerun reproduced them: the
    recorded figures are kept, with the figures other machines recorded, which this one
    cannot record again, and only the checks' labels and commands are brought up to
    date.  Otherwise the file is written anew with this machine's figures only, since
    the old ones belong to other runs or to an engine that computed differently.
    Returns whether this machine's figures replaced the recorded ones."""
    path = Path(path)
    recorded = _reproduced(path, checks)
    if recorded is None:
        _write(path, CheckFile(str(results_file), source_commit(), checks, arithmetic()))
        return True
    described = [
        dataclasses.replace(old, label=new.label, command=new.command)
        for old, new in zip(recorded.checks, checks, strict=True)
    ]
    if described != recorded.checks or recorded.results_file != str(results_file):
        _write(
            path, dataclasses.replace(recorded, results_file=str(results_file), checks=described)
        )
    return False


def _reproduced(path: Path, checks: list[Check]) -> CheckFile | None:
    """The checks file at ``path`` if it holds the runs of ``checks`` (the same specs, in
    order; a spec written before a field existed is the same spec with that field at its
    default) with this machine's figures equal to theirs, else None (also when there is
    no readable file)."""
    try:
        recorded = read_checks(path)
    except ChecksFileError:
        return None
    here = arithmetic()
    same = len(recorded.checks) == len(checks) and all(
        _same_spec(old.spec, new.spec) and old.expected_with(here) == new.expected
        for old, new in zip(recorded.checks, checks, strict=True)
    )
    return recorded if same else None


def _same_spec(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether two specs describe the same run once validated (defaults filled in)."""
    try:
        return make_spec(old) == make_spec(new)
    except SpecError:
        return False


def _write(path: Path, checks: CheckFile) -> None:
    content = {
        "format": FORMAT_VERSION,
        "results_file": checks.results_file,
        "commit": checks.commit,
        "arithmetic": checks.arithmetic,
        "checks": [
            {
                "label": check.label,
                "command": check.command,
                "spec": check.spec,
                "expected": check.expected,
                **({"elsewhere": check.elsewhere} if check.elsewhere else {}),
            }
            for check in checks.checks
        ],
    }
    text = json.dumps(content, indent=2) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode()))


def add_figures_here(path: Path, data: Dataset, replace: bool = False) -> list[str]:
    """Retrain every check of the checks file at ``path`` on this machine and keep its
    figures as those of this machine's :func:`arithmetic`, beside the others, so the
    file's results are checked here too.  Meant for a machine whose arithmetic has no
    figures yet, with the engine as it was when the file was written: figures recorded
    after an engine change would check the changed engine.  So a check that already has
    this arithmetic's figures keeps them unless ``replace``, and a file whose main
    figures are this arithmetic's is left as it is.  Returns one line per check."""
    checks = read_checks(path)
    here = arithmetic()
    if checks.arithmetic == here:
        return [f"{path}: its figures already are {here}'s"]
    updated, lines = [], []
    for check in checks.checks:
        if here in check.elsewhere and not replace:
            updated.append(check)
            lines.append(f"{check.label}: kept the figures it has for {here}")
            continue
        figures = _figures(check, data)
        updated.append(dataclasses.replace(check, elsewhere={**check.elsewhere, here: figures}))
        lines.append(f"{check.label}: {figures} ({here})")
    _write(Path(path), dataclasses.replace(checks, checks=updated))
    return lines


def read_checks(path: Path) -> CheckFile:
    """The checks file at ``path``; a missing, unreadable or malformed file raises a
    one-line :class:`ChecksFileError` naming the file and what is wrong."""
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChecksFileError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ChecksFileError(f"{path} cannot be read ({reason})") from None
    except json.JSONDecodeError as error:
        raise ChecksFileError(
            f"{path} is not JSON ({error.msg} at line {error.lineno}); "
            "regenerate it with the command its results file names"
        ) from None

    def bad(what: str) -> ChecksFileError:
        return ChecksFileError(
            f"{path} is not a checks file: {what}; "
            "regenerate it with the command its results file names"
        )

    if not isinstance(content, dict):
        raise bad("it holds no JSON object")
    if content.get("format") != FORMAT_VERSION:
        raise bad(f"its format is {content.get('format')!r}, not {FORMAT_VERSION}")
    for key in ("results_file", "commit"):
        if not isinstance(content.get(key), str):
            raise bad(f'"{key}" is missing or not text')
    rows = content.get("checks")
    if not isinstance(rows, list):
        raise bad('"checks" is missing or not a list')
    checks = []
    for number, row in enumerate(rows, 1):
        where = f"check {number}"
        if not isinstance(row, dict):
            raise bad(f"{where} is not an object")
        for key in ("label", "command"):
            if not isinstance(row.get(key), str):
                raise bad(f'{where}: "{key}" is missing or not text')
        if not isinstance(row.get("spec"), dict):
            raise bad(f'{where}: "spec" is missing or not an object')
        expected = _figures_read(row.get("expected"), f'{where}: "expected"', bad)
        elsewhere = row.get("elsewhere", {})
        if not isinstance(elsewhere, dict):
            raise bad(f'{where}: "elsewhere" is not an object')
        others = {
            str(name): _figures_read(figures, f'{where}: "elsewhere" for {name}', bad)
            for name, figures in elsewhere.items()
        }
        checks.append(Check(row["label"], row["command"], row["spec"], expected, others))
    written_with = content.get("arithmetic", UNRECORDED)
    if not isinstance(written_with, str):
        raise bad('"arithmetic" is not text')
    return CheckFile(content["results_file"], content["commit"], checks, written_with)


def _figures_read(
    figures: Any, what: str, bad: Callable[[str], ChecksFileError]
) -> dict[str, float]:
    """A check's figures as read from JSON: a non-empty object of numbers."""
    if not isinstance(figures, dict) or not figures:
        raise bad(f"{what} is missing, empty or not an object")
    for name, value in figures.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(f'{what}: "{name}" is not a number')
    return figures


def run_check(check: Check, data: Dataset, written_with: str) -> list[str]:
    """Train the check's spec again on ``data`` and compare the figures with those of this
    machine's arithmetic exactly, or, where the check has none and its main figures came
    from other arithmetic (``written_with``, its file's :attr:`CheckFile.arithmetic`), the
    accuracies within
    :data:`ACROSS_ARITHMETIC`.  One line per figure that moved (``"validation_accuracy:
    committed 0.9531, now 0.9526"``), none when the run reproduces.  A spec that no longer
    validates, or a run that now diverges, is a line too: the figures are gone."""
    here = arithmetic()
    expected = check.expected_with(here)
    exact = check.exact_with(here, written_with)
    try:
        now = _figures(check, data)
    except (SpecError, DivergenceError) as error:
        return [str(error)]
    if exact:
        return [
            f"{name}: committed {_shown(value)}, now {_shown(now.get(name))}"
            for name, value in expected.items()
            if now.get(name) != value
        ]
    return [
        f"{name}: committed {_shown(value)} on {written_with}, now {_shown(now.get(name))}"
        + ("" if now.get(name) is None else f", more than {ACROSS_ARITHMETIC} away")
        for name, value in expected.items()
        if name in ACCURACIES
        and (now.get(name) is None or abs(now[name] - value) > ACROSS_ARITHMETIC)
    ]


def _figures(check: Check, data: Dataset) -> dict[str, float]:
    """The figures the check's spec gives when trained again on ``data``."""
    spec = make_spec(check.spec, source=f"{check.label}: spec")
    trainer = Trainer(spec, data, diagnostics=False)
    return _figures_of(summarise(trainer.run().history, len(trainer.train)), check.expected)


def _plain(value: Any) -> float:
    """A figure as a Python int or float (a NumPy scalar has no JSON form)."""
    return value.item() if hasattr(value, "item") else value


def _shown(value: Any) -> str:
    """A figure as written: floats in full (the shortest text that reads back exactly)."""
    return "missing" if value is None else repr(_plain(value))
