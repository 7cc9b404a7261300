"""The search space of one trial: TD3 hyperparameters (rl-baselines3-zoo's ranges), the enhancers' own
knobs and the reward program's ``PARAMS``.

The space is one table, :func:`trial_space`: the TD3 ranges are written here, each enhancer's distributions
come from its declaration in :mod:`autogai.agents.enhancers` (plain data there; the Optuna suggestions are
made here, the only layer that imports Optuna). Sampling (:func:`suggest_td3_params`), the first trial's
defaults and the hint sanitiser all read that table. Parameter names are TD3Config's flat names
(``learning_rate``, ``diffusion_steps``, ...) and ``reward.<name>`` for the reward program's tunable weights,
so a design's ``hyperparameter_hints`` use the same names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from autogai.core.types import EnhancerCombo
from autogai.search.budget import SearchBudget

if TYPE_CHECKING:
    import optuna

REWARD_PREFIX = "reward."

_TAU_CHOICES = (0.001, 0.005, 0.01, 0.02)
_GAMMA_CHOICES = (0.9, 0.95, 0.98, 0.99, 0.995)
_POLICY_DELAY_CHOICES = (1, 2, 3)


def net_arch_label(arch: tuple[int, ...]) -> str:
    return "x".join(str(w) for w in arch)


def parse_net_arch(label: str) -> tuple[int, ...]:
    return tuple(int(w) for w in str(label).split("x"))


def trial_space(enhancers: EnhancerCombo, budget: SearchBudget) -> dict[str, Any]:
    """Every TD3Config value a trial sets, by flat name, in the order a trial samples them: a
    ``FloatRange`` or ``Choice`` is sampled (the trial parameter has that name), anything else is a value
    fixed for this budget. The TD3 ranges are rl-baselines3-zoo's; each enhancer's come from its declaration
    in :mod:`autogai.agents.enhancers` (``Fixed`` resolved for the budget's ``enhancer_scale``).
    """
    from autogai.agents.enhancers import Choice, FloatRange, active

    small = budget.enhancer_scale == "small"
    space: dict[str, Any] = {
        "learning_rate": FloatRange(1e-4, 3e-3, log=True),
        "batch_size": Choice(tuple(budget.batch_size_choices)),
        "tau": Choice(_TAU_CHOICES),
        "gamma": Choice(_GAMMA_CHOICES),
        "exploration_noise": FloatRange(0.05, 0.5),
        "target_policy_noise": FloatRange(0.1, 0.4),
        "net_arch": Choice(tuple(net_arch_label(a) for a in budget.net_arch_choices)),
        # Fixed by the budget, not searched:
        "learning_starts": budget.learning_starts,
        "buffer_size": budget.buffer_size,
        "train_freq": budget.train_freq,
        "gradient_steps": budget.gradient_steps,
    }
    # Knobs that change tensor shapes or schedules split a batch of trials into separate populations, so
    # a budget that trains trials as populations (shape_search off) keeps them fixed.
    if budget.shape_search:
        space["policy_delay"] = Choice(_POLICY_DELAY_CHOICES)
    for declared in active(enhancers):
        for knob in declared.knobs:
            if knob.search is None:
                continue
            if knob.shape_fixed is not None and not budget.shape_search:
                space[knob.flat_name] = knob.shape_fixed.for_scale(small)
            elif isinstance(knob.search, Choice):
                space[knob.flat_name] = Choice(knob.search.for_scale(small))
            elif isinstance(knob.search, FloatRange):
                space[knob.flat_name] = knob.search
            else:  # Fixed
                space[knob.flat_name] = knob.search.for_scale(small)
    return {name: value for name, value in space.items() if value is not None}


def _is_sampled(value: Any) -> bool:
    from autogai.agents.enhancers import Choice, FloatRange

    return isinstance(value, (Choice, FloatRange))


def suggest_td3_params(trial: optuna.Trial, enhancers: EnhancerCombo, budget: SearchBudget) -> dict[str, Any]:
    """Sample TD3Config keyword arguments for one trial (fixed ones come from the budget and the enhancers)."""
    from autogai.agents.enhancers import FloatRange

    params: dict[str, Any] = {}
    for name, value in trial_space(enhancers, budget).items():
        if isinstance(value, FloatRange):
            params[name] = trial.suggest_float(name, value.low, value.high, log=value.log)
        elif _is_sampled(value):
            params[name] = trial.suggest_categorical(name, list(value.options))
        else:
            params[name] = value
    if "net_arch" in params:
        params["net_arch"] = parse_net_arch(params["net_arch"])
    return params


def default_trial_params(
    enhancers: EnhancerCombo, budget: SearchBudget, reward_specs: Mapping[str, Any]
) -> dict[str, Any]:
    """The first configuration every design is tried with: :class:`~autogai.agents.config.TD3Config`'s
    defaults (TD3's published values, Fujimoto et al. 2018, as in Stable-Baselines3) and the reward
    program's own ``PARAMS`` defaults.

    With the few trials of a small budget, TPE samples almost at random; warm-starting from a known-good
    configuration (as rl-baselines3-zoo starts from its tuned defaults) means every design is judged at
    least once on sane hyperparameters and on the weights its proposer chose. Values are snapped into the
    budget's choices (as hints are) so the trial stays inside the search space.
    """
    from autogai.agents.config import TD3Config

    config = TD3Config()
    wanted = {name: config.get(name) for name in _searched_names(enhancers, budget)}
    params, _ = sanitize_hints(wanted, enhancers, budget, {})
    for name, spec in reward_specs.items():
        low, high = float(_field(spec, "low")), float(_field(spec, "high"))
        if math.isfinite(low) and math.isfinite(high) and high > low:
            params[REWARD_PREFIX + name] = min(max(float(_field(spec, "default")), low), high)
    return params


def _searched_names(enhancers: EnhancerCombo, budget: SearchBudget) -> set[str]:
    """The TD3Config fields a trial samples for ``enhancers`` (the rest are fixed by the budget)."""
    return {name for name, value in trial_space(enhancers, budget).items() if _is_sampled(value)}


def suggest_reward_params(trial: optuna.Trial, specs: Mapping[str, Any]) -> dict[str, float]:
    """Sample the reward program's ``PARAMS`` (each a ParamSpec: default, low, high, log)."""
    values: dict[str, float] = {}
    for name, spec in specs.items():
        low, high = float(_field(spec, "low")), float(_field(spec, "high"))
        log = bool(_field(spec, "log", False)) and low > 0
        if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
            values[name] = float(_field(spec, "default"))
            continue
        values[name] = trial.suggest_float(REWARD_PREFIX + name, low, high, log=log)
    return values


def _field(spec: Any, name: str, default: Any = None) -> Any:
    if isinstance(spec, Mapping):
        return spec.get(name, default)
    return getattr(spec, name, default)


def sanitize_hints(
    hints: Mapping[str, Any], enhancers: EnhancerCombo, budget: SearchBudget, reward_specs: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Turn a design's hyperparameter hints into values ``enqueue_trial`` can fix.

    Floats are clipped into their range, categoricals snapped to the nearest choice, unknown names
    dropped. Returns the fixed params and notes about what was changed (kept in the trial's attributes).
    """
    from autogai.agents.enhancers import FloatRange

    space = trial_space(enhancers, budget)
    floats = {name: (v.low, v.high) for name, v in space.items() if isinstance(v, FloatRange)}
    categoricals = {
        name: list(v.options) for name, v in space.items() if _is_sampled(v) and name not in floats
    }
    active = set(floats) | set(categoricals)
    for name, spec in reward_specs.items():
        floats[REWARD_PREFIX + name] = (float(_field(spec, "low")), float(_field(spec, "high")))
        active.add(REWARD_PREFIX + name)
    fixed: dict[str, Any] = {}
    notes: list[str] = []
    for raw_name, value in hints.items():
        name = raw_name
        if name not in active and REWARD_PREFIX + name in active:
            name = REWARD_PREFIX + name
        if name not in active:
            notes.append(f"hint {raw_name} ignored (not searched for this design)")
            continue
        try:
            if name == "net_arch":
                arch = tuple(value) if isinstance(value, (list, tuple)) else parse_net_arch(str(value))
                choices = list(budget.net_arch_choices)
                best = min(choices, key=lambda a: abs(sum(a) - sum(arch)))
                fixed[name] = net_arch_label(best)
                if best != arch:
                    notes.append(f"hint net_arch {net_arch_label(arch)} -> {net_arch_label(best)}")
            elif name in floats:
                low, high = floats[name]
                clipped = min(max(float(value), low), high)
                fixed[name] = clipped
                if clipped != float(value):
                    notes.append(f"hint {name}={value} clipped to {clipped:.4g}")
            else:
                options = categoricals[name]
                nearest = min(options, key=lambda c: abs(float(c) - float(value)))
                fixed[name] = nearest
                if nearest != value:
                    notes.append(f"hint {name}={value} -> {nearest}")
        except (TypeError, ValueError):
            notes.append(f"hint {raw_name}={value!r} ignored (not a number)")
    return fixed, notes
