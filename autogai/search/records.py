"""The pipeline's view of a run's Optuna storage, as plain data.

Optuna lives in :mod:`autogai.search` alone (an import-linter contract checks it): the design loop and the
ranking ask :class:`RunStore` for what they need -- open a design's tuning or held-out study, queue trials,
wait for them, read them back as :class:`TrialRecord` values -- and never see a study or a frozen trial.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autogai.search.studies import (
    RUN_LAYOUT,
    check_run_layout,
    design_study_name,
    enqueue_to,
    fail_stale_trials,
    get_or_create_study,
    holding_claims,
    load_study,
    meta_study_name,
    recover_dead_local_trials,
    scoring_study_name,
    trial_counts,
)
from autogai.search.trial_result import TrialResult


@dataclass(frozen=True)
class TrialRecord:
    """One trial as stored: what the ranking, the feedback and the run directory's tables need."""

    number: int
    state: str
    """``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING`` or ``WAITING``."""
    value: float | None
    params: dict[str, Any] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    retry_of: int | None = None
    """The number of the trial this one re-runs (its worker died), if any."""

    @property
    def result(self) -> TrialResult:
        """What the trial reported (its user attributes, typed)."""
        return TrialResult.from_attrs(self.user_attrs)

    @property
    def complete(self) -> bool:
        return self.state == "COMPLETE" and self.value is not None


