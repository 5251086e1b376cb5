"""Where studies live: Optuna's relational storage (SQLite by default, PostgreSQL to scale).

Every worker, on this machine or another, points at the same database; Optuna keeps the
trials there, so workers share one study without talking to each other.  Workers send a
heartbeat while a trial runs; a trial whose worker died stops beating, is marked failed
by the next worker that looks, and its configuration is queued again.

A database lives on one machine, and a report outlives it only if the study does too.
So every report also keeps its study as an Optuna journal file -- a text log of the
study's settings and trials, each with its runs' curves and diagnostics -- which any
command that only reads a study takes in place of a database (``--storage
docs/studies/NAME/journal.log``), and optuna-dashboard opens as it is.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
import warnings
from pathlib import Path

import optuna
import platformdirs
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from digitlab.atomic import atomic_write
from digitlab.errors import DigitlabError

STORAGE_ENV = "DIGITLAB_STORAGE"
DEFAULT_HEARTBEAT = 10  # seconds
MAX_RETRIES = 3
SCHEMA_RACE_RETRIES = 5
#: The file a report keeps its study in, beside its README.md.
JOURNAL_NAME = "journal.log"
#: The study attribute in which a journal written here records, in its last entry, how
#: many entries it holds, so that lost lines -- even whole ones -- are found on reading.
JOURNAL_ENTRIES_ATTR = "digitlab:journal entries"
#: The writer every entry of a journal written here names, instead of Optuna's random
#: one per process, so that a study saved twice gives the same file.
JOURNAL_WRITER = "digitlab"
#: The largest journal file read: the shipped studies' are a few megabytes, and reading
#: one holds all of it in memory.
MAX_JOURNAL_BYTES = 256 * 2**20


class StorageError(DigitlabError):
    """A storage URL that is malformed, unreachable or unusable."""


def default_storage_url() -> str:
    """``$DIGITLAB_STORAGE``, else a SQLite file in the user's data directory."""
    configured = os.environ.get(STORAGE_ENV)
    if configured:
        return configured
    folder = Path(platformdirs.user_data_dir("digitlab"))
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'studies.db'}"


def default_storage_exists() -> bool:
    """Whether the default storage is there to read: a server named by
    ``$DIGITLAB_STORAGE`` is assumed so, the default SQLite file must exist."""
    url = default_storage_url()
    database = _sqlite_file(url) if url.startswith("sqlite") else None
    return not database or Path(database).expanduser().exists()


def open_storage(
    url: str | None = None, heartbeat: int = DEFAULT_HEARTBEAT, create: bool = True
) -> RDBStorage:
    """Connect to the study database, with heartbeats and retry of dead workers' trials.
    ``create=False`` is for commands that only read: a SQLite file that is not there (a
    mistyped path) or is no SQLite database is an error, not made or turned into one.
    A plain path, not a URL, is taken for the SQLite file it holds."""
    url = url or default_storage_url()
    if "://" not in url:
        path = Path(url)
        if not _holds_sqlite(path):
            raise StorageError(
                "a study runs in a database (--storage sqlite:///FILE.db, or "
                f"postgresql://…), and {path} is no SQLite database: a plain path is read as "
                "a report's journal file, which `study report` and `study list` read but a "
                "run cannot keep its heartbeats in"
            )
        url = f"sqlite:///{path.resolve()}"
    engine_kwargs = {}
    if url.startswith("sqlite"):
        # Several local processes share one SQLite file: wait for locks instead of failing.
        engine_kwargs = {"connect_args": {"timeout": 120}}
        database = _sqlite_file(url)
        if database and database != ":memory:":
            path = Path(database).expanduser()
            if not create:
                _require_sqlite_file(path)
            path.parent.mkdir(parents=True, exist_ok=True)
    else:
        engine_kwargs = {"pool_pre_ping": True}
    _quiet_optuna()
    try:
        return _connect(url, engine_kwargs, heartbeat, skip_table_creation=not create)
    except ImportError:  # Optuna's wrapping of a missing database driver
        raise StorageError(
            f"storage {redact(url)} needs its database driver; for PostgreSQL: "
            'pip install "digitlab[postgres]" (psycopg)'
        ) from None
    except Exception as exc:  # SQLAlchemy's many errors for bad URLs and dead servers
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"cannot open study storage {redact(url)}: {reason}") from None


