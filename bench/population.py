"""Training speed of a population: P agents in one process vs the same agents trained one at a time.

What is timed is the whole training step of the UAV task (continuous actions, the task's baseline reward in
the sandbox, 64x64 networks, batch 128, ``train_freq=1``, one torch thread): acting, env stepping, one
sandbox round trip for all agents' rewards, storing, and one TD3 update of every agent. Each configuration
runs in its own worker process; after a random warm-up past ``learning_starts`` the workers run short timed
segments in turn (P=1, P=N, P=1, P=N, ...), and the speed-up of a pair is

    (agent-steps per second of the population) / (steps per second of a population of one),

the figure being the median over pairs (the machine is shared and noisy). "One at a time" is a population of
one: P agents trained one after another take P times as long as one.

``--reference REV`` (default: the commit before populations) also times that commit's single-agent
training loop in the same alternation, so "P=1 is no slower than the old single agent" is measured side by
side too. Peak memory: each worker's maximum resident set size, and per agent.

Usage::

    .venv/bin/python bench/population.py --quick     # plain, P in (1, 16), < 60 s
    .venv/bin/python bench/population.py             # plain, gdm, gdm+gan; P in (1, 4, 16, 32); reference

The last line is the headline: ``population speed-up at P=16 (plain, 64x64): N.NN×``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_REV = "7dbf6c0"  # the last commit with the single-agent TD3 (before populations)
LEARNING_STARTS = 200
ENV_KWARGS = {"action_mode": "continuous"}


# ------------------------------------------------------------------------------------------ workers
def _config(combo: str):
    from autogai.agents import TD3Config

    return TD3Config(
        net_arch=(64, 64), batch_size=128, learning_starts=LEARNING_STARTS, device="cpu", torch_threads=1
    )


def _worker_new(combo: str, agents: int) -> None:
    from autogai.tasks import get_task
    from autogai.training import AgentSpec, PopulationSession

    config = _config(combo)
    session = PopulationSession(
        get_task("uav-nearfield"),
        [AgentSpec(seed=s, td3_config=config) for s in range(agents)],
        enhancers=combo,
        env_kwargs=ENV_KWARGS,
        total_steps=100_000,
    )
    session.advance(LEARNING_STARTS + 5)
    _serve(lambda n: session.advance(n), agents)
    session.close()


def _worker_reference(combo: str) -> None:
    from autogai.tasks import get_task
    from autogai.training import TrainingSession  # the single-agent loop of the reference commit

    session = TrainingSession(
        get_task("uav-nearfield"), enhancers=combo, td3_config=_config(combo), seed=0, env_kwargs=ENV_KWARGS
    )
    session.advance(LEARNING_STARTS + 5)
    _serve(lambda n: session.advance(n), 1)
    session.close()


def _serve(advance, agents: int) -> None:
    """Read segment lengths (seconds) from stdin; answer steps done and seconds taken, per segment."""
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        target = float(line)
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < target:
            advance(5)
            steps += 5
        elapsed = time.perf_counter() - start
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            json.dumps({"agent_steps": steps * agents, "seconds": elapsed, "max_rss_mb": rss_mb}), flush=True
        )


# ------------------------------------------------------------------------------------------ vmap
def compare_vmap(sizes: list[int], repeats: int = 5) -> dict[int, dict[str, float]]:
    """One critic regression step (64x64 MLP, batch 128, Adam) for P networks: ``torch.func`` (vmap of
    grad over functional_call on stacked parameters) vs stacked weights with ``baddbmm`` and autograd.
    Returns network-updates per second of each, per P (median over ``repeats`` alternating timings)."""
    import torch

    torch.set_num_threads(1)
    return {p: _vmap_rates(p, repeats) for p in sizes}


def _vmap_rates(p: int, repeats: int) -> dict[str, float]:
    import torch
    from torch import nn
    from torch.func import functional_call, grad, stack_module_state, vmap

    from autogai.agents.stacked import StackedMLP, agent_generators

    obs_dim, batch = 110, 128
    x, y = torch.randn(p, batch, obs_dim), torch.randn(p, batch, 1)
    stacked = StackedMLP(obs_dim, (64, 64), 1, agent_generators(range(p)))
    stacked_opt = torch.optim.Adam(stacked.parameters(), lr=1e-3, fused=True)
    modules = [
        nn.Sequential(nn.Linear(obs_dim, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
        for _ in range(p)
    ]
    params, buffers = stack_module_state(modules)
    base = modules[0].to("meta")
    func_params = [nn.Parameter(v) for v in params.values()]
    func_opt = torch.optim.Adam(func_params, lr=1e-3, fused=True)

    def loss_fn(prm, buf, xb, yb):
        return ((functional_call(base, (prm, buf), (xb,)) - yb) ** 2).mean()

    grads_fn = vmap(grad(loss_fn), in_dims=(0, 0, 0, 0))

    def step_stacked() -> None:
        stacked_opt.zero_grad(set_to_none=True)
        ((stacked(x) - y) ** 2).mean(dim=(1, 2)).sum().backward()
        stacked_opt.step()

    def step_vmap() -> None:
        grads = grads_fn(dict(zip(params, func_params, strict=True)), buffers, x, y)
        for param, name in zip(func_params, params, strict=True):
            param.grad = grads[name]
        func_opt.step()

    rates: dict[str, list[float]] = {"stacked": [], "vmap": []}
    for _ in range(repeats):
        for label, fn in (("stacked", step_stacked), ("vmap", step_vmap)):
            for _ in range(3):
                fn()
            n, start = 30, time.perf_counter()
            for _ in range(n):
                fn()
            rates[label].append(p * n / (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in rates.items()}


# ------------------------------------------------------------------------------------------ driver
class Worker:
    def __init__(self, label: str, args: list[str], pythonpath: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.label = label
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(pythonpath),
        )
        self._read()

    def _read(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.label} died (exit {self.process.wait()})")
        return json.loads(line)

    def segment(self, seconds: float) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{seconds}\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def _reference_tree(rev: str) -> Path | None:
    """A temporary checkout of ``rev`` (git worktree), or None when git or the commit is missing."""
    if shutil.which("git") is None:
        return None
    path = Path(tempfile.mkdtemp(prefix="autogai-reference-"))
    done = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(path), rev],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(f"reference {rev} not available: {done.stderr.strip()}", flush=True)
        shutil.rmtree(path, ignore_errors=True)
        return None
    return path


def _remove_tree(path: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def measure(combo: str, sizes: list[int], pairs: int, segment: float, reference: Path | None) -> dict:
    workers = {p: Worker(f"{combo} P={p}", ["new", combo, str(p)], ROOT) for p in sorted(set([1, *sizes]))}
    if reference is not None:
        workers[0] = Worker(f"{combo} reference", ["reference", combo, "1"], reference)
    rates: dict[int, list[float]] = {p: [] for p in workers}
    rss: dict[int, float] = {}
    try:
        for _ in range(pairs):
            for p, worker in workers.items():  # one round: every configuration once, in turn
                out = worker.segment(segment if p <= 1 else segment * 1.5)
                rates[p].append(out["agent_steps"] / out["seconds"])
                rss[p] = out["max_rss_mb"]
    finally:
        for worker in workers.values():
            worker.close()
    single = rates[1]
    table = {}
    for p in sizes:
        ratios = [r / s for r, s in zip(rates[p], single, strict=True)]
        table[p] = {
            "agent_steps_per_s": statistics.median(rates[p]),
            "speedup_vs_one_at_a_time": statistics.median(ratios),
            "ratios": ratios,
            "max_rss_mb": rss[p],
            "rss_per_agent_mb": rss[p] / p,
        }
    if 0 in rates:
        ratios = [n / r for n, r in zip(single, rates[0], strict=True)]
        table["reference"] = {
            "agent_steps_per_s": statistics.median(rates[0]),
            "p1_vs_reference": statistics.median(ratios),
            "ratios": ratios,
            "max_rss_mb": rss[0],
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="plain only, P in (1, 16), about a minute")
    parser.add_argument("--combos", default="plain,gdm,gdm+gan")
    parser.add_argument("--sizes", default="1,4,16,32")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--segment", type=float, default=2.0, help="seconds per timed segment")
    parser.add_argument(
        "--reference", default=REFERENCE_REV, help="git revision of the old single agent; '' skips"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--compare-vmap", action="store_true", help="only compare torch.func vmap with stacked baddbmm"
    )
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, combo, agents = args.worker
        import torch

        torch.set_num_threads(1)
        if kind == "new":
            _worker_new(combo, int(agents))
        else:
            _worker_reference(combo)
        return

    if args.compare_vmap:
        print("critic regression step, 64x64, batch 128, one thread: network-updates/s")
        print(f"{'P':>4} {'stacked baddbmm':>16} {'torch.func vmap':>16} {'ratio':>7}")
        for p, row in compare_vmap([1, 4, 16, 32]).items():
            print(
                f"{p:>4} {row['stacked']:>16.0f} {row['vmap']:>16.0f} {row['stacked'] / row['vmap']:>6.2f}x"
            )
        return

    combos = ["plain"] if args.quick else args.combos.split(",")
    sizes = [1, 16] if args.quick else [int(s) for s in args.sizes.split(",")]
    pairs = 3 if args.quick else args.pairs
    segment = 1.2 if args.quick else args.segment
    reference = None if args.quick or not args.reference else _reference_tree(args.reference)
    started = time.time()
    results = {}
    try:
        for combo in combos:
            results[combo] = measure(combo, sizes, pairs, segment, reference)
            table = results[combo]
            print(f"\n{combo} (UAV continuous, 64x64, batch 128, one thread, baseline reward in the sandbox)")
            print(f"{'P':>4} {'agent-steps/s':>14} {'speed-up':>9} {'max RSS MB':>11} {'MB/agent':>9}")
            for p in sizes:
                row = table[p]
                print(
                    f"{p:>4} {row['agent_steps_per_s']:>14.0f} {row['speedup_vs_one_at_a_time']:>8.2f}x "
                    f"{row['max_rss_mb']:>11.0f} {row['rss_per_agent_mb']:>9.1f}"
                )
            if "reference" in table:
                ref = table["reference"]
                print(
                    f"reference {args.reference} single agent: {ref['agent_steps_per_s']:.0f} steps/s; "
                    f"P=1 / reference = {ref['p1_vs_reference']:.3f} (pairs {[round(r, 3) for r in ref['ratios']]})"
                )
    finally:
        if reference is not None:
            _remove_tree(reference)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(f"\n({time.time() - started:.0f} s)")
    headline = (
        results["plain"][16]["speedup_vs_one_at_a_time"]
        if 16 in sizes and "plain" in results
        else float("nan")
    )
    print(f"population speed-up at P=16 (plain, 64x64): {headline:.2f}×")


if __name__ == "__main__":
    main()
