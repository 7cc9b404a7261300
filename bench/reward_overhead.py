"""Per-step cost of applying a reward program through the sandbox, next to a TD3 update.

Measures, on the same machine and task:

1. a bare env step (random actions, resets included);
2. the same step through :class:`~autogai.rewards.RewardWrapper` with the task's baseline reward program
   evaluated in the sandbox process (metrics, one pipe round trip, info bookkeeping);
3. one TD3 update with a tiny torch MLP (actor and twin critics 256-256, batch 256): critic step every
   update, actor and Polyak step every second update, as TD3 does with policy_delay=2;
4. the cost per transition of :meth:`~autogai.rewards.SandboxedReward.compute` (one round trip each) next to
   :meth:`~autogai.rewards.SandboxedReward.compute_rows` (one round trip for a population step: N transitions,
   each agent's own PARAMS set) at N = 1, 16, 128;
5. what the seccomp filter and the drop to an unprivileged user add to one ``compute`` call: the same program
   in two sandboxes, one with every layer and one without those two, timed in alternating blocks (median of
   the per-pair ratios; the machine is shared and noisy).

Usage: ``python bench/reward_overhead.py [--task uav-nearfield] [--steps 3000] [--updates 100]``.
The last line is the headline.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def time_env_steps(env, actions: list, *, seed: int) -> float:
    """Mean seconds per step over ``actions`` (resets at episode ends are included)."""
    env.reset(seed=seed)
    started = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return (time.perf_counter() - started) / len(actions)


def time_td3_update(
    obs_dim: int, action_dim: int, *, updates: int, batch: int = 256, width: int = 256
) -> float:
    """Mean seconds per TD3 update of a plain MLP actor and twin critics."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)

    def mlp(inputs: int, outputs: int, tanh: bool = False) -> nn.Module:
        layers: list[nn.Module] = [nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()]
        layers.append(nn.Linear(width, outputs))
        if tanh:
            layers.append(nn.Tanh())
        return nn.Sequential(*layers)

    actor, actor_target = mlp(obs_dim, action_dim, True), mlp(obs_dim, action_dim, True)
    critics = nn.ModuleList([mlp(obs_dim + action_dim, 1), mlp(obs_dim + action_dim, 1)])
    critic_targets = nn.ModuleList([mlp(obs_dim + action_dim, 1), mlp(obs_dim + action_dim, 1)])
    actor_target.load_state_dict(actor.state_dict())
    critic_targets.load_state_dict(critics.state_dict())
    actor_opt = torch.optim.Adam(actor.parameters(), lr=3e-4)
    critic_opt = torch.optim.Adam(critics.parameters(), lr=3e-4)
    obs = torch.randn(batch, obs_dim)
    act = torch.rand(batch, action_dim) * 2 - 1
    rew = torch.randn(batch, 1)
    nxt = torch.randn(batch, obs_dim)
    done = torch.zeros(batch, 1)

    def update(step: int) -> None:
        with torch.no_grad():
            noise = (torch.randn_like(act) * 0.2).clamp(-0.5, 0.5)
            next_action = (actor_target(nxt) + noise).clamp(-1, 1)
            target_in = torch.cat([nxt, next_action], 1)
            target_q = torch.min(critic_targets[0](target_in), critic_targets[1](target_in))
            target = rew + 0.99 * (1 - done) * target_q
        current = torch.cat([obs, act], 1)
        critic_loss = sum(((critic(current) - target) ** 2).mean() for critic in critics)
        critic_opt.zero_grad()
        critic_loss.backward()
        critic_opt.step()
        if step % 2 == 0:
            actor_loss = -critics[0](torch.cat([obs, actor(obs)], 1)).mean()
            actor_opt.zero_grad()
            actor_loss.backward()
            actor_opt.step()
            with torch.no_grad():
                for net, target_net in ((actor, actor_target), (critics, critic_targets)):
                    for param, target_param in zip(net.parameters(), target_net.parameters(), strict=True):
                        target_param.mul_(0.995).add_(0.005 * param)

    for step in range(5):  # warm-up
        update(step)
    started = time.perf_counter()
    for step in range(updates):
        update(step)
    return (time.perf_counter() - started) / updates