def _quiet_optuna() -> None:
    """Keep Optuna to what a user can act on: its warnings, not its news of new studies."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats are marked experimental in Optuna, yet they are what makes dead workers'
    # trials retry; the warning says nothing a user can act on.
    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    # Our workers ask for trials and send the heartbeats themselves (runner.Heartbeat)
    # rather than through Study.optimize, which Optuna warns of, to no purpose here.
    warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used", UserWarning)


#: How every SQLite database file begins.
SQLITE_HEADER = b"SQLite format 3\x00"


def read_storage(url: str | None = None) -> BaseStorage:
    """The storage of a command that only reads studies (a report, a list): the database
    as :func:`open_storage` opens it without creating anything, or, for a plain path to
    a file that is no SQLite database, the journal file a report keeps its study in."""
    url = url or default_storage_url()
    if "://" in url or _holds_sqlite(Path(url)):
        return open_storage(url, create=False)
    return open_journal(Path(url))


def open_journal(path: Path) -> JournalStorage:
    """A study kept in an Optuna journal file, as every report keeps its own, to read.
    The file is checked -- there, a file, no larger than :data:`MAX_JOURNAL_BYTES`,
    every line a JSON object naming an operation, the last one whole -- before Optuna
    replays it, and operations Optuna cannot replay are one clear error too."""
    if not path.exists():
        raise StorageError(f"no study storage at {path}: the file does not exist")
    if not path.is_file():
        raise StorageError(f"no study storage at {path}: it is not a file")
    size = path.stat().st_size
    if size > MAX_JOURNAL_BYTES:
        raise StorageError(
            f"{path}: {size / 2**20:.0f} MiB is more than the "
            f"{MAX_JOURNAL_BYTES // 2**20} MiB a study journal is read up to"
        )
    entries, ours = _journal_entries(path)
    _quiet_optuna()
    try:
        storage = JournalStorage(JournalFileBackend(str(path)))
        recorded = [
            study.user_attrs.get(JOURNAL_ENTRIES_ATTR) for study in storage.get_all_studies()
        ]
    except Exception as exc:  # Optuna's replay of a damaged log: decoding or state errors
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(
            f"cannot read the study journal {path}: it is damaged ({reason})"
        ) from None
    if ours:  # written whole by save_journal: it must count itself, and be that long
        _check_count(path, recorded, entries)
    return storage


def _check_count(path: Path, recorded: list[object], entries: int) -> None:
    """Refuse a journal written by :func:`save_journal` whose entries are not as many as
    its last one says: lines lost or added, the count among them."""
    count = recorded[0] if len(recorded) == 1 else "several"
    problem = None
    if count is None:
        problem = "its last entry, which counts the others, is missing"
    elif type(count) is not int:
        problem = "its count of entries is damaged"
    elif count != entries:
        problem = f"it holds {entries} entries where it was written with {count}"
    if problem:
        raise StorageError(
            f"cannot read the study journal {path}: {problem}, so lines were lost or added"
        )


def save_journal(study: optuna.Study, path: Path) -> None:
    """Write ``study`` -- its settings and every trial, with the runs' curves and
    diagnostics its reports read -- to an Optuna journal file at ``path``, atomically.
    Every entry names one writer (:data:`JOURNAL_WRITER`), so the same study gives the
    same file, and the last one says how many entries there are, which reading checks.
    The copy is made in a folder of its own first, so a study read from ``path`` itself
    can be saved there again."""
    _quiet_optuna()
    with tempfile.TemporaryDirectory(prefix="digitlab-journal-") as folder:
        copy = Path(folder) / JOURNAL_NAME
        kept = optuna.create_study(
            study_name=study.study_name,
            storage=JournalStorage(JournalFileBackend(str(copy))),
            directions=study.directions,
        )
        if study.metric_names:
            kept.set_metric_names(study.metric_names)
        for key, value in study.user_attrs.items():
            if key != JOURNAL_ENTRIES_ATTR:
                kept.set_user_attr(key, value)
        kept.add_trials(study.get_trials(deepcopy=False))
        kept.set_user_attr(JOURNAL_ENTRIES_ATTR, len(copy.read_bytes().splitlines()) + 1)
        lines = [
            json.dumps({**json.loads(line), "worker_id": JOURNAL_WRITER}) + "\n"
            for line in copy.read_text().splitlines()
        ]
    atomic_write(path, lambda handle: handle.write("".join(lines).encode()))


def check_journal_replaceable(path: Path, study: optuna.Study) -> None:
    """Refuse to save ``study`` at ``path`` over a journal that keeps anything it lacks:
    another study, or trials it does not have (a report written from a database that
    holds fewer trials).  Such a journal may be the last copy of a study."""
    if not path.exists():
        return
    leave = "it is left as it is: report into another --out, or remove it first"
    try:
        storage = open_journal(path)
    except StorageError as exc:
        raise StorageError(f"{exc}; {leave}") from None
    names = optuna.get_all_study_names(storage)
    if names != [study.study_name]:
        raise StorageError(
            f"{path} keeps the study {', '.join(map(repr, names))}, not "
            f"{study.study_name!r}; {leave}"
        )
    given = {trial.number: trial for trial in study.get_trials(deepcopy=False)}
    kept = optuna.load_study(study_name=study.study_name, storage=storage)
    lacking = [t for t in kept.get_trials(deepcopy=False) if not _has(given, t)]
    if lacking:
        raise StorageError(
            f"{path} keeps {len(lacking)} trial(s) of {study.study_name!r} that the storage "
            f"given lacks; {leave} (`--storage {path}` reports from it)"
        )


def _has(given: dict[int, optuna.trial.FrozenTrial], trial: optuna.trial.FrozenTrial) -> bool:
    """Whether the trials ``given`` (by number) hold ``trial``: one of that number, and
    for a finished trial the same one, finished too (same start and point).  A trial
    that was queued or running when the journal was written has since gone on."""
    other = given.get(trial.number)
    if other is None or not trial.state.is_finished():
        return other is not None
    same = (other.datetime_start, other.params) == (trial.datetime_start, trial.params)
    return other.state.is_finished() and same


def _journal_entries(path: Path) -> tuple[int, bool]:
    """The number of entries in the journal at ``path``, and whether every one was
    written here (by :data:`JOURNAL_WRITER`), after checking that every line is a JSON
    object naming an operation and the last one whole (a StorageError if not).  Optuna
    itself would skip a last line it cannot read, taking it for one still being
    written: for a study's archive, that would be trials silently missing."""
    number, ours = 0, True
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                entry = None
            readable = isinstance(entry, dict) and "op_code" in entry
            problem = None
            if number == 1 and not readable:
                problem = (
                    "it is neither a SQLite database nor an Optuna journal file (give a "
                    "database as a URL: sqlite:///FILE, postgresql://…)"
                )
            elif not line.endswith(b"\n"):
                problem = "it ends in the middle of a line, cut short"
            elif not readable:
                problem = f"line {number} is not a journal entry: the file is damaged"
            if problem:
                raise StorageError(f"cannot read the study journal {path}: {problem}")
            ours = ours and entry.get("worker_id") == JOURNAL_WRITER
    if not number:
        raise StorageError(f"cannot read the study journal {path}: it is empty")
    return number, ours


