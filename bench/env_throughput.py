"""Throughput of the UAV near-field environment: single env and batched, per action mode, against peers.

Timed in one process, on one core (OPENBLAS/OMP threads pinned to 1 before numpy loads):

- ``env``: ``UAVNearFieldEnv.step`` called directly (what the training loop's raw env costs);
- ``gym.make``: the same env behind gymnasium's default wrappers (PassiveEnvChecker, OrderEnforcing);
- ``naive``: a straightforward reference implementation of the same physics with a Python loop over the
  50 antenna elements per step (the authors' style: ``math.dist`` and ``exp`` per element), as a floor;
- ``batch``: ``UAVNearFieldBatch`` stepping B UAVs per call (steps/s counts UAV-steps);
- ``SyncVectorEnv``: gymnasium's own vector env over B copies of the env, for the batched path;
- ``before``: the unwrapped single env of this tree against the commit before the physics was unified (the
  parent of the commit that added ``uav_dynamics.py``/``uav_batch.py``), checked out in a temporary
  ``git worktree``. Each tree steps in its own worker process; the workers run 20k-step segments in turn
  (A, B, A, B, ...) and the ratio is the median of the per-pair ratios.

Times are CPU seconds of this process (``time.process_time``; numpy/BLAS pinned to one thread), so the
figures are the cost on one core even when other jobs share the machine; each contender runs in short
alternating segments and the figure is the median over segments. Usage::

    .venv/bin/python bench/env_throughput.py            # about 60 s
    .venv/bin/python bench/env_throughput.py --quick    # about 20 s
    .venv/bin/python bench/env_throughput.py --only-before --repeats 9   # the side-by-side part alone

The last line is the headline figure.
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import cmath  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from autogai.envs import register_envs  # noqa: E402
from autogai.envs.uav import ACTION_MODES, UAVNearFieldBatch, UAVNearFieldEnv  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
UNIFYING_COMMIT_FILE = "autogai/envs/uav_dynamics.py"
"""Added by the commit that unified the single env's and the batch's physics; its parent is "before"."""

_WORKER = """
import os, sys, time
for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = "1"
sys.path.insert(0, os.getcwd())
import gymnasium as gym
import autogai.envs
autogai.envs.register_envs()  # importing registers only since a later commit
envs = {}
for line in sys.stdin:
    mode, steps = line.split()
    if mode not in envs:
        env = gym.make("autogai/UAVNearField-v0", action_mode=mode).unwrapped
        env.action_space.seed(0)
        envs[mode] = (env, [env.action_space.sample() for _ in range(1000)])
    env, actions = envs[mode]
    env.reset(seed=0)
    start = time.process_time()
    for i in range(int(steps)):
        env.step(actions[i % 1000])
        if i % 100 == 99:
            env.reset()
    elapsed = time.process_time() - start
    print(autogai.__file__, elapsed / int(steps) * 1e6, flush=True)
"""
"""One tree's timing worker: reads ``mode steps`` lines, answers ``<autogai's path> <us per step>``; the
loop is the one the issue's figure was measured with (unwrapped env, reset every 100 steps)."""


