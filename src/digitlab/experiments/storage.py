"""Where studies live: Optuna's relational storage (SQLite by default, PostgreSQL to scale).

Every worker, on this machine or another, points at the same database; Optuna keeps the
trials there, so workers share one study without talking to each other.  Workers send a
heartbeat while a trial runs; a trial whose worker died stops beating, is marked failed
by the next worker that looks, and its configuration is queued again.
"""

from __future__ import annotations

import os
import random
import time
import warnings
from pathlib import Path

import optuna
import platformdirs
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from digitlab.errors import DigitlabError

STORAGE_ENV = "DIGITLAB_STORAGE"
DEFAULT_HEARTBEAT = 10  # seconds
MAX_RETRIES = 3
SCHEMA_RACE_RETRIES = 5


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
    mistyped path) or is no SQLite database is an error, not made or turned into one."""
    url = url or default_storage_url()
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
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats are marked experimental in Optuna, yet they are what makes dead workers'
    # trials retry; the warning says nothing a user can act on.
    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    # Our workers ask for trials and send the heartbeats themselves (runner.Heartbeat)
    # rather than through Study.optimize, which Optuna warns of, to no purpose here.
    warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used", UserWarning)
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


#: How every SQLite database file begins.
SQLITE_HEADER = b"SQLite format 3\x00"


def _require_sqlite_file(path: Path) -> None:
    """Refuse a path with no SQLite database at it, naming what is there instead."""
    if not path.exists():
        raise StorageError(
            f"no study storage at {path}: the file does not exist (`digitlab study run` "
            "creates it; check the path)"
        )
    if not path.is_file():
        raise StorageError(f"no study storage at {path}: it is not a file")
    with open(path, "rb") as handle:
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
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