def _holds_sqlite(path: Path) -> bool:
    return path.is_file() and _starts_with(path, SQLITE_HEADER)


def _starts_with(path: Path, header: bytes) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(header)) == header


def _require_sqlite_file(path: Path) -> None:
    """Refuse a path with no SQLite database at it, naming what is there instead."""
    if not path.exists():
        raise StorageError(
            f"no study storage at {path}: the file does not exist (`digitlab study run` "
            "creates it; check the path)"
        )
    if not path.is_file():
        raise StorageError(f"no study storage at {path}: it is not a file")
    if not _starts_with(path, SQLITE_HEADER):
        raise StorageError(f"no study storage at {path}: it is not a SQLite database")


def _sqlite_file(url: str) -> str | None:
    """The database file a SQLite URL names (its query string, such as ``?timeout=60``,
    left out); None for a URL SQLAlchemy cannot read."""
    try:
        return make_url(url).database
    except ArgumentError:
        return None


def _connect(
    url: str, engine_kwargs: dict, heartbeat: int, skip_table_creation: bool = False
) -> RDBStorage:
    """Connect, retrying while another worker is creating the tables of a new database
    (PostgreSQL's concurrent CREATE TABLE fails with a unique-key violation)."""
    attempt = 0
    while True:
        try:
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                skip_table_creation=skip_table_creation,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=MAX_RETRIES
                ),
            )
        except Exception as exc:
            attempt += 1
            racing = "already exists" in str(exc) or "duplicate key" in str(exc)
            if not racing or attempt == SCHEMA_RACE_RETRIES:
                raise
            time.sleep(random.uniform(0.2, 1.0) * attempt)


def redact(url: str) -> str:
    """The URL with any password hidden, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest and ":" in rest.split("@", 1)[0]:
        user = rest.split("@", 1)[0].split(":", 1)[0]
        rest = f"{user}:***@{rest.split('@', 1)[1]}"
    return f"{scheme}{sep}{rest}"
