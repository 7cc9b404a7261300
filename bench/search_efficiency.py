"""autogai's search vs random search over the same space at equal compute, and the steps pruning saves.

Arm A: the full search (TPE sampler, median pruning on periodic evaluations, successive halving of trials
across designs, feedback to the proposer). Arm B: random search (RandomSampler, no pruning, no halving)
over the same designs and hyperparameter space, given as many trials as fit in the environment steps A
used (equal CPU time: same networks, same step cost). Both score their best configurations the same way
(held-out seeds). Pairs run side by side (A, B, A, B, ...). The best held-out scores of the two arms are
compared as independent runs (``autogai.core.statistics.compare``: the IQM difference with its 95% bootstrap
interval and the probability that A's best beats B's); the last line is the headline.

    .venv/bin/python bench/search_efficiency.py                       # 5 pairs
    .venv/bin/python bench/search_efficiency.py --pairs 1 --steps 2000 --trials 4
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _steps_used(run_dir: Path) -> tuple[int, int, int]:
    """(env steps of tuning trials, trials, steps those trials would have used without pruning)."""
    steps = trials = 0
    for path in (run_dir / "designs").glob("*/trials.csv"):
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if row["study"] != "tuning" or not row["steps_done"]:
                    continue
                steps += int(float(row["steps_done"]))
                trials += 1
    return steps, trials, 0


def _search(args: argparse.Namespace, run_dir: Path, *, random_search: bool, trials: int) -> dict[str, Any]:
    from autogai.pipeline.loop import SearchOptions, run_search

    overrides: dict[str, Any] = {
        "total_steps": args.steps,
        "eval_every": max(1, args.steps // 4),
        "learning_starts": min(500, args.steps // 5),
    }
    if random_search:
        overrides.update({"sampler": "random", "pruner": "none", "halving_rungs": 0})
    options = SearchOptions(
        task=args.task,
        preset="smoke",
        generations=args.generations,
        designs=args.designs,
        trials=trials,
        seeds=args.seeds,
        workers=args.workers,
        run_dir=run_dir,
        embeddings=args.embeddings,
        budget_overrides=overrides,
    )
    start = time.monotonic()
    summary = run_search(options)
    wall = time.monotonic() - start
    steps, n_trials, _ = _steps_used(run_dir)
    best = summary.best or {}
    return {
        "wall": wall,
        "steps": steps,
        "trials": n_trials,
        "best": best.get("iqm"),
        "baseline": (summary.baseline or {}).get("iqm"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="uav-nearfield")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2000, help="training steps per trial")
    parser.add_argument("--trials", type=int, default=4, help="arm A's trials per design in the first rung")
    parser.add_argument("--designs", type=int, default=2)
    parser.add_argument("--generations", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--embeddings", default="hash")
    args = parser.parse_args(argv)
    score_diffs, savings, time_ratios = [], [], []
    best_a: list[float] = []
    best_b: list[float] = []
    with tempfile.TemporaryDirectory(prefix="autogai-bench-search-") as tmp:
        for pair in range(args.pairs):
            a = _search(args, Path(tmp) / f"A{pair}", random_search=False, trials=args.trials)
            full = a["trials"] * args.steps
            saving = 1.0 - a["steps"] / full if full else 0.0
            # Random search gets the steps A used, spread over the same designs (+ the baseline).
            n_designs = args.designs * args.generations + 1
            b_trials = max(1, math.floor(a["steps"] / args.steps / n_designs))
            b = _search(args, Path(tmp) / f"B{pair}", random_search=True, trials=b_trials)
            diff = (a["best"] or float("nan")) - (b["best"] or float("nan"))
            score_diffs.append(diff)
            best_a.append(a["best"] if a["best"] is not None else float("nan"))
            best_b.append(b["best"] if b["best"] is not None else float("nan"))
            savings.append(saving)
            time_ratios.append(b["wall"] / a["wall"])
            print(
                f"pair {pair}: autogai best {a['best']:.4g} ({a['trials']} trials, {a['steps']} steps, "
                f"{a['wall']:.0f} s, pruning saved {saving:.0%} of steps) | random best {b['best']:.4g} "
                f"({b['trials']} trials, {b['steps']} steps, {b['wall']:.0f} s) | score difference {diff:+.4g}",
                flush=True,
            )
    from autogai.core.statistics import compare

    versus = compare(best_a, best_b)
    print(
        f"search_efficiency: best held-out IQM autogai - random = {versus.difference:+.4g} "
        f"(95% CI [{versus.difference_low:+.4g}, {versus.difference_high:+.4g}], P(autogai better) "
        f"{versus.probability_of_improvement:.2f}) over {len(score_diffs)} pairs at "
        f"{statistics.median(time_ratios):.2f}x random's/autogai's wall time; pruning saved "
        f"{statistics.median(savings):.0%} of training steps (median)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
