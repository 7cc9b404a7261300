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

import functools
import logging
import os
import random
import re
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

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

OUTAGE_LIMIT_ENV = "AUTOGAI_STORAGE_OUTAGE_LIMIT"
"""How long a storage may stay unreachable before a search or worker gives up (``30s``, ``5m``, ``1h``)."""
DEFAULT_OUTAGE_LIMIT_S = 600.0
RETRY_BASE_S = 0.5
RETRY_MAX_S = 5.0
"""Reconnection attempts back off exponentially from RETRY_BASE_S to RETRY_MAX_S (with jitter)."""

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


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


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h`` -> seconds; raises :class:`StorageError` (one line) otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text or "")
    if not match:
        raise StorageError(f"storage outage limit {text!r} is not a duration; use e.g. 90s, 5m or 1h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def outage_limit_s() -> float:
    """The user's limit (``--storage-outage-limit`` / ``AUTOGAI_STORAGE_OUTAGE_LIMIT``), 10 minutes unset."""
    text = os.environ.get(OUTAGE_LIMIT_ENV)
    return DEFAULT_OUTAGE_LIMIT_S if not text else parse_duration(text)


def _damaged_sqlite(path: Path, reason: object) -> StorageError:
    return StorageError(
        f"the SQLite storage {path} is damaged ({reason}); move it away (or restore a backup) and run the "
        "search again: a run directory without optuna.db starts its trials afresh"
    )


def _enable_wal(path: Path) -> None:
    """WAL lets readers work while one worker writes; the mode is persistent in the file. A quick
    integrity check first: a truncated or overwritten file must fail here, in one line, not mid-search."""
    try:
        connection = sqlite3.connect(str(path), timeout=30)
        try:
            if path.is_file() and path.stat().st_size > 0:
                verdict = connection.execute("PRAGMA quick_check").fetchone()
                if not verdict or verdict[0] != "ok":
                    raise _damaged_sqlite(path, verdict[0] if verdict else "integrity check failed")
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc) or "malformed" in str(exc):
            raise _damaged_sqlite(path, exc) from exc
        raise StorageError(f"cannot open SQLite storage {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open SQLite storage {path}: {exc}") from exc


def _root_cause(exc: BaseException) -> BaseException:
    """The database driver's error under SQLAlchemy's and Optuna's wrappers."""
    seen = exc
    while True:
        inner = getattr(seen, "orig", None) or seen.__cause__
        if inner is None or inner is seen:
            return seen
        seen = inner


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _describe(exc: BaseException) -> str:
    """What went wrong with the database, in one masked line."""
    import sqlalchemy.exc

    cause = _root_cause(exc)
    if isinstance(cause, sqlalchemy.exc.PendingRollbackError):
        return "the connection broke in the middle of a transaction"
    return mask_secrets(_first_line(cause))


def _is_disk_full(exc: BaseException) -> bool:
    text = str(_root_cause(exc)).lower()
    return "database or disk is full" in text or "no space left" in text or "disk i/o error" in text


