"""TD3 hyperparameters and the enhancers' knobs in one frozen, validated, JSON-friendly dataclass.

Field names follow Stable-Baselines3's ``TD3`` so readers recognise them. The enhancers' knobs are not written
here: each enhancer declares its nested configuration in :mod:`autogai.agents.enhancers`, and
:class:`TD3Config` holds one of each. Outside the class (files, ``--set``, hints, Optuna trials) every value
has one flat name: ``learning_rate``, ``diffusion_steps``, ``vae_beta``, ... Defaults suit the UAV
near-field task (106-D normalised observations, 100-slot episodes) and Pendulum-v1 alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from autogai.agents.enhancers import CONFIGURED
from autogai.core.errors import ConfigError
from autogai.core.validation import check_choice, check_positive_int, check_range

DEVICES = ("cpu", "cuda", "auto")

PER_AGENT_FIELDS: tuple[str, ...] = (
    "learning_rate",
    "tau",
    "gamma",
    "exploration_noise",
    "discrete_exploration",
    "target_policy_noise",
    "target_noise_clip",
    *(k.flat_name for e in CONFIGURED for k in e.knobs if k.per_agent),
)
"""Fields that may differ between the agents of one population: scalars that change no tensor shape and no
schedule. Every other field (widths, batch size, buffer, schedules, diffusion steps, ...) must be equal, so
trials that differ in them train as separate populations."""

_ENHANCER_FIELD = "enhancer_configs"


@dataclass(frozen=True, init=False)
class TD3Config:
    """Hyperparameters of TD3 (Fujimoto et al., ICML 2018) and of the four enhancer slots."""

    # --- TD3 (Stable-Baselines3 names) -------------------------------------------------------------
    learning_rate: float = 1e-3
    """Adam learning rate of actor, critics, VAE and discriminator (SB3's TD3 default)."""
    buffer_size: int = 100_000
    """Replay capacity in transitions. Preallocated, so kept below SB3's 1e6: 1e5 UAV transitions
    already take ~85 MB and no budget of this project runs longer."""
    learning_starts: int = 1_000
    """Transitions collected with uniform random actions before the first update."""
    batch_size: int = 256
    """Minibatch size of every update (SB3 and the TD3 paper use 256/100)."""
    tau: float = 0.005
    """Polyak coefficient of the target networks: target <- (1 - tau) target + tau online."""
    gamma: float = 0.99
    """Discount factor."""
    train_freq: int = 1
    """Env steps between calls of ``train_step`` (the training loop reads it)."""
    gradient_steps: int = 1
    """Updates per ``train_step`` call (the training loop passes it)."""
    policy_delay: int = 2
    """Critic updates per actor and target update (TD3's delayed policy update)."""
    target_policy_noise: float = 0.2
    """Std of the Gaussian smoothing noise added to target actions, in action coordinates [-1, 1]."""
    target_noise_clip: float = 0.5
    """The smoothing noise is clipped to [-target_noise_clip, target_noise_clip]."""
    exploration_noise: float = 0.1
    """Std of the Gaussian exploration noise added to the actor's coords when acting with explore=True."""
    discrete_exploration: float = 0.3
    """Exploration std on discrete coords (MultiDiscrete levels, way-points) as a fraction of their level
    spacing; with 0.3 a coord leaves its level ~10% of the time. Not an SB3 name (SB3 has no discrete TD3)."""
    net_arch: tuple[int, ...] = (256, 256)
    """Hidden widths of the actor trunk and of each critic (SB3's and the paper's 256x256)."""

    # --- enhancers (autogai/agents/enhancers.py declares their knobs) ----------------------------------
    enhancer_configs: tuple[Any, ...] = ()
    """One nested configuration per enhancer with knobs, in the order of :data:`CONFIGURED`
    (:meth:`enhancer` finds one by key). Built from flat keyword arguments such as ``diffusion_steps=10``."""

    # --- runtime ------------------------------------------------------------------------------------
    device: str = "auto"
    """``cpu``, ``cuda`` or ``auto`` (cuda when available)."""
    torch_threads: int = 1
    """torch intra-op threads set when a population is built. 1 is fastest per process for these small networks and
    leaves the other core to a second trial; raise it for wide networks on an idle machine."""

    def __init__(self, **values: Any) -> None:
        """Every value by its flat name (``TD3Config(net_arch=(64, 64), diffusion_steps=10)``), the others
        at their defaults; an unknown name raises :class:`ConfigError` naming the valid ones."""
        unknown = sorted(set(values) - set(_flat_defaults()))
        if unknown:
            raise ConfigError(
                f"unknown TD3Config field(s) {unknown}; valid fields: {', '.join(sorted(_flat_defaults()))}"
            )
        for f in fields(TD3Config):
            if f.name != _ENHANCER_FIELD:
                object.__setattr__(self, f.name, values.get(f.name, f.default))
        nested = tuple(
            e.config(**{k.field: values[k.flat_name] for k in e.knobs if k.flat_name in values})  # type: ignore[misc]
            for e in CONFIGURED
        )
        object.__setattr__(self, _ENHANCER_FIELD, nested)
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.net_arch, tuple):
            object.__setattr__(self, "net_arch", tuple(self.net_arch))
        check_range("learning_rate", self.learning_rate, 0.0, 1.0, low_inclusive=False)
        check_positive_int("buffer_size", self.buffer_size)
        check_positive_int("learning_starts", self.learning_starts, allow_zero=True)
        check_positive_int("batch_size", self.batch_size)
        check_range("tau", self.tau, 0.0, 1.0, low_inclusive=False)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_positive_int("train_freq", self.train_freq)
        check_positive_int("gradient_steps", self.gradient_steps)
        check_positive_int("policy_delay", self.policy_delay)
        check_range("target_policy_noise", self.target_policy_noise, 0.0)
        check_range("target_noise_clip", self.target_noise_clip, 0.0)
        check_range("exploration_noise", self.exploration_noise, 0.0)
        check_range("discrete_exploration", self.discrete_exploration, 0.0)
        if not self.net_arch:
            raise ConfigError("net_arch=() must name at least one hidden layer width")
        for width in self.net_arch:
            check_positive_int("net_arch entry", width)
        check_choice("device", self.device, DEVICES)
        check_positive_int("torch_threads", self.torch_threads)

    def enhancer(self, key: str) -> Any:
        """The nested configuration of the enhancer with this key (``config.enhancer("vae").latent_dim``)."""
        for declared, nested in zip(CONFIGURED, self.enhancer_configs, strict=True):
            if declared.key == key:
                return nested
        raise ConfigError(f"no enhancer with key {key!r}; keys: {', '.join(str(e.key) for e in CONFIGURED)}")

    def flat(self) -> dict[str, Any]:
        """Every value by its flat name, as the constructor takes them (net_arch a tuple)."""
        return dict(self._flat_items())

    def get(self, name: str) -> Any:
        """One value by its flat name (``config.get("vae_beta")``)."""
        try:
            return self.flat()[name]
        except KeyError:
            raise ConfigError(f"unknown TD3Config field {name!r}") from None

    def _flat_items(self) -> Iterator[tuple[str, Any]]:
        for f in fields(self):
            if f.name != _ENHANCER_FIELD:
                yield f.name, getattr(self, f.name)
            else:
                for declared, nested in zip(CONFIGURED, self.enhancer_configs, strict=True):
                    for k in declared.knobs:
                        yield k.flat_name, getattr(nested, k.field)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the flat names (net_arch as a list)."""
        data = self.flat()
        data["net_arch"] = list(self.net_arch)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TD3Config:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError` naming the valid ones."""
        values = dict(data)
        if "net_arch" in values:
            values["net_arch"] = tuple(int(w) for w in values["net_arch"])
        return cls(**values)

    def replace(self, **changes: Any) -> TD3Config:
        """A copy with some fields changed (validated)."""
        return TD3Config.from_dict({**self.to_dict(), **changes})

    def population_key(self) -> tuple[Any, ...]:
        """The values that must be equal for two configurations to train in one population."""
        return tuple((name, value) for name, value in self._flat_items() if name not in PER_AGENT_FIELDS)


def check_same_population(configs: Sequence[TD3Config]) -> TD3Config:
    """The shared configuration of a population; a ConfigError names the first field that differs."""
    if not configs:
        raise ConfigError("a population needs at least one agent configuration (got 0)")
    first = configs[0]
    for index, config in enumerate(configs[1:], start=1):
        if config.population_key() != first.population_key():
            for (name, a), (_, b) in zip(first.population_key(), config.population_key(), strict=True):
                if a != b:
                    raise ConfigError(
                        f"agent {index} differs from agent 0 in {name} ({b!r} vs {a!r}); only "
                        f"{', '.join(PER_AGENT_FIELDS)} may differ inside one population"
                    )
    return first


def _flat_defaults() -> dict[str, Any]:
    """Every flat name and its default."""
    names = {f.name: f.default for f in fields(TD3Config) if f.name != _ENHANCER_FIELD}
    for declared in CONFIGURED:
        names.update({k.flat_name: k.default for k in declared.knobs})
    return names
