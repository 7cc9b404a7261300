"""Studies of a run: naming, creation, the trial queue, and recovery of trials whose worker died.

Layout in the storage (one storage per run, or one PostgreSQL database shared by many runs):

- ``<run>/_run``: the run's metadata study (no trials): its user attributes hold the resolved search
  configuration workers need (task, action space, budget, device) and the run status.
- ``<run>/<design-id>``: one tuning study per design, the design in its user attributes.
- ``<run>/<design-id>/validation``: the design's top tuning configurations (TD3's defaults among them)
  re-scored on validation seeds, one trial per (configuration, seed); the best validation IQM wins.
- ``<run>/<design-id>/test``: a finalist's chosen configuration retrained once on the test seeds at the
  end of the search (one trial per seed); only these scores make the verdict.

Work is handed out through Optuna's own trial queue: the pipeline enqueues exactly the trials a rung
needs (``Study.enqueue_trial``) and workers take WAITING trials with the storage's compare-and-set
(``set_trial_state_values``), so no trial runs twice and none is created beyond the budget.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from autogai.core.errors import StorageError

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

META_SUFFIX = "_run"
VALIDATION_SUFFIX = "validation"
TEST_SUFFIX = "test"
SCORING_SUFFIXES = (VALIDATION_SUFFIX, TEST_SUFFIX)
"""Studies whose trials are seeds of fixed configurations: a worker claims all their waiting trials at once."""


def meta_study_name(run_name: str) -> str:
    return f"{run_name}/{META_SUFFIX}"


def design_study_name(run_name: str, design_id: str) -> str:
    return f"{run_name}/{design_id}"


def scoring_study_name(run_name: str, design_id: str, kind: str) -> str:
    """The design's ``validation`` or ``test`` study."""
    if kind not in SCORING_SUFFIXES:
        raise ValueError(f"kind={kind!r}; expected one of {SCORING_SUFFIXES}")
    return f"{run_name}/{design_id}/{kind}"


def is_scoring_study(name: str) -> bool:
    return name.rsplit("/", 1)[-1] in SCORING_SUFFIXES


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*Heartbeat of storage.*")
    warnings.filterwarnings("ignore", message=".*enqueue.*")
    warnings.filterwarnings("ignore", message=".*Fixed parameter.*")


def run_study_names(storage: optuna.storages.BaseStorage, run_name: str) -> list[str]:
    """All studies of the run except the metadata study, sorted by name."""
    prefix = f"{run_name}/"
    names = [s.study_name for s in storage.get_all_studies() if s.study_name.startswith(prefix)]
    return sorted(n for n in names if n != meta_study_name(run_name))


def get_or_create_study(
    storage: optuna.storages.BaseStorage, name: str, user_attrs: dict[str, Any] | None = None
) -> optuna.Study:
    """Load the study ``name`` or create it (maximising fitness) with ``user_attrs``."""
    import optuna

    _quiet_optuna()
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
    if user_attrs:
        existing = study.user_attrs
        for key, value in user_attrs.items():
            if key not in existing:
                study.set_user_attr(key, value)
    return study


def load_study(storage: optuna.storages.BaseStorage, name: str, **kwargs: Any) -> optuna.Study:
    import optuna

    _quiet_optuna()
    return optuna.load_study(study_name=name, storage=storage, **kwargs)


RUN_LAYOUT = 1
"""Version of the run's layout in the storage (study names, attributes); a newer one is refused."""


def check_run_layout(config: dict[str, Any], run_name: str) -> None:
    """Raise StorageError (one line) for a run written by an autogai with a newer storage layout."""
    layout = config.get("layout", RUN_LAYOUT)
    if not isinstance(layout, int) or layout > RUN_LAYOUT:
        import autogai

        written_by = config.get("autogai_version", "a newer autogai")
        raise StorageError(
            f"run {run_name!r} was written by autogai {written_by} (storage layout {layout}); this autogai "
            f"{autogai.__version__} reads layout {RUN_LAYOUT}: upgrade autogai, or start a new run directory"
        )


def read_run_config(storage: optuna.storages.BaseStorage, run_name: str) -> dict[str, Any]:
    """The configuration the pipeline stored for workers; raises StorageError if the run is unknown."""
    try:
        study_id = storage.get_study_id_from_name(meta_study_name(run_name))
    except KeyError as exc:
        runs = sorted(
            {
                s.study_name.rsplit("/", 1)[0]
                for s in storage.get_all_studies()
                if s.study_name.endswith(f"/{META_SUFFIX}")
            }
        )
        known = ", ".join(runs) or "none"
        raise StorageError(f"no run named {run_name!r} in this storage; runs there: {known}") from exc
    config = dict(storage.get_study_user_attrs(study_id))
    check_run_layout(config, run_name)
    return config


def budget_units(study: optuna.Study) -> int:
    """Trials that count against the study's budget: everything except re-queued copies of trials
    whose worker died (those replace their original) and the surplus trials older versions created when
    workers raced for an empty queue."""
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if "failed_trial" not in t.system_attrs and not t.user_attrs.get("surplus")
    )