def config_key(params: Mapping[str, Any]) -> str:
    """A short, stable name of one configuration (its parameters, order-free)."""
    import hashlib
    import json

    text = json.dumps(dict(params), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def best_trial(trials: Iterable[TrialRecord]) -> TrialRecord | None:
    """The completed trial with the highest value (None when none completed)."""
    complete = [t for t in trials if t.complete]
    return max(complete, key=lambda t: float(t.value or 0.0)) if complete else None


class RunStore:
    """A run's studies in an Optuna storage: the meta study, and per design a tuning and a held-out study."""

    def __init__(self, storage: Any, run_name: str, *, claim_lock: str | None = None) -> None:
        self.storage = storage
        self.run_name = run_name
        self.claim_lock = claim_lock

    def queueing(self) -> contextlib.AbstractContextManager[None]:
        """Hold local workers' claims while a phase is queued (see ``studies.holding_claims``)."""
        return holding_claims(self.claim_lock)

    # --- the run -----------------------------------------------------------------------------------
    def start(self, context: Mapping[str, Any]) -> list[tuple[str, int]]:
        """Record the run's context for workers, mark it running, and re-queue the trials of workers on
        this host that died (a killed search being resumed). Returns the re-queued (study, trial) pairs."""
        meta = get_or_create_study(self.storage, meta_study_name(self.run_name))
        check_run_layout(dict(meta.user_attrs), self.run_name)  # a run of a newer autogai: one line
        meta.set_user_attr("layout", RUN_LAYOUT)
        meta.set_user_attr("autogai_version", __import__("autogai").__version__)
        meta.set_user_attr("context", dict(context))
        meta.set_user_attr("status", "running")
        return recover_dead_local_trials(self.storage, self.run_name)

    def set_status(self, status: str) -> None:
        """``done`` or ``stopped`` sends the run's workers home."""
        get_or_create_study(self.storage, meta_study_name(self.run_name)).set_user_attr("status", status)

    def recover_dead_workers(self) -> None:
        recover_dead_local_trials(self.storage, self.run_name)

    def counts(self) -> dict[str, int]:
        return trial_counts(self.storage, self.run_name)

    # --- studies -----------------------------------------------------------------------------------
    def tuning_study(self, design_id: str, attrs: Mapping[str, Any]) -> str:
        name = design_study_name(self.run_name, design_id)
        get_or_create_study(self.storage, name, dict(attrs))
        return name

    def scoring_study(
        self, design_id: str, kind: str, attrs: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """Open (or create) a design's ``validation`` or ``test`` study; returns its name and its stored
        attributes (a resumed run keeps the configurations it chose before)."""
        name = scoring_study_name(self.run_name, design_id, kind)
        study = get_or_create_study(self.storage, name, dict(attrs))
        return name, dict(study.user_attrs)

    def enqueue(
        self,
        name: str,
        target: int,
        *,
        first_params: list[dict[str, Any]] | None = None,
        user_attrs: list[dict[str, Any]] | None = None,
    ) -> int:
        return enqueue_to(load_study(self.storage, name), target, first_params, user_attrs)

    def enqueue_runs(self, name: str, runs: Sequence[Mapping[str, Any]]) -> int:
        """Queue fixed-configuration runs (validation or test: ``seed``, ``params``, ``config_key``) that the
        study does not hold yet; idempotent, so a resumed search and a second halving rung add only what is
        new. Returns how many were added."""
        from autogai.search.studies import QUEUED_ATTR

        study = load_study(self.storage, name)
        have = {
            (t.user_attrs.get("config_key"), t.user_attrs.get("seed"))
            for t in study.get_trials(deepcopy=False)
        }
        added = 0
        for run in runs:
            if (run["config_key"], run["seed"]) in have:
                continue
            study.enqueue_trial({}, user_attrs={**dict(run), QUEUED_ATTR: True}, skip_if_exists=False)
            added += 1
        return added

    def pending(self, names: Sequence[str]) -> int:
        """Trials of ``names`` still WAITING or RUNNING (states only: the coordinator polls this while
        workers train, so it must not read every trial's attributes)."""
        from optuna.trial import TrialState

        total = 0
        for name in names:
            try:
                study_id = self.storage.get_study_id_from_name(name)
            except KeyError:  # not created yet
                continue
            total += len(
                self.storage.get_all_trials(
                    study_id, deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)
                )
            )
        return total

    def fail_stale(self, names: Sequence[str]) -> None:
        """Heartbeats: fail and re-queue trials of workers (anywhere) that stopped beating."""
        for name in names:
            fail_stale_trials(self.storage, load_study(self.storage, name))

    # --- reading back ------------------------------------------------------------------------------
    def _existing(self) -> set[str]:
        return {s.study_name for s in self.storage.get_all_studies()}

    def trials(self, name: str) -> list[TrialRecord]:
        if name not in self._existing():
            return []
        return [
            TrialRecord(
                number=t.number,
                state=t.state.name,
                value=None if t.value is None else float(t.value),
                params=dict(t.params),
                user_attrs=dict(t.user_attrs),
                retry_of=t.system_attrs.get("failed_trial"),
            )
            for t in load_study(self.storage, name).get_trials(deepcopy=False)
        ]

    def tuning_trials(self, design_id: str) -> list[TrialRecord]:
        return self.trials(design_study_name(self.run_name, design_id))

    def trained_populations(
        self, design_ids: Iterable[str], baseline_id: str
    ) -> list[tuple[int, float, bool]]:
        """(agents, seconds, baseline?) of every tuning and validation population of these designs (and the
        baseline) that trained to the end: what the time budget refits its throughput from."""
        seen: dict[tuple[str, float, int], bool] = {}
        for design_id in {*design_ids, baseline_id}:
            for kind, trials in (
                ("tuning", self.tuning_trials(design_id)),
                ("validation", self.scoring_trials(design_id, "validation")),
            ):
                for t in trials:
                    r = t.result
                    if t.complete and r.population and r.duration_s:
                        seen[(f"{design_id}/{kind}", r.duration_s, r.population)] = design_id == baseline_id
        return [(agents, seconds, baseline) for (_, seconds, agents), baseline in seen.items()]

    def scoring_trials(self, design_id: str, kind: str) -> list[TrialRecord]:
        """Trials of the design's ``validation`` or ``test`` study (empty when it has none)."""
        return self.trials(scoring_study_name(self.run_name, design_id, kind))
