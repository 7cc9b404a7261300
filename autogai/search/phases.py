"""The phases that evaluate designs in a run's storage: tuning (with successive halving across designs),
validation of each design's top configurations, and the final test of the finalists.

Three kinds of seeds never meet (:mod:`autogai.search.objective`): tuning trials train on one seed each,
validation runs re-score a design's top ``validation_top_k`` configurations -- TD3's defaults with the
reward's default ``PARAMS`` always among them -- on the validation seeds, and test runs retrain a finalist's
chosen configuration once on the test seeds. A design's configuration is the one with the best validation
IQM; successive halving reads validation scores, never a single tuning seed.

Every phase queues its trials under the claim lock (a batch claimed half-way through queueing would split a
population by timing) and then waits for the workers; :class:`Phases` holds no state of its own beyond the
store, the budget and the search's seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autogai.core.statistics import iqm
from autogai.core.types import Design
from autogai.search.budget import SearchBudget
from autogai.search.objective import scoring_seeds
from autogai.search.records import RunStore, TrialRecord, config_key

WaitFn = Callable[[list[str], str], None]
"""``(study names, phase label)``: block until no trial of those studies is waiting or running."""


@dataclass
class ConfigScore:
    """One configuration of a design re-scored on the validation seeds."""

    key: str
    params: dict[str, Any]
    values: np.ndarray
    """Fitness per completed validation seed ``[n_runs]``."""
    source: str
    """``defaults`` or ``tuning trial N``."""

    @property
    def iqm(self) -> float:
        return iqm(self.values)


def config_scores(validation: Iterable[TrialRecord]) -> list[ConfigScore]:
    """The validated configurations of a design, in the order they were queued."""
    scores: dict[str, ConfigScore] = {}
    for t in validation:
        key = str(t.user_attrs.get("config_key", ""))
        if key not in scores:
            params = dict(t.user_attrs.get("params") or {})
            scores[key] = ConfigScore(key, params, np.zeros(0), str(t.user_attrs.get("source", "")))
        if t.complete:
            scores[key].values = np.append(scores[key].values, float(t.value or 0.0))
    return list(scores.values())


def chosen_configuration(validation: Iterable[TrialRecord]) -> ConfigScore | None:
    """The configuration with the best validation IQM (the first queued among equals); None before any
    validation run completed."""
    scored = [c for c in config_scores(validation) if c.values.size]
    return max(scored, key=lambda c: c.iqm) if scored else None


def validation_candidates(
    tuning: Sequence[TrialRecord], defaults: Mapping[str, Any], k: int
) -> list[tuple[str, str, dict[str, Any]]]:
    """The ``k`` configurations a design re-scores on validation seeds, as (key, source, params): TD3's
    defaults with the reward's default PARAMS first, then the best distinct completed tuning trials.

    A single tuning seed ranks configurations mostly by luck where the landscape is volatile; keeping the
    defaults in the running means a design is never judged only on a lucky draw."""
    complete = sorted((t for t in tuning if t.complete), key=lambda t: float(t.value or 0.0), reverse=True)
    candidates = [("defaults", dict(defaults))] + [
        (f"tuning trial {t.number}", dict(t.params)) for t in complete
    ]
    chosen: dict[str, tuple[str, dict[str, Any]]] = {}
    for source, params in candidates:
        chosen.setdefault(config_key(params), (source, params))
        if len(chosen) == k:
            break
    return [(key, source, params) for key, (source, params) in chosen.items()]


def validation_score(store: RunStore, design_id: str) -> float:
    """The IQM of the design's chosen configuration on the validation seeds (-inf before there is one)."""
    chosen = chosen_configuration(store.scoring_trials(design_id, "validation"))
    value = chosen.iqm if chosen is not None else math.nan
    return value if math.isfinite(value) else -math.inf


@dataclass
class DesignUnderTest:
    """What the phases need of one design: its study attributes and the configurations it starts from."""

    design: Design
    reward_specs: dict[str, dict[str, Any]]
    defaults: dict[str, Any]
    """TD3's defaults with the reward's default PARAMS (a validation candidate of every design)."""
    first_params: dict[str, Any]
    """The first tuning trial: the defaults overridden by the proposer's hints."""
    attrs: dict[str, Any] = field(default_factory=dict)
    """Extra study attributes (hint notes, generation, run)."""