def collect_rows(
    task, rows: int, *, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """``rows`` real transitions of the task under random actions, as column arrays for ``compute_rows``."""
    from autogai.rewards.restricted import as_float_array

    env = task.make_env()
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    metrics: dict[str, list[float]] = {}
    columns: dict[str, list[np.ndarray]] = {"obs": [], "action": [], "next_obs": []}
    try:
        for _ in range(rows):
            action = env.action_space.sample()
            next_obs, reward, terminated, truncated, info = env.step(action)
            for name, value in task.metrics_fn(obs, action, float(reward), next_obs, info).items():
                metrics.setdefault(name, []).append(float(value))
            for name, value in (("obs", obs), ("action", action), ("next_obs", next_obs)):
                columns[name].append(as_float_array(value))
            obs = env.reset()[0] if terminated or truncated else next_obs
    finally:
        env.close()
    stacked = {name: np.asarray(values) for name, values in metrics.items()}
    return stacked, np.stack(columns["obs"]), np.stack(columns["action"]), np.stack(columns["next_obs"])


def time_row_calls(task, sizes: tuple[int, ...], *, repeats: int = 20) -> tuple[float, dict[int, float]]:
    """Seconds per transition of ``compute`` (one round trip each) and of ``compute_rows`` at each size."""
    from autogai.rewards import SandboxedReward

    largest = max(sizes)
    metrics, obs, action, next_obs = collect_rows(task, largest, seed=3)
    with SandboxedReward(task.baseline_reward, task) as sandbox:
        steps = [{name: float(values[row]) for name, values in metrics.items()} for row in range(largest)]
        for row in range(largest):  # warm-up
            sandbox.compute(steps[row], obs[row], action[row], next_obs[row])
        started = time.perf_counter()
        for _ in range(repeats):
            for row in range(largest):
                sandbox.compute(steps[row], obs[row], action[row], next_obs[row])
        single = (time.perf_counter() - started) / (repeats * largest)
        per_row: dict[int, float] = {}
        for size in sizes:
            columns = {name: values[:size] for name, values in metrics.items()}
            params = [sandbox.params] * min(size, 16)  # one PARAMS set per agent, up to 16 agents
            index = np.arange(size) % len(params)
            arguments = (columns, obs[:size], action[:size], next_obs[:size], params, index)
            sandbox.compute_rows(*arguments)  # warm-up
            calls = max(repeats, 2 * largest // size)
            started = time.perf_counter()
            for _ in range(calls):
                result = sandbox.compute_rows(*arguments)
            per_row[size] = (time.perf_counter() - started) / (calls * size)
            if result.errors:
                raise RuntimeError(f"the baseline failed on some rows: {result.errors}")
    return single, per_row


def time_layer_cost(task, *, pairs: int = 41, calls: int = 100) -> tuple[float, list[float], list[str]]:
    """Median added cost (fraction) of seccomp + the uid drop per ``compute`` call, the per-pair ratios, and
    the layers the full sandbox had."""
    from autogai.rewards import SandboxedReward

    metrics, obs, action, next_obs = collect_rows(task, 64, seed=5)
    steps = [
        ({name: float(values[row]) for name, values in metrics.items()}, obs[row], action[row], next_obs[row])
        for row in range(64)
    ]

    def block(sandbox) -> float:
        started = time.perf_counter()
        for call in range(calls):
            sandbox.compute(*steps[call % 64])
        return (time.perf_counter() - started) / calls

    with (
        SandboxedReward(task.baseline_reward, task) as full,
        SandboxedReward(task.baseline_reward, task, skip_layers=("seccomp", "uid")) as bare,
    ):
        block(full), block(bare)  # warm-up
        ratios = []
        for _ in range(pairs):
            with_layers, without = block(full), block(bare)
            ratios.append(with_layers / without)
        layers = list(full.isolation)
    return float(np.median(ratios)) - 1.0, ratios, layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="uav-nearfield")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--updates", type=int, default=100)
    args = parser.parse_args()

    from autogai.rewards import RewardWrapper
    from autogai.tasks import get_task

    task = get_task(args.task)
    bare = task.make_env()
    bare.action_space.seed(0)
    actions = [bare.action_space.sample() for _ in range(args.steps)]
    wrapped = RewardWrapper(task.make_env(), task.baseline_reward, task)
    try:
        time_env_steps(bare, actions[:200], seed=1)  # warm-up both paths
        time_env_steps(wrapped, actions[:200], seed=1)
        bare_s = min(time_env_steps(bare, actions, seed=0) for _ in range(2))
        wrapped_s = min(time_env_steps(wrapped, actions, seed=0) for _ in range(2))
    finally:
        wrapped.close()
        bare.close()
    obs_dim = int(np.prod(bare.observation_space.shape))
    action_dim = int(np.prod(bare.action_space.shape or (1,)))
    update_s = time_td3_update(obs_dim, action_dim, updates=args.updates)

    single_s, per_row_s = time_row_calls(task, (1, 16, 128))
    layer_cost, layer_ratios, layers = time_layer_cost(task)

    overhead = wrapped_s - bare_s
    print(
        f"task {task.id}: obs {obs_dim}, action {action_dim}, {args.steps} steps, {args.updates} TD3 updates"
    )
    print(f"bare env step:                 {bare_s * 1e6:9.1f} us")
    print(f"env step + sandboxed reward:   {wrapped_s * 1e6:9.1f} us  ({wrapped_s / bare_s:.2f}x bare)")
    print(f"reward overhead per step:      {overhead * 1e6:9.1f} us")
    print(f"TD3 update (batch 256, 256x2): {update_s * 1e6:9.1f} us  (1 torch thread)")
    print(f"compute, per transition:       {single_s * 1e6:9.1f} us  (one round trip each)")
    for size, seconds in per_row_s.items():
        print(
            f"compute_rows N={size:<4d} per row:  {seconds * 1e6:9.1f} us  "
            f"({seconds / single_s:.2f}x compute; {seconds * size * 1e6:.0f} us per population step)"
        )
    print(f"sandbox layers: {', '.join(layers)}")
    print(
        f"seccomp + uid drop per compute call: {100 * layer_cost:+.1f}% (target < 10%; median of "
        f"{len(layer_ratios)} alternating pairs, quartiles {np.percentile(layer_ratios, 25):.3f}-"
        f"{np.percentile(layer_ratios, 75):.3f})"
    )
    print(
        f"headline: the sandboxed reward adds {overhead * 1e6:.0f} us per env step "
        f"({wrapped_s / bare_s:.1f}x a bare step), {100 * overhead / update_s:.1f}% of one TD3 update "
        f"({update_s * 1e3:.2f} ms)"
    )


if __name__ == "__main__":
    main()