def _is_transient(exc: BaseException) -> bool:
    """A lost or refused connection (server restarting, network blip) or a locked SQLite file: worth
    waiting for. Anything else (bad data, schema, a full disk) is raised at once."""
    import optuna
    import sqlalchemy.exc

    if _is_disk_full(exc) or "no such table" in str(_root_cause(exc)).lower():
        return False
    candidates: list[BaseException] = [exc]
    if isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__ is not None:
        candidates.append(exc.__cause__)
    for candidate in candidates:
        if isinstance(candidate, sqlalchemy.exc.DBAPIError) and candidate.connection_invalidated:
            return True
        if isinstance(candidate, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
        # A session whose connection broke mid-transaction refuses further work until it is rolled back;
        # Optuna's session scope rolls it back on the way out, so the next attempt starts clean.
        if isinstance(candidate, sqlalchemy.exc.PendingRollbackError):
            return True
    return False


class StorageOutage:
    """One process's view of its storage's availability: waits for the storage to come back (bounded
    exponential backoff), logs once per outage, and gives up after the outage limit.

    Processes that noticed an outage also hold back their stale-trial checks until every worker has had
    time to beat again (:meth:`recently_recovered`): heartbeats could not be written while the database
    was away, and a trial must not be failed for that.
    """

    def __init__(self, shown_url: str, limit_s: float, grace_s: float) -> None:
        self.shown_url = shown_url
        self.limit_s = limit_s
        self.grace_s = grace_s
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._recovered_at: float | None = None
        self._gave_up = False
        self._local = threading.local()

    # --- state -------------------------------------------------------------------------------------
    def _note_failure(self, exc: BaseException) -> float:
        """Record a failed call; returns how long the storage has been away."""
        now = time.monotonic()
        with self._lock:
            if self._down_since is None:
                self._down_since = now
                logger.warning(
                    "storage %s unreachable (%s); waiting up to %.0f s for it to come back",
                    self.shown_url,
                    _describe(exc),
                    self.limit_s,
                )
            return now - self._down_since

    def _note_success(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            logger.warning(
                "storage %s is back after %.0f s", self.shown_url, time.monotonic() - self._down_since
            )
            self._down_since = None
            self._recovered_at = time.monotonic()
            self._gave_up = False

    def is_down(self) -> bool:
        return self._down_since is not None

    def recently_recovered(self) -> bool:
        """True during an outage and for ``grace_s`` seconds after it."""
        if self._down_since is not None:
            return True
        return self._recovered_at is not None and time.monotonic() - self._recovered_at < self.grace_s

    def _give_up(self, exc: BaseException, waited: float) -> StorageError:
        self._gave_up = True
        return StorageError(
            f"storage {self.shown_url} unreachable for {waited:.0f} s, longer than the outage limit "
            f"({self.limit_s:.0f} s; --storage-outage-limit or {OUTAGE_LIMIT_ENV}): "
            f"{_describe(exc)}; run the same command again to resume"
        )

    # --- calls -------------------------------------------------------------------------------------
    def call(self, fn: Callable[..., _T], *args: Any, retry: bool = True, **kwargs: Any) -> _T:
        """``fn(*args, **kwargs)``, retried while the storage is unreachable (``retry``), else tried once."""
        if getattr(self._local, "depth", 0) > 0:  # a storage method calling another: one retry loop
            return fn(*args, **kwargs)
        attempt = 0
        while True:
            self._local.depth = 1
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                if _is_disk_full(exc):
                    raise StorageError(
                        f"storage {self.shown_url} cannot write: {_first_line(_root_cause(exc))}; free some "
                        "space and run the same command again to resume"
                    ) from exc
                if not _is_transient(exc):
                    raise
                waited = self._note_failure(exc)
                if not retry:
                    raise
                if self._gave_up or waited >= self.limit_s:
                    raise self._give_up(exc, waited) from exc
                delay = min(RETRY_MAX_S, RETRY_BASE_S * 2**attempt) * random.uniform(0.8, 1.2)
                attempt += 1
                time.sleep(min(delay, max(0.1, self.limit_s - waited)))
                continue
            finally:
                self._local.depth = 0
            self._note_success()
            return result


_OUTAGES: dict[str, StorageOutage] = {}


def storage_outage(storage: object) -> StorageOutage | None:
    """The outage tracker of a storage made by :func:`make_storage` (None for journal storages)."""
    return getattr(storage, "outage", None)


@functools.cache
def _resilient_rdb_class() -> type:
    """An :class:`optuna.storages.RDBStorage` whose calls wait out a database outage (see
    :class:`StorageOutage`). Heartbeats are tried once: a missed beat costs nothing (stale checks wait for
    the workers to beat again after an outage), and the heartbeat thread must not hang on one."""
    import optuna

    base = optuna.storages.RDBStorage
    best_effort = {"record_heartbeat"}
    names = [
        name
        for name in dir(optuna.storages.BaseStorage)
        if not name.startswith("_") and callable(getattr(optuna.storages.BaseStorage, name))
    ] + ["record_heartbeat", "get_heartbeat_interval"]
    # The study's cache in front of the storage (what ``optuna.load_study`` hands out) reaches the database
    # through these helpers of RDBStorage as well; wrapped where this Optuna version has them.
    names += ["_create_new_trial", "_set_trial_param", "_get_best_trial_id", "_get_trials"]
    names += ["_get_stale_trial_ids"]
    namespace: dict[str, Any] = {"outage": None}

    def wrap(name: str) -> Callable[..., Any]:
        original = getattr(base, name)
        retry = name not in best_effort

        @functools.wraps(original)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            if self.outage is None:
                return original(self, *args, **kwargs)
            return self.outage.call(original, self, *args, retry=retry, **kwargs)

        return method

    for name in sorted(set(names)):
        if name in ("remove_session",) or not hasattr(base, name):
            continue
        namespace[name] = wrap(name)
    return type("ResilientRDBStorage", (base,), namespace)


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
        storage = _resilient_rdb_class()(url, engine_kwargs=engine_kwargs, **kwargs)
    except ImportError as exc:
        from autogai.core.errors import MissingDependencyError

        hint = "pip install 'autogai[postgres]'" if scheme == "postgresql" else "install the database driver"
        raise MissingDependencyError(f"storage {shown} needs a database driver: {hint}") from exc
    except Exception as exc:  # sqlalchemy.exc.OperationalError and friends: unreachable, auth, read-only
        first = mask_secrets(_first_line(_root_cause(exc)))
        if "no longer compatible with the table schema" in first or "schema" in first.lower():
            raise StorageError(
                f"storage {shown} was written by another Optuna version ({first}); upgrade it with "
                f"`optuna storage upgrade --storage URL`, or use the autogai version that created it"
            ) from exc
        if scheme == "sqlite" and ("not a database" in first or "malformed" in first):
            raise _damaged_sqlite(sqlite_path(url) or Path(shown), first) from exc
        if _is_disk_full(exc):
            raise StorageError(f"storage {shown} cannot write: {first}; free some space") from exc
        raise StorageError(f"cannot use storage {shown}: {first}") from exc
    # The constructor met the database: from here on, outages are waited out (up to the limit), and
    # Optuna's own warning about a query that lost its connection (it retries it once) is not repeated:
    # the outage is logged once, here.
    logging.getLogger("optuna.storages._rdb.storage").setLevel(logging.ERROR)
    outage = _OUTAGES.setdefault(
        shown, StorageOutage(shown, outage_limit_s(), HEARTBEAT_GRACE_S + 2 * HEARTBEAT_INTERVAL_S)
    )
    outage.limit_s = outage_limit_s()
    storage.outage = outage
    return storage