class Phases:
    """Tuning, validation and test of designs in one run's storage."""

    def __init__(self, store: RunStore, budget: SearchBudget, seed: int, wait: WaitFn) -> None:
        self.store = store
        self.budget = budget
        self.seed = seed
        self.wait = wait

    def tune_and_validate(
        self, designs: Sequence[DesignUnderTest], generation: int, baseline_id: str
    ) -> list[str]:
        """Tune every design (successive halving across designs on validation scores when the budget has
        rungs), then validate each one's top configurations. Returns the ids of designs none of whose tuning
        trials completed (they have nothing to validate)."""
        by_id = {d.design.id: d for d in designs}
        studies = {
            d.design.id: self.store.tuning_study(
                d.design.id,
                {"design": d.design.to_dict(), "kind": "tuning", "reward_params": d.reward_specs, **d.attrs},
            )
            for d in designs
        }
        active = list(studies)
        unscored: list[str] = []
        for rung in range(self.budget.halving_rungs + 1):
            target = self.budget.trials_per_design * (rung + 1)
            with self.store.queueing():
                for design_id in active:
                    self.store.enqueue(
                        studies[design_id], target, first_params=[by_id[design_id].first_params]
                    )
            self.wait(
                [studies[d] for d in active],
                f"generation {generation}: tuning {len(active)} designs (rung {rung})",
            )
            unscored = self.validate([by_id[d] for d in active], generation)
            if rung == self.budget.halving_rungs or len(active) <= 2:
                break
            # The better half on validation scores (and always the baseline) goes on to the next rung.
            ranked = sorted(active, key=lambda d: validation_score(self.store, d), reverse=True)
            keep = ranked[: max(1, math.ceil(len(ranked) / 2))]
            if baseline_id in active and baseline_id not in keep:
                keep.append(baseline_id)
            active = keep
        return unscored

    def validate(self, designs: Sequence[DesignUnderTest], generation: int) -> list[str]:
        """Re-score each design's top-k configurations on the validation seeds, one population per design
        (runs already there are not queued again). Returns the designs with no completed tuning trial."""
        seeds = scoring_seeds(self.seed, "validation", self.budget.validation_seeds)
        names, unscored = [], []
        with self.store.queueing():
            for d in designs:
                tuning = self.store.tuning_trials(d.design.id)
                if not any(t.complete for t in tuning):
                    unscored.append(d.design.id)
                    continue
                runs = [
                    {"seed": seed, "params": params, "config_key": key, "source": source}
                    for key, source, params in validation_candidates(
                        tuning, d.defaults, self.budget.validation_top_k
                    )
                    for seed in seeds
                ]
                attrs = {
                    "design": d.design.to_dict(),
                    "kind": "validation",
                    "reward_params": d.reward_specs,
                    **d.attrs,
                }
                name, _ = self.store.scoring_study(d.design.id, "validation", attrs)
                self.store.enqueue_runs(name, runs)
                names.append(name)
        self.wait(names, f"generation {generation}: validating {len(names)} designs")
        return unscored

    def test(self, finalists: Sequence[tuple[Design, dict[str, dict[str, Any]]]]) -> None:
        """Retrain each finalist's chosen configuration once on the test seeds, one population per design."""
        seeds = scoring_seeds(self.seed, "test", self.budget.test_seeds)
        names = []
        with self.store.queueing():
            for design, reward_specs in finalists:
                chosen = chosen_configuration(self.store.scoring_trials(design.id, "validation"))
                if chosen is None:  # never validated: nothing to test
                    continue
                attrs = {"design": design.to_dict(), "kind": "test", "reward_params": reward_specs}
                name, _ = self.store.scoring_study(design.id, "test", attrs)
                self.store.enqueue_runs(
                    name,
                    [
                        {
                            "seed": seed,
                            "params": chosen.params,
                            "config_key": chosen.key,
                            "source": chosen.source,
                        }
                        for seed in seeds
                    ],
                )
                names.append(name)
        self.wait(names, f"final test: {len(names)} designs on {len(seeds)} test seeds")