def enqueue_to(
    study: optuna.Study,
    target: int,
    first_params: list[dict[str, Any]] | None = None,
    user_attrs: list[dict[str, Any]] | None = None,
) -> int:
    """Enqueue trials until the study holds ``target`` budget units; returns how many were added.

    ``first_params`` (e.g. the design's hyperparameter hints) fix the parameters of the first trials;
    ``user_attrs[i]`` go to the i-th trial of the study overall. Idempotent: a resumed run adds nothing
    that is already there.
    """
    have = budget_units(study)
    added = 0
    for index in range(have, target):
        params = (first_params or [])[index] if first_params and index < len(first_params) else {}
        attrs = (user_attrs or [])[index] if user_attrs and index < len(user_attrs) else {}
        study.enqueue_trial(params, user_attrs={**attrs, QUEUED_ATTR: True}, skip_if_exists=False)
        added += 1
    return added


def worker_identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (killed, not yet reaped) still answers signal 0: check its state.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@contextlib.contextmanager
def _file_lock(path: str | None) -> Iterator[None]:
    """An exclusive lock between processes of this host (no-op without a path)."""
    if path is None:
        yield
        return
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def holding_claims(lock_path: str | None) -> contextlib.AbstractContextManager[None]:
    """Keep this host's workers from claiming while a phase's trials are queued: a batch claimed half-way
    through would split one population in two (slower, and the result of a seed would depend on timing)."""
    return _file_lock(lock_path)


def claim_lock_path(storage_url: str) -> str | None:
    """SQLite has no row locks (``SELECT ... FOR UPDATE``), so two processes could both move one trial
    from WAITING to RUNNING; a lock file beside the database serialises the claim. PostgreSQL/MySQL lock
    the row, and the journal storage orders operations in its log."""
    from autogai.search.storage import sqlite_path, storage_scheme

    if storage_scheme(storage_url) != "sqlite":
        return None
    path = sqlite_path(storage_url)
    return None if path is None else str(path) + ".claim-lock"


QUEUED_ATTR = "queued"
"""User attribute every trial enqueued by the pipeline carries; a trial without it was not asked for."""


def claim_waiting_trials(
    storage: optuna.storages.BaseStorage,
    study: optuna.Study,
    limit: int,
    *,
    lock_path: str | None = None,
) -> list[tuple[optuna.Trial, int]]:
    """Take up to ``limit`` WAITING trials of ``study``: a batch that one worker trains as a population.

    Each trial moves WAITING -> RUNNING through the storage's compare-and-set
    (``set_trial_state_values`` returns False to every process but the one that moved it; PostgreSQL and
    MySQL lock the row, local SQLite workers also hold a file lock), is signed with this worker's identity
    at once, and is handed out as an :class:`optuna.Trial` whose free parameters the sampler fills when
    the objective asks. Unlike ``Study.ask``, nothing is ever created: the pipeline alone decides how many
    trials a study gets, so many workers racing for one queue can neither run a trial twice nor add one.
    """
    import optuna
    from optuna.trial import TrialState

    claimed: list[tuple[optuna.Trial, int]] = []
    if limit < 1:
        return claimed
    study_id = storage.get_study_id_from_name(study.study_name)
    with _file_lock(lock_path):
        candidates = list(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        while candidates and len(claimed) < limit:
            frozen = candidates.pop(0)
            if not frozen.user_attrs.get(QUEUED_ATTR):
                continue
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
            try:
                won = storage.set_trial_state_values(trial_id, state=TrialState.RUNNING)
            except optuna.exceptions.UpdateFinishedTrialError:
                won = False
            if not won:
                # Another worker took it first: the others race along the queue too, so go on from a random
                # place instead of queueing behind their row locks trial after trial.
                if candidates:
                    k = random.randrange(len(candidates))
                    candidates = candidates[k:] + candidates[:k]
                continue
            storage.set_trial_user_attr(trial_id, "worker", worker_identity())
            claimed.append((optuna.Trial(study, trial_id), trial_id))
    return claimed


def claim_waiting_trial(
    storage: optuna.storages.BaseStorage, study: optuna.Study, *, lock_path: str | None = None
) -> tuple[optuna.Trial, int] | None:
    """One WAITING trial of ``study`` (see :func:`claim_waiting_trials`), or None."""
    claimed = claim_waiting_trials(storage, study, 1, lock_path=lock_path)
    return claimed[0] if claimed else None


@contextlib.contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Optuna's heartbeat for a trial run outside ``Study.optimize`` (RDB storages only)."""
    import optuna

    interval = storage.get_heartbeat_interval() if isinstance(storage, optuna.storages.RDBStorage) else None
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
            except Exception as exc:  # a transient database error must not kill the trial
                logger.debug("heartbeat of trial %s failed: %s", trial_id, exc)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def fail_stale_trials(storage: optuna.storages.BaseStorage, study: optuna.Study) -> None:
    """Heartbeat-based: fail RUNNING trials whose worker stopped beating and re-queue them; also the
    orphans no worker ever signed (:func:`fail_orphaned_trials`)."""
    import optuna

    if _heartbeats_unreliable(storage):
        return
    _quiet_optuna()
    optuna.storages.fail_stale_trials(study)
    fail_orphaned_trials(storage, study)


def _heartbeats_unreliable(storage: optuna.storages.BaseStorage) -> bool:
    """During a database outage and shortly after it no worker could beat: judging trials by their
    heartbeats then would fail live work (see :class:`autogai.search.storage.StorageOutage`)."""
    from autogai.search.storage import storage_outage

    outage = storage_outage(storage)
    return outage is not None and outage.recently_recovered()


def _fail_and_requeue(
    storage: optuna.storages.BaseStorage,
    study: optuna.Study,
    number: int,
    reason: str,
    retry: optuna.storages.RetryHeartbeatStaleTrialCallback,
) -> bool:
    """Fail RUNNING trial ``number`` of ``study`` with ``reason`` and enqueue its retry; False if another
    process finished or failed it first."""
    import optuna
    from optuna.trial import TrialState

    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(study.study_name), number
    )
    try:
        storage.set_trial_user_attr(trial_id, "reason", reason)
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    retry(study, storage.get_trial(trial_id))
    logger.info("%s trial %d: %s", study.study_name, number, reason)
    return True


