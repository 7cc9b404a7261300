"""Trials per hour of a search with 1 vs 2 local workers (Optuna storage, SQLite WAL, one run dir each).

Runs identical small searches side by side (1 worker, 2 workers, 1, 2, ...) and reports the median of the
per-pair throughput ratios; throughput is trials over the span from the first trial's start to the last
trial's end (the search's fixed start-up is left out). Target (BENCHMARKS.md): >= 1.8x on 2 cores. The last line is the headline.

    .venv/bin/python bench/parallel.py --pairs 2 --trials 6 --steps 1500
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path


def one_search(workers: int, args: argparse.Namespace, root: Path, tag: str) -> tuple[float, int]:
    from autogai.pipeline.loop import SearchOptions, run_search

    options = SearchOptions(
        task=args.task,
        preset="smoke",
        generations=1,
        designs=1,
        trials=args.trials,
        seeds=1,
        workers=workers,
        run_dir=root / f"{tag}-w{workers}",
        embeddings=args.embeddings,
        budget_overrides={
            "total_steps": args.steps,
            "eval_every": args.steps // 3,
            "learning_starts": min(200, args.steps // 5),
            "halving_rungs": 0,
            "pruner": "none",  # pruning would make trials unequal between the two arms
            "net_arch_choices": ((64, 64),),
            "batch_size_choices": (64,),
        },
    )
    summary = run_search(options)
    # Throughput while trials run: first trial start -> last trial end, from the storage's timestamps
    # (the search's fixed start-up cost, imports and proposing, is the same for both arms).
    from autogai.search.storage import make_storage
    from autogai.search.studies import load_study, run_study_names

    storage = make_storage(f"sqlite:///{summary.run_dir / 'optuna.db'}", heartbeat=False)
    starts, ends, trials = [], [], 0
    for name in run_study_names(storage, summary.run_name):
        for t in load_study(storage, name).get_trials(deepcopy=False):
            if t.datetime_start and t.datetime_complete:
                starts.append(t.datetime_start)
                ends.append(t.datetime_complete)
                trials += 1
    span = (max(ends) - min(starts)).total_seconds()
    return span, trials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="uav-nearfield")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument(
        "--trials", type=int, default=6, help="tuning trials per search (plus the baseline's)"
    )
    parser.add_argument("--steps", type=int, default=1500, help="training steps per trial")
    parser.add_argument("--embeddings", default="hash")
    args = parser.parse_args(argv)
    ratios = []
    with tempfile.TemporaryDirectory(prefix="autogai-bench-parallel-") as tmp:
        root = Path(tmp)
        for pair in range(args.pairs):
            w1, n1 = one_search(1, args, root, f"p{pair}")
            w2, n2 = one_search(2, args, root, f"p{pair}")
            t1, t2 = 3600 * n1 / w1, 3600 * n2 / w2
            ratios.append(t2 / t1)
            print(
                f"pair {pair}: 1 worker {n1} trials in {w1:.1f} s ({t1:.0f}/h); "
                f"2 workers {n2} trials in {w2:.1f} s ({t2:.0f}/h); ratio {t2 / t1:.2f}x",
                flush=True,
            )
    print(
        f"parallel: 2 workers vs 1 = {statistics.median(ratios):.2f}x trials/hour (median of {len(ratios)} pairs, target >= 1.8x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
