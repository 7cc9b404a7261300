"""Storage URLs of a run: SQLite (WAL) or a journal file on one machine, PostgreSQL/MySQL across machines.

Everything here is Optuna's own storage: :class:`optuna.storages.RDBStorage` with heartbeats (a trial whose
worker stops beating is failed and re-queued by :class:`optuna.storages.RetryHeartbeatStaleTrialCallback`)
and :class:`optuna.storages.JournalStorage` with a file backend.

Accepted URLs::

    sqlite:///path/to/optuna.db            one machine, any number of local worker processes (WAL mode)
    journal:///path/to/optuna.log          Optuna's append-only journal file (NFS-friendly locking)
    postgresql://user:pass@host:5432/db    many machines (``pip install 'autogai[postgres]'``)
    mysql+pymysql://user:pass@host/db      many machines, if you prefer MySQL
"""

from __future__ import annotations

import re
import sqlite3
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autogai.core.errors import StorageError
from autogai.core.logging import mask_secrets

if TYPE_CHECKING:
    import optuna

HEARTBEAT_INTERVAL_S = 5
"""Seconds between a running trial's heartbeats (RDB storages)."""
HEARTBEAT_GRACE_S = 30
"""A RUNNING trial whose last heartbeat is older than this is failed and re-queued."""
MAX_RETRIES = 3
"""How often a trial whose worker died is re-queued before it counts as failed for good."""

SUPPORTED_SCHEMES = ("sqlite", "journal", "postgresql", "mysql")


def default_storage_url(run_dir: Path) -> str:
    """The run's own SQLite file: ``sqlite:///<run>/optuna.db``."""
    return f"sqlite:///{Path(run_dir).resolve() / 'optuna.db'}"


def journal_url(path: Path) -> str:
    return f"journal:///{Path(path).resolve()}"


def redact_url(url: str) -> str:
    """The URL with its credentials (password, credential query parameters) replaced by ``***`` (for logs,
    config.json and error messages)."""
    return mask_secrets(url)


def storage_scheme(url: str) -> str:
    """``sqlite``, ``journal``, ``postgresql`` or ``mysql``; raises :class:`StorageError` otherwise."""
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://", url or "")
    if not match:
        raise StorageError(
            f"storage URL {redact_url(url)!r} is not a URL; use sqlite:///PATH, journal:///PATH or "
            "postgresql://USER:PASSWORD@HOST:PORT/DB"
        )
    scheme = match.group(1).lower().split("+")[0]
    if scheme == "postgres":
        scheme = "postgresql"
    if scheme not in SUPPORTED_SCHEMES:
        raise StorageError(
            f"unsupported storage scheme {match.group(1)!r} in {redact_url(url)!r}; "
            f"supported: {', '.join(SUPPORTED_SCHEMES)}"
        )
    return scheme


def normalize_url(url: str) -> str:
    """``postgres://`` -> ``postgresql://`` (SQLAlchemy accepts only the latter), and a plain
    ``postgresql://`` gets the installed driver (SQLAlchemy 2.1 defaults to psycopg 3; the
    ``postgres`` extra installs psycopg2)."""
    import importlib.util

    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if (
        url.startswith("postgresql://")
        and importlib.util.find_spec("psycopg") is None
        and importlib.util.find_spec("psycopg2") is not None
    ):
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def _file_path(url: str) -> Path:
    """SQLAlchemy's convention: ``x:///rel/path`` is relative, ``x:////abs/path`` absolute."""
    rest = url.split("://", 1)[1]
    return Path(rest[1:] if rest.startswith("/") else rest)


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (``None`` for in-memory databases and other schemes)."""
    if storage_scheme(url) != "sqlite":
        return None
    rest = url.split("://", 1)[1]
    if rest in ("", "/", "/:memory:"):
        return None
    return _file_path(url)


def is_local_storage(url: str) -> bool:
    """SQLite and journal files live on this machine; only their processes can be working on them."""
    return storage_scheme(url) in ("sqlite", "journal")


def _check_writable_file(path: Path, what: str) -> None:
    """The file's directory must exist already: a mistyped URL must not create directories anywhere."""
    path = path.expanduser()
    if not path.parent.is_dir():
        raise StorageError(
            f"the directory of the {what} {path} does not exist; create it first or fix the storage URL"
        )
    probe = path if path.exists() else path.parent
    import os

    if not os.access(probe, os.W_OK):
        raise StorageError(f"the {what} {path} is not writable")


def check_storage_location(url: str) -> None:
    """The file of a SQLite or journal URL must be in an existing, writable directory (nothing is created);
    other schemes are checked when they are opened. Raises :class:`StorageError` with one line."""
    scheme = storage_scheme(normalize_url(url))
    if scheme == "journal":
        _check_writable_file(_file_path(url), "journal file")
    elif scheme == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            _check_writable_file(path, "SQLite storage")


def _enable_wal(path: Path) -> None:
    """WAL lets readers work while one worker writes; the mode is persistent in the file."""
    try:
        connection = sqlite3.connect(str(path), timeout=30)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open SQLite storage {path}: {exc}") from exc


def make_storage(url: str, *, heartbeat: bool = True) -> optuna.storages.BaseStorage:
    """Build the Optuna storage behind ``url``; raises :class:`StorageError` with one clear line.

    RDB storages get heartbeats (``heartbeat`` True): a trial of a worker that died is failed after
    :data:`HEARTBEAT_GRACE_S` seconds and re-queued up to :data:`MAX_RETRIES` times.
    """
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    shown = redact_url(url)
    url = normalize_url(url)
    scheme = storage_scheme(url)
    check_storage_location(url)
    if scheme == "journal":
        path = _file_path(url).expanduser()
        from optuna.storages.journal import JournalFileBackend

        try:
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise StorageError(f"cannot open journal storage {path}: {exc}") from exc
    engine_kwargs: dict[str, Any] = {}
    if scheme == "sqlite":
        db_path = sqlite_path(url)
        if db_path is not None:
            _enable_wal(db_path)
        # Several worker processes write to one file: wait for the lock instead of failing at once.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    elif scheme == "postgresql":
        engine_kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    elif scheme == "mysql":
        engine_kwargs = {"pool_pre_ping": True}
    kwargs: dict[str, Any] = {}
    if heartbeat:
        kwargs = {
            "heartbeat_interval": HEARTBEAT_INTERVAL_S,
            "grace_period": HEARTBEAT_GRACE_S,
            "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=MAX_RETRIES
            ),
        }
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
    except ImportError as exc:
        from autogai.core.errors import MissingDependencyError

        hint = "pip install 'autogai[postgres]'" if scheme == "postgresql" else "install the database driver"
        raise MissingDependencyError(f"storage {shown} needs a database driver: {hint}") from exc
    except Exception as exc:  # sqlalchemy.exc.OperationalError and friends: unreachable, auth, read-only
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        first = reason[0] if reason else type(exc).__name__
        raise StorageError(f"cannot use storage {shown}: {first}") from exc