def return_trials(
    storage: optuna.storages.BaseStorage, study: optuna.Study, numbers: list[int], reason: str
) -> list[int]:
    """Hand trials this process holds back to the queue (a worker stopping mid-batch): each RUNNING one is
    failed with ``reason`` and re-queued as a fresh WAITING copy (a clean stop does not count against the
    retry limit). Returns the numbers it re-queued."""
    import optuna

    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)
    return [n for n in numbers if _fail_and_requeue(storage, study, n, reason, retry)]


def fail_orphaned_trials(
    storage: optuna.storages.BaseStorage,
    study: optuna.Study,
    *,
    grace_s: float | None = None,
    max_retry: int | None = None,
) -> list[int]:
    """Fail and re-queue RUNNING trials that carry no worker identity ``grace_s`` seconds after they started.

    A worker claims a trial (WAITING -> RUNNING, :func:`claim_waiting_trials`) and signs it a few
    milliseconds later;
    killed in between, it leaves a trial that neither the heartbeat check (it never beat) nor the dead-pid
    check (no pid) can see, and a resumed search would wait for it for ever. A live worker signs within
    milliseconds, so an unsigned trial older than the heartbeat grace period has no one working on it.
    Returns the re-queued trial numbers.
    """
    import datetime

    import optuna
    from optuna.trial import TrialState

    from autogai.search.storage import HEARTBEAT_GRACE_S, MAX_RETRIES

    if _heartbeats_unreliable(storage):
        return []
    grace = HEARTBEAT_GRACE_S if grace_s is None else grace_s
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(
        max_retry=MAX_RETRIES if max_retry is None else max_retry
    )
    now = datetime.datetime.now()  # Optuna stamps datetime_start with the claiming process's local time
    recovered: list[int] = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = frozen.datetime_start
        if frozen.user_attrs.get("worker") or started is None or (now - started).total_seconds() < grace:
            continue
        reason = "the worker that claimed this trial died before it started (never signed); re-queued"
        if _fail_and_requeue(storage, study, frozen.number, reason, retry):
            recovered.append(frozen.number)
    return recovered


def recover_dead_local_trials(
    storage: optuna.storages.BaseStorage, run_name: str, *, max_retry: int | None = None
) -> list[tuple[str, int]]:
    """Fail and re-queue RUNNING trials whose worker process on *this* host is gone.

    Heartbeats catch dead workers anywhere but only after the grace period; a process id on this host is
    checked at once (after a SIGKILL of the search, on resume). Returns (study, trial number) pairs.
    """
    import optuna
    from optuna.trial import TrialState

    from autogai.search.storage import MAX_RETRIES

    _quiet_optuna()
    host = socket.gethostname()
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(
        max_retry=MAX_RETRIES if max_retry is None else max_retry
    )
    recovered: list[tuple[str, int]] = []
    for name in run_study_names(storage, run_name):
        study = load_study(storage, name)
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            who = frozen.user_attrs.get("worker") or {}
            if who.get("host") != host or not isinstance(who.get("pid"), int) or pid_alive(who["pid"]):
                continue
            reason = f"worker process {who['pid']} on {host} died while running this trial; re-queued"
            if _fail_and_requeue(storage, study, frozen.number, reason, retry):
                recovered.append((name, frozen.number))
        recovered += [(name, n) for n in fail_orphaned_trials(storage, study, max_retry=max_retry)]
    return recovered


def trial_counts(storage: optuna.storages.BaseStorage, run_name: str) -> dict[str, int]:
    """Trials of the run per state name (``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``, ``WAITING``)."""
    import optuna

    _quiet_optuna()
    counts: dict[str, int] = {}
    for name in run_study_names(storage, run_name):
        for trial in load_study(storage, name).get_trials(deepcopy=False):
            if trial.user_attrs.get("surplus"):
                continue
            counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    del optuna
    return counts
