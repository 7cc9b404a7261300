"""A short design search on MountainCarContinuous: does a proposed reward reach the flag where the native
reward does not?

Runs ``autogai search`` (offline proposer, no LLM) on the example card ``examples/tasks/mountain_car.py``:
the native reward (the card's baseline) and the first proposed designs each get a few tuning trials and
then 10 held-out seeds trained as one population, every run for the same number of environment steps.
A held-out seed *reaches the goal* when its evaluation episode's fitness (the native return: +100 at the
flag minus 0.1 force² per step) is positive; an episode that never reaches the flag scores at most 0.
Prints each design's goal count, its IQM fitness with the 95% bootstrap interval and the IQM difference to
the native reward; the last line compares the best design's goal count with the native reward's
(Fisher's exact test, one-sided).

    .venv/bin/python bench/mountain_car_search.py                  # 15k steps per run, about 15 min
    .venv/bin/python bench/mountain_car_search.py --steps 5000 --seeds 4 --trials 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

CARD = Path(__file__).resolve().parent.parent / "examples" / "tasks" / "mountain_car.py"


def _heldout_values(design_dir: Path) -> list[float]:
    with open(design_dir / "trials.csv", newline="") as handle:
        return [
            float(row["value"])
            for row in csv.DictReader(handle)
            if row["study"] == "test" and row["state"] == "COMPLETE"
        ]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _interval(pair: list[float] | None) -> str:
    return "-" if not pair else f"[{pair[0]:+.2f}, {pair[1]:+.2f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15_000, help="environment steps of every run")
    parser.add_argument("--designs", type=int, default=2, help="proposed designs (besides the native reward)")
    parser.add_argument("--trials", type=int, default=4, help="tuning trials per design")
    parser.add_argument("--seeds", type=int, default=10, help="held-out seeds per design")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: a temporary one)")
    parser.add_argument("--embeddings", default="local", help="knowledge-base embeddings (local or hash)")
    args = parser.parse_args(argv)

    from scipy.stats import fisher_exact

    from autogai.pipeline.loop import SearchOptions, run_search

    scratch = tempfile.TemporaryDirectory(prefix="autogai-mcc-")
    run_dir = args.out or Path(scratch.name) / "run"
    # A fresh knowledge-base store: no results of earlier runs to recall, so this is one experiment.
    os.environ.setdefault("AUTOGAI_CACHE", str(Path(scratch.name) / "cache"))
    options = SearchOptions(
        task=str(CARD),
        preset="smoke",
        generations=1,
        designs=args.designs,
        trials=args.trials,
        seeds=args.seeds,
        workers=args.workers,
        run_dir=run_dir,
        embeddings=args.embeddings,
        budget_overrides={
            "total_steps": args.steps,
            "learning_starts": 1_000,
            "eval_every": max(1, args.steps // 4),
            "eval_episodes": 1,
            "heldout_eval_episodes": 1,
            "net_arch_choices": ((64, 64),),
            "batch_size_choices": (128,),
            "buffer_size": max(args.steps, 20_000),
            "trial_time_limit_s": 1_800,
        },
    )
    print(
        f"# MountainCarContinuous, offline proposer: native reward + {args.designs} designs, "
        f"{args.trials} tuning trials and {args.seeds} held-out seeds each, {args.steps} steps per run, "
        f"{args.workers} workers"
    )
    started = time.monotonic()
    run_search(options)
    print(f"wall time {time.monotonic() - started:.0f} s")

    board = json.loads((run_dir / "leaderboard.json").read_text())["designs"]
    goals: dict[str, tuple[int, int]] = {}
    for row in board:
        design_dir = run_dir / "designs" / row["design_id"]
        values = _heldout_values(design_dir)
        reached = sum(value > 0 for value in values)
        goals[row["design_id"]] = (reached, len(values))
        validation = json.loads((design_dir / "design.json").read_text()).get("validation") or {}
        names = ", ".join(validation.get("component_names") or []) or "-"
        print(
            f"{row['rank']:>2} {row['design_id']} {'native reward' if row['is_baseline'] else row['name']} "
            f"[{row['enhancers']}] components: {names}\n"
            f"   goal reached in {reached}/{len(values)} held-out seeds; IQM {_number(row.get('iqm'))} "
            f"{_interval(row.get('iqm_ci'))}; vs native {_interval(row.get('diff_vs_baseline_ci'))}"
        )
    native = next(row["design_id"] for row in board if row["is_baseline"])
    proposed = [row["design_id"] for row in board if not row["is_baseline"]]
    if not proposed:
        print("no proposed design finished")
        return 1
    best = max(proposed, key=lambda design: goals[design][0] / max(goals[design][1], 1))
    (k_best, n_best), (k_native, n_native) = goals[best], goals[native]
    table = [[k_best, n_best - k_best], [k_native, n_native - k_native]]
    p_value = fisher_exact(table, alternative="greater").pvalue
    print(
        f"goal reached in held-out seeds at {args.steps} steps: best design {best} {k_best}/{n_best} "
        f"vs native reward {k_native}/{n_native} (Fisher exact, one-sided p = {p_value:.4f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
