"""A population is P independent agents: per-agent learning rates and taus are exactly Adam and Polyak with
that agent's value, a diverging agent cannot touch its neighbours, and ``keep`` moves survivors
bit-for-bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from training_helpers import tiny_agent_config

from autogai.agents import ReplayBatch, TD3Population
from autogai.core.errors import ConfigError

torch.set_num_threads(1)

CONFIG = tiny_agent_config()
OBS = spaces.Box(-1.0, 1.0, (5,), np.float32)
BOX = spaces.Box(-1.0, 1.0, (2,), np.float32)


def _transitions(agents: int, n: int = 48, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (agents, n, 5)).astype(np.float32)
    return (
        obs,
        rng.uniform(-1, 1, (agents, n, 2)),
        rng.normal(size=(agents, n)),
        np.roll(obs, 1, 1),
        rng.random((agents, n)) < 0.1,
    )


def _state(population: TD3Population) -> dict[str, torch.Tensor]:
    """Every parameter and Adam moment of the population, by name (``[P, ...]`` each)."""
    out = {}
    for name, module in population._modules().items():
        for key, param in module.named_parameters():
            out[f"{name}.{key}"] = param.detach().clone()
    for name, optimizer in population.optimizers.items():
        for group in optimizer.param_groups:
            for k, param in enumerate(group["params"]):
                for moment in ("exp_avg", "exp_avg_sq"):
                    if moment in optimizer.state.get(param, {}):
                        out[f"{name}.{k}.{moment}"] = optimizer.state[param][moment].detach().clone()
    return out


def test_per_agent_learning_rate_and_tau_equal_adam_and_polyak_with_that_value() -> None:
    """Two updates (critic twice, actor and targets once) of a P=2 population with rates a, b and taus
    t_a, t_b give each agent the parameters, targets and Adam moments of a P=1 population with its own
    rate and tau, trained on the same minibatches."""
    base = CONFIG.replace(target_policy_noise=0.0)  # no smoothing noise: the targets use no random draws
    mixed = [base.replace(learning_rate=1e-3, tau=0.01), base.replace(learning_rate=7e-3, tau=0.2)]
    population = TD3Population(OBS, BOX, "plain", mixed, seeds=[11, 12])
    alone = [
        TD3Population(OBS, BOX, "plain", config, seeds=[seed])
        for config, seed in zip(mixed, [11, 12], strict=True)
    ]
    data = _transitions(2)
    population.add_transitions(*data)
    for i, single in enumerate(alone):
        single.add_transitions(*(array[i : i + 1] for array in data))
    # One fixed minibatch per agent, so both paths see the same data whatever their samplers would draw.
    rng = torch.Generator().manual_seed(5)
    assert population._buffer is not None
    index = torch.randint(0, 48, (CONFIG.batch_size,), generator=rng)
    batch = ReplayBatch(*(getattr(population._buffer, name)[:, index] for name in population._buffer.FIELDS))
    population._buffer.sample = lambda batch_size, generator=None: batch  # type: ignore[method-assign]
    for i, single in enumerate(alone):
        assert single._buffer is not None
        sliced = ReplayBatch(*(t[i : i + 1] for t in batch))
        single._buffer.sample = lambda batch_size, generator=None, b=sliced: b  # type: ignore[method-assign]

    before = _state(population)
    for i, single in enumerate(alone):  # each agent starts from the weights it would have alone
        for name, value in _state(single).items():
            assert torch.equal(before[name][i : i + 1], value), name
    population.train_step(2)
    for single in alone:
        single.train_step(2)
    after = _state(population)
    assert any(name.endswith("exp_avg") for name in after)
    for i, single in enumerate(alone):
        for name, value in _state(single).items():
            torch.testing.assert_close(after[name][i : i + 1], value, rtol=1e-5, atol=1e-7, msg=name)
    # The two agents did move by different amounts: the rates and taus were really per agent.
    actor = "actor.head.linear.weight"
    steps = [(after[actor][i] - before[actor][i]).abs().mean() for i in range(2)]
    assert steps[1] > 3 * steps[0]
    target = "actor_target.head.linear.weight"
    moved = [(after[target][i] - before[target][i]).abs().mean() for i in range(2)]
    assert moved[1] > 10 * moved[0]


@pytest.mark.parametrize("enhancers", ["plain", "gdm+gan+transformer+vae"])
def test_a_diverging_agent_does_not_change_its_neighbours(enhancers: str) -> None:
    """Agent 1 of population A has NaN weights; A's agents 0 and 2 train exactly like those of an untouched
    twin population B, and after agent 1 leaves both continue identically."""
    populations = [TD3Population(OBS, BOX, enhancers, CONFIG, seeds=[0, 1, 2]) for _ in range(2)]
    for population in populations:
        population.add_transitions(*_transitions(3))
        population.train_step(3)  # Adam moments exist for everyone
    poisoned, clean = populations
    with torch.no_grad():
        for module in poisoned._modules().values():
            for param in module.parameters():
                param[1] = float("nan")
    losses = poisoned.train_step(2)
    clean.train_step(2)
    assert np.isnan(losses["critic_loss"][1]) and np.isfinite(losses["critic_loss"][[0, 2]]).all()
    assert poisoned.nonfinite_agents() == [1] and clean.nonfinite_agents() == []
    dirty_state, clean_state = _state(poisoned), _state(clean)
    for name, value in clean_state.items():
        assert torch.equal(dirty_state[name][[0, 2]], value[[0, 2]]), name

    poisoned.keep([0, 2])
    clean.keep([0, 2])
    assert poisoned.size == 2 and poisoned.seeds == [0, 2]
    kept = _state(poisoned)
    for name, value in dirty_state.items():  # keep copies the survivors' values bit-for-bit
        assert torch.equal(kept[name], value[[0, 2]]), name
    poisoned.train_step(2)
    clean.train_step(2)
    for name, value in _state(clean).items():
        assert torch.equal(_state(poisoned)[name], value), name


def test_keep_reorders_and_frees_agents_and_rejects_bad_positions() -> None:
    configs = [CONFIG.replace(learning_rate=lr) for lr in (1e-3, 2e-3, 3e-3)]
    population = TD3Population(OBS, BOX, "plain", configs, seeds=[7, 8, 9])
    population.add_transitions(*_transitions(3))
    population.train_step(2)
    assert population._buffer is not None
    rewards = population._buffer.rewards.clone()
    state = _state(population)
    population.keep([2, 0])
    assert population.seeds == [9, 7] and [c.learning_rate for c in population.configs] == [3e-3, 1e-3]
    assert torch.equal(population._buffer.rewards, rewards[[2, 0]])
    for name, value in _state(population).items():
        assert torch.equal(value, state[name][[2, 0]]), name
    assert population.act(np.zeros((2, 1, 5), np.float32), explore=False).shape == (2, 1, 2)
    assert set(population.train_step(1)) >= {"critic_loss"}
    for bad, reason in (([], "zero agents"), ([0, 0], "distinct"), ([2], "distinct positions")):
        with pytest.raises(ConfigError, match=reason):
            population.keep(bad)