class NaiveUAVEnv:
    """Reference implementation: same physics and observation, one Python loop iteration per element."""

    def __init__(self) -> None:
        self.n = 50
        self.wavelength = 3e8 / 80e9
        self.spacing = self.wavelength / 2
        self.rho = 10 ** (-7.2)
        self.alpha = 10 ** (-5.0)
        self.noise = 1e-8
        self.radius = 2 * 0.5**2 / self.wavelength
        self.user = (150.0, 200.0, 0.0)
        self.position = [1.0, 1.0, 6.0]
        self.t = 0

    def reset(self) -> np.ndarray:
        self.position = [1.0, 1.0, 6.0]
        self.t = 0
        return self._observe(0.0, 0.0)

    def _channel(self) -> list[complex]:
        r = math.dist(self.position, (0.0, 0.0, 0.0))
        k = 2 * math.pi / self.wavelength
        channel = []
        for i in range(1, self.n + 1):
            element = (0.0, (2 * i - self.n - 1) / 2 * self.spacing, 0.0)
            channel.append(math.sqrt(self.rho) / r * cmath.exp(-1j * k * math.dist(self.position, element)))
        return channel

    def _observe(self, rate_1: float, rate_2: float) -> np.ndarray:
        channel = self._channel()
        r = math.dist(self.position, (0.0, 0.0, 0.0))
        scale = r / math.sqrt(self.rho)
        x, y, z = self.position
        values = [x / 300, y / 300, z / 300]
        values += [h.real * scale for h in channel] + [h.imag * scale for h in channel]
        values += [rate_1 / 20, rate_2 / 20, self.t / 100]
        return np.array(values, dtype=np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.position[0] += 5 * float(action[0])
        self.position[1] += 5 * float(action[1])
        p_bs, p_uav = 500 * (float(action[2]) + 1), 500 * (float(action[3]) + 1)
        channel = self._channel()
        gain = sum(abs(h) ** 2 for h in channel)
        rate_1 = math.log2(1 + p_bs * gain / self.noise)
        rate_2 = math.log2(
            1 + p_uav * self.alpha / (math.dist(self.position, self.user) ** 2 + 1e-6) / self.noise
        )
        x, y, _ = self.position
        feasible = 0 <= x <= 300 and 0 <= y <= 300 and math.dist(self.position, (0, 0, 0)) <= self.radius
        fitness = 10 * min(rate_1, rate_2) * feasible - 0.005 * (p_bs + p_uav)
        self.t += 1
        return self._observe(rate_1, rate_2), fitness, False, self.t >= 100, {"fitness": fitness}


def _segment_rate(
    step: Callable[[Any], Any], reset: Callable[[], Any], actions: list[Any], steps: int
) -> float:
    """Steps per second of ``steps`` steps (resetting every 100), cycling through ``actions``."""
    reset()
    count = len(actions)
    start = time.process_time()
    for i in range(steps):
        if i % 100 == 99:
            step(actions[i % count])
            reset()
        else:
            step(actions[i % count])
    return steps / (time.process_time() - start)


def _median_rates(contenders: dict[str, Callable[[], float]], segments: int) -> dict[str, float]:
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(segments):
        for name, run in contenders.items():
            rates[name].append(run())
    return {name: statistics.median(values) for name, values in rates.items()}


def _actions(space: gym.Space, count: int, seed: int) -> list[Any]:
    space.seed(seed)
    return [space.sample() for _ in range(count)]


def single_env(segments: int, steps: int) -> dict[str, dict[str, float]]:
    register_envs()
    results: dict[str, dict[str, float]] = {}
    for mode in ACTION_MODES:
        env = UAVNearFieldEnv(action_mode=mode)
        wrapped = gym.make("autogai/UAVNearField-v0", action_mode=mode)
        actions = _actions(env.action_space, 1000, seed=0)
        contenders: dict[str, Callable[[], float]] = {
            "env": lambda env=env, actions=actions: _segment_rate(env.step, env.reset, actions, steps),
            "gym.make": lambda w=wrapped, actions=actions: _segment_rate(w.step, w.reset, actions, steps),
        }
        if mode == "continuous":
            naive = NaiveUAVEnv()
            contenders["naive"] = lambda naive=naive, actions=actions: _segment_rate(
                naive.step, naive.reset, actions, max(steps // 10, 200)
            )
        results[mode] = _median_rates(contenders, segments)
    return results


def batched(segments: int, n_envs: int, batch_steps: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for mode in ACTION_MODES:
        batch = UAVNearFieldBatch(n_envs, action_mode=mode)
        space = batch.single_action_space
        samples = _actions(space, n_envs, seed=1)
        if mode == "hybrid":
            batch_action: Any = (np.array([a[0] for a in samples]), np.stack([a[1] for a in samples]))
        else:
            batch_action = np.stack(samples)

        def run_batch(batch: UAVNearFieldBatch = batch, action: Any = batch_action) -> float:
            batch.reset(seed=0)
            start = time.process_time()
            for _ in range(batch_steps):
                batch.step(action)
            return batch_steps * batch.n_envs / (time.process_time() - start)

        contenders: dict[str, Callable[[], float]] = {"batch": run_batch}
        if mode == "continuous":
            vector_envs = 64
            vector = gym.vector.SyncVectorEnv(
                [UAVNearFieldEnv for _ in range(vector_envs)],
                autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
            )
            vector_action = np.stack(samples[:vector_envs])

            def run_vector(
                vector: gym.vector.SyncVectorEnv = vector, action: np.ndarray = vector_action
            ) -> float:
                vector.reset(seed=0)
                start = time.process_time()
                for _ in range(20):
                    vector.step(action)
                return 20 * vector.num_envs / (time.process_time() - start)

            contenders["SyncVectorEnv"] = run_vector
        results[mode] = _median_rates(contenders, segments)
    return results


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPOSITORY, check=True, capture_output=True, text=True).stdout


def before_commit() -> str:
    """The parent of the commit that added :data:`UNIFYING_COMMIT_FILE`."""
    added = _git("log", "--diff-filter=A", "--format=%H", "--", UNIFYING_COMMIT_FILE).split()
    if not added:
        raise SystemExit(f"error: no commit adds {UNIFYING_COMMIT_FILE} in this repository's history")
    return _git("rev-parse", f"{added[-1]}^").strip()


class _Worker:
    """A timing worker process running :data:`_WORKER` with ``tree`` first on its path."""

    def __init__(self, tree: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            cwd=tree,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(tree)},
        )
        self.tree = tree

    def time_step(self, mode: str, steps: int) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{mode} {steps}\n")
        self.process.stdin.flush()
        path, micros = self.process.stdout.readline().split()
        if not Path(path).resolve().is_relative_to(self.tree.resolve()):
            raise SystemExit(f"error: the worker for {self.tree} imported autogai from {path}")
        return float(micros)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def against_before(repeats: int, steps: int) -> dict[str, tuple[float, float, float]]:
    """``{mode: (median us/step now, median us/step before, median of the per-pair ratios now / before)}``."""
    commit = before_commit()
    print(f"before: {commit[:10]} (parent of the commit adding {UNIFYING_COMMIT_FILE}); now: this tree")
    scratch = Path(tempfile.mkdtemp(prefix="autogai-before-"))
    tree = scratch / "before"
    _git("worktree", "add", "--detach", str(tree), commit)
    workers: list[_Worker] = []
    try:
        now, before = _Worker(REPOSITORY), _Worker(tree)
        workers = [now, before]
        results: dict[str, tuple[float, float, float]] = {}
        for mode in ACTION_MODES:
            now.time_step(mode, 1000)  # warm-up: imports, first allocations
            before.time_step(mode, 1000)
            pairs = [(now.time_step(mode, steps), before.time_step(mode, steps)) for _ in range(repeats)]
            print(
                f"  {mode:<11} now  " + " ".join(f"{a:5.2f}" for a, _ in pairs) + " us"
                f"\n  {'':<11} before " + " ".join(f"{b:5.2f}" for _, b in pairs) + " us"
            )
            results[mode] = (
                statistics.median(a for a, _ in pairs),
                statistics.median(b for _, b in pairs),
                statistics.median(a / b for a, b in pairs),
            )
    finally:
        for worker in workers:
            worker.close()
        _git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def print_against_before(repeats: int, steps: int) -> dict[str, tuple[float, float, float]]:
    print(
        f"single env, unwrapped, against the code before the unified physics ({steps} steps x {repeats}, A/B)"
    )
    results = against_before(repeats, steps)
    for mode, (now, before, ratio) in results.items():
        print(
            f"  {mode:<11} now {now:5.2f} us   before {before:5.2f} us   now / before = {ratio:.2f} (median)"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter segments")
    parser.add_argument("--n-envs", type=int, default=4096, help="UAVs per batch step")
    parser.add_argument("--repeats", type=int, default=5, help="A/B pairs per mode against the code before")
    parser.add_argument(
        "--only-before", action="store_true", help="only the side-by-side with the code before"
    )
    args = parser.parse_args()
    segments, steps, batch_steps = (3, 3000, 5) if args.quick else (7, 10000, 10)
    if args.only_before:
        print_against_before(args.repeats, 20_000)
        return

    print(f"UAVNearFieldEnv throughput (median of {segments} alternating segments, one core)")
    print("")
    print("single env (steps/s; us/step)")
    single = single_env(segments, steps)
    for mode, rates in single.items():
        parts = [f"{name} {rate:>9,.0f}/s ({1e6 / rate:6.1f} us)" for name, rate in rates.items()]
        print(f"  {mode:<11} " + "   ".join(parts))
        print(f"  {'':<11} env / gym.make = {rates['env'] / rates['gym.make']:.2f}x", end="")
        if "naive" in rates:
            print(f", env / naive per-element loop = {rates['env'] / rates['naive']:.1f}x", end="")
        print("")
    print("")
    print(f"batched, B = {args.n_envs} (UAV-steps/s)")
    batch = batched(segments, args.n_envs, batch_steps)
    for mode, rates in batch.items():
        line = f"  {mode:<11} batch {rates['batch']:>11,.0f}/s"
        if "SyncVectorEnv" in rates:
            line += (
                f"   SyncVectorEnv(64) {rates['SyncVectorEnv']:>9,.0f}/s"
                f"   batch / SyncVectorEnv = {rates['batch'] / rates['SyncVectorEnv']:.0f}x"
            )
        print(line)
    print("")
    before = print_against_before(3 if args.quick else args.repeats, 20_000)
    print("")
    continuous = single["continuous"]
    print(
        f"headline: single env {1e6 / continuous['env']:.1f} us/step (target <= 20), "
        f"{before['continuous'][2]:.2f}x the code before the unified physics (median A/B ratio), "
        f"batched {batch['continuous']['batch']:,.0f} steps/s on one core (target >= 100,000), "
        f"{continuous['env'] / continuous['naive']:.0f}x the naive per-element loop"
    )


if __name__ == "__main__":
    main()
