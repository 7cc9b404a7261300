"""The search space of one trial: TD3 hyperparameters (rl-baselines3-zoo's ranges), the enhancers' own
knobs and the reward program's ``PARAMS``.

One ``suggest_*`` function per group, as rl-baselines3-zoo's ``hyperparams_opt.py`` does. Parameter
names are TD3Config field names (``learning_rate``, ``diffusion_steps``, ...) and ``reward.<name>`` for
the reward program's tunable weights, so a design's ``hyperparameter_hints`` use the same names.
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
_SHAPE_KNOBS = ("policy_delay", "diffusion_steps", "vae_latent_dim", "transformer_dim", "transformer_layers")
"""Searched only with ``SearchBudget.shape_search``: they split a batch of trials into populations."""


def net_arch_label(arch: tuple[int, ...]) -> str:
    return "x".join(str(w) for w in arch)


def parse_net_arch(label: str) -> tuple[int, ...]:
    return tuple(int(w) for w in str(label).split("x"))


def suggest_td3_params(trial: optuna.Trial, enhancers: EnhancerCombo, budget: SearchBudget) -> dict[str, Any]:
    """Sample TD3Config keyword arguments for one trial (fixed ones come from the budget)."""
    arch_labels = [net_arch_label(a) for a in budget.net_arch_choices]
    params: dict[str, Any] = {
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", list(budget.batch_size_choices)),
        "tau": trial.suggest_categorical("tau", list(_TAU_CHOICES)),
        "gamma": trial.suggest_categorical("gamma", list(_GAMMA_CHOICES)),
        "exploration_noise": trial.suggest_float("exploration_noise", 0.05, 0.5),
        "target_policy_noise": trial.suggest_float("target_policy_noise", 0.1, 0.4),
        "net_arch": parse_net_arch(trial.suggest_categorical("net_arch", arch_labels)),
        # Fixed by the budget, not searched:
        "learning_starts": budget.learning_starts,
        "buffer_size": budget.buffer_size,
        "train_freq": budget.train_freq,
        "gradient_steps": budget.gradient_steps,
    }
    # Knobs that change tensor shapes or schedules split a batch of trials into separate populations, so
    # a budget that trains trials as populations (shape_search off) keeps them at their defaults.
    if budget.shape_search:
        params["policy_delay"] = trial.suggest_categorical("policy_delay", list(_POLICY_DELAY_CHOICES))
    params.update(suggest_enhancer_params(trial, enhancers, budget))
    return params


def suggest_enhancer_params(
    trial: optuna.Trial, enhancers: EnhancerCombo, budget: SearchBudget
) -> dict[str, Any]:
    """Knobs of the enhancers switched on in ``enhancers`` (nothing for plain TD3)."""
    small = budget.enhancer_scale == "small"
    shapes = budget.shape_search
    params: dict[str, Any] = {}
    if enhancers.policy == "diffusion":
        params["diffusion_steps"] = (
            trial.suggest_categorical("diffusion_steps", [3, 5] if small else [5, 10]) if shapes else 5
        )
        params["bc_weight"] = trial.suggest_categorical("bc_weight", [0.0, 0.1, 1.0])
        if small:
            params["diffusion_hidden"] = 32
    if enhancers.encoder == "vae":
        params["vae_latent_dim"] = (
            trial.suggest_categorical("vae_latent_dim", [8, 16] if small else [16, 32, 64]) if shapes else 16
        )
        params["vae_beta"] = trial.suggest_float("vae_beta", 0.01, 1.0, log=True)
        if small:
            params["vae_hidden"] = 64
    if enhancers.backbone == "transformer":
        params["transformer_dim"] = (
            trial.suggest_categorical("transformer_dim", [16, 32] if small else [32, 64])
            if shapes
            else (16 if small else 32)
        )
        params["transformer_layers"] = (
            trial.suggest_categorical("transformer_layers", [1] if small else [1, 2]) if shapes else 1
        )
        params["transformer_heads"] = 2
    if enhancers.critic == "gan":
        params["gan_adv_weight"] = trial.suggest_float("gan_adv_weight", 0.01, 1.0, log=True)
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
    wanted = {name: getattr(config, name) for name in _searched_names(enhancers, budget)}
    params, _ = sanitize_hints(wanted, enhancers, budget, {})
    for name, spec in reward_specs.items():
        low, high = float(_field(spec, "low")), float(_field(spec, "high"))
        if math.isfinite(low) and math.isfinite(high) and high > low:
            params[REWARD_PREFIX + name] = min(max(float(_field(spec, "default")), low), high)
    return params


def _searched_names(enhancers: EnhancerCombo, budget: SearchBudget) -> set[str]:
    """The TD3Config fields a trial samples for ``enhancers`` (the rest are fixed by the budget)."""
    names = {
        "learning_rate",
        "batch_size",
        "tau",
        "gamma",
        "exploration_noise",
        "target_policy_noise",
        "policy_delay",
        "net_arch",
    }
    if enhancers.policy == "diffusion":
        names |= {"diffusion_steps", "bc_weight"}
    if enhancers.encoder == "vae":
        names |= {"vae_latent_dim", "vae_beta"}
    if enhancers.backbone == "transformer":
        names |= {"transformer_dim", "transformer_layers"}
    if enhancers.critic == "gan":
        names |= {"gan_adv_weight"}
    if not budget.shape_search:  # kept at their defaults so a batch of trials is one population
        names -= set(_SHAPE_KNOBS)
    return names


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
    floats: dict[str, tuple[float, float]] = {
        "learning_rate": (1e-4, 3e-3),
        "exploration_noise": (0.05, 0.5),
        "target_policy_noise": (0.1, 0.4),
        "vae_beta": (0.01, 1.0),
        "gan_adv_weight": (0.01, 1.0),
    }
    small = budget.enhancer_scale == "small"
    categoricals: dict[str, list[Any]] = {
        "batch_size": list(budget.batch_size_choices),
        "tau": list(_TAU_CHOICES),
        "gamma": list(_GAMMA_CHOICES),
        "policy_delay": list(_POLICY_DELAY_CHOICES),
        "diffusion_steps": [3, 5] if small else [5, 10],
        "bc_weight": [0.0, 0.1, 1.0],
        "vae_latent_dim": [8, 16] if small else [16, 32, 64],
        "transformer_dim": [16, 32] if small else [32, 64],
        "transformer_layers": [1] if small else [1, 2],
    }
    active = _searched_names(enhancers, budget)
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
