"""The pipeline's view of a run's Optuna storage, as plain data.

Optuna lives in :mod:`autogai.search` alone (an import-linter contract checks it): the design loop and the
ranking ask :class:`RunStore` for what they need -- open a design's tuning or held-out study, queue trials,
wait for them, read them back as :class:`TrialRecord` values -- and never see a study or a frozen trial.
"""

from __future__ import annotations

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
    heldout_study_name,
    load_study,
    meta_study_name,
    recover_dead_local_trials,
    trial_counts,
)


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
    def complete(self) -> bool:
        return self.state == "COMPLETE" and self.value is not None


def best_trial(trials: Iterable[TrialRecord]) -> TrialRecord | None:
    """The completed trial with the highest value (None when none completed)."""
    complete = [t for t in trials if t.complete]
    return max(complete, key=lambda t: float(t.value or 0.0)) if complete else None


class RunStore:
    """A run's studies in an Optuna storage: the meta study, and per design a tuning and a held-out study."""

    def __init__(self, storage: Any, run_name: str) -> None:
        self.storage = storage
        self.run_name = run_name

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

    def heldout_study(self, design_id: str, attrs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Open (or create) a design's held-out study; returns its name and its stored attributes (a
        resumed run keeps the configuration it chose before)."""
        name = heldout_study_name(self.run_name, design_id)
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

    def pending(self, names: Sequence[str]) -> int:
        """Trials of ``names`` still WAITING or RUNNING."""
        return sum(1 for name in names for t in self.trials(name) if t.state in ("WAITING", "RUNNING"))

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

    def heldout_trials(self, design_id: str) -> list[TrialRecord]:
        return self.trials(heldout_study_name(self.run_name, design_id))
