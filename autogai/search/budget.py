"""Budget presets of a search: how long each run trains, how many trials, designs and generations, and the
three kinds of seeds (tuning, validation, test) that never meet.

``smoke`` runs in seconds (tests, CI); ``quick`` is the README demo: 15 minutes of search on any machine
(:mod:`autogai.search.plan` fits the counts into that time after measuring this machine); ``standard`` is
a 90-minute budget; ``paper`` is the paper's scale (6000 episodes of 100 slots per training run,
arXiv 2405.20568), counted in steps.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from autogai.core.errors import ConfigError
from autogai.core.validation import check_choice, check_positive_int


@dataclass(frozen=True)
class SearchBudget:
    """Everything that sets the cost of a search. Fields can be overridden one by one from the CLI."""

    total_steps: int
    """Environment steps of one training run (one trial, one held-out seed)."""
    learning_starts: int
    """Random-action warm-up steps; the pruner never judges a trial before it."""
    eval_every: int
    """Steps between evaluations; each evaluation is reported to Optuna (pruning)."""
    eval_episodes: int
    """Episodes per evaluation during tuning."""
    trials_per_design: int
    """Trials every design gets in the first rung of successive halving."""
    halving_rungs: int
    """Further rungs: each gives the better half of the designs ``trials_per_design`` more trials."""
    generations: int
    """Propose -> evaluate -> feed back rounds."""
    designs_per_generation: int
    """Designs the proposer is asked for per generation."""
    test_seeds: int
    """Seeds the finalists are retrained on once, at the end; only these scores make the verdict."""
    heldout_eval_episodes: int
    """Evaluation episodes per validation or test run (runs on seeds that tuning never saw)."""
    validation_seeds: int = 3
    """Seeds a design's top configurations are re-scored on to choose between them (never tuning or test)."""
    validation_top_k: int = 3
    """Configurations re-scored on the validation seeds: TD3's defaults and the best tuning trials."""
    finalists: int = 2
    """Designs (besides the baseline) retrained on the test seeds after the last generation."""
    time_budget_s: float | None = None
    """Wall-clock budget of the whole search; the counts above are then planned to fit it."""
    net_arch_choices: tuple[tuple[int, ...], ...] = ((64, 64), (256, 256))
    """Hidden widths the sampler chooses from."""
    batch_size_choices: tuple[int, ...] = (64, 128, 256)
    buffer_size: int = 100_000
    train_freq: int = 1
    gradient_steps: int = 1
    pruner: str = "median"
    """``median`` (MedianPruner), ``halving`` (SuccessiveHalvingPruner) or ``none``."""
    sampler: str = "tpe"
    """``tpe`` (TPESampler) or ``random`` (RandomSampler; the baseline of bench/search_efficiency.py)."""
    trial_time_limit_s: float | None = None
    """Wall-clock limit of one training run; a trial over it ends as a timeout."""
    enhancer_scale: str = "small"
    """``small`` (tiny enhancer networks, for smoke/quick) or ``full`` (the paper's sizes)."""
    population_size: int = 1
    """Trials a worker claims at once and trains as one population (same shape); held-out seeds of a
    design are always trained as one population."""
    shape_search: bool = True
    """Search knobs that change tensor shapes or schedules (policy delay, diffusion steps, latent and
    Transformer sizes). Off keeps them at their defaults, so a batch of trials is one population."""

    def __post_init__(self) -> None:
        for name in (
            "total_steps",
            "eval_every",
            "eval_episodes",
            "trials_per_design",
            "generations",
            "designs_per_generation",
            "test_seeds",
            "heldout_eval_episodes",
            "validation_seeds",
            "validation_top_k",
            "finalists",
            "buffer_size",
            "train_freq",
            "gradient_steps",
            "population_size",
        ):
            check_positive_int(name, getattr(self, name))
        check_positive_int("learning_starts", self.learning_starts, allow_zero=True)
        check_positive_int("halving_rungs", self.halving_rungs, allow_zero=True)
        if self.time_budget_s is not None and not (0 < self.time_budget_s < math.inf):
            raise ConfigError(f"time_budget_s={self.time_budget_s!r} must be a positive number of seconds")
        check_choice("pruner", self.pruner, ("median", "halving", "none"))
        check_choice("sampler", self.sampler, ("tpe", "random"))
        check_choice("enhancer_scale", self.enhancer_scale, ("small", "full"))
        if not self.net_arch_choices or not self.batch_size_choices:
            raise ConfigError("net_arch_choices and batch_size_choices must not be empty")
        object.__setattr__(
            self, "net_arch_choices", tuple(tuple(int(w) for w in a) for a in self.net_arch_choices)
        )
        object.__setattr__(self, "batch_size_choices", tuple(int(b) for b in self.batch_size_choices))

    def with_overrides(self, **overrides: Any) -> SearchBudget:
        """A copy with the non-``None`` overrides applied (CLI flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["net_arch_choices"] = [list(a) for a in self.net_arch_choices]
        data["batch_size_choices"] = list(self.batch_size_choices)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchBudget:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


PRESETS: dict[str, SearchBudget] = {
    "smoke": SearchBudget(
        total_steps=300,
        learning_starts=100,
        eval_every=150,
        eval_episodes=1,
        trials_per_design=2,
        halving_rungs=1,
        generations=1,
        designs_per_generation=2,
        test_seeds=2,
        heldout_eval_episodes=1,
        validation_seeds=2,
        validation_top_k=2,
        finalists=1,
        net_arch_choices=((32, 32),),
        batch_size_choices=(32,),
        buffer_size=5_000,
        trial_time_limit_s=120,
        population_size=2,
        shape_search=False,
    ),
    "quick": SearchBudget(
        # Measured (10 seeds as one population, UAV continuous, 64x64, batch 128): the paper's baseline
        # reward reaches IQM 24.3 / 32.7 / 34.6 / 33.8 at 4k / 6k / 8k / 10k steps, a fitness-aligned reward
        # 36.0 / 36.2 / 37.2 / 37.6; hovering at the start earns 31.0 (bench/uav_budget.py). At 10k the
        # baseline clearly beats hovering and a better reward separates from it (final intervals
        # [24.6, 35.7] vs [36.1, 38.5]); shorter budgets rank exploration noise.
        total_steps=10_000,
        learning_starts=1_000,
        eval_every=2_000,
        eval_episodes=1,
        # 8 trials per design, claimed 4 at a time: the first batch is TPE's random start-up (with TD3's
        # defaults as its first trial), the second is sampled by TPE from the first and judged by the
        # median pruner against it.
        trials_per_design=8,
        halving_rungs=0,
        generations=2,
        designs_per_generation=2,
        test_seeds=10,
        heldout_eval_episodes=1,
        validation_seeds=3,
        validation_top_k=3,
        finalists=2,
        # The counts above are a fallback; the 15-minute budget replans them on the machine at hand.
        time_budget_s=900.0,
        net_arch_choices=((64, 64),),
        batch_size_choices=(128,),
        buffer_size=20_000,
        trial_time_limit_s=300,
        population_size=4,
        shape_search=False,
    ),
    "standard": SearchBudget(
        total_steps=30_000,
        learning_starts=2_000,
        eval_every=3_000,
        eval_episodes=5,
        trials_per_design=6,
        halving_rungs=2,
        generations=3,
        designs_per_generation=4,
        test_seeds=10,
        heldout_eval_episodes=10,
        time_budget_s=5400.0,
        net_arch_choices=((64, 64), (256, 256)),
        batch_size_choices=(64, 128, 256),
        buffer_size=100_000,
        trial_time_limit_s=3_600,
    ),
    "paper": SearchBudget(
        total_steps=600_000,
        learning_starts=10_000,
        eval_every=20_000,
        eval_episodes=10,
        trials_per_design=10,
        halving_rungs=2,
        generations=4,
        designs_per_generation=6,
        test_seeds=10,
        heldout_eval_episodes=20,
        net_arch_choices=((256, 256), (400, 300)),
        batch_size_choices=(128, 256),
        buffer_size=1_000_000,
        # 600k steps at up to ~0.1 s each (full-size enhancers on a CPU) fit; a stuck trial still ends.
        trial_time_limit_s=86_400,
        enhancer_scale="full",
    ),
}


def get_preset(name: str) -> SearchBudget:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
