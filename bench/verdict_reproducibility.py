"""How repeatable is a search's verdict? N independent quick searches (different seeds, fresh caches and
knowledge-base stores), each under the same wall-clock budget; for each: wall time, whether a design beat
the baseline (Holm-adjusted, on the test seeds), the baseline's and the best design's test IQM, and the
reward structure (the components) of the winner.

    python bench/verdict_reproducibility.py --runs 5 --budget 15m --workers 2
    python bench/verdict_reproducibility.py --runs 4 --budget 15m --pinned   # two at a time, one core each

``--pinned`` runs the searches two at a time, each pinned to its own core (``taskset``) with one worker:
every run is then also a one-core run of the quick preset, and the wall time of each says whether a budget
holds on a single core.

Targets (the issue that asked for it): at least 4 of 5 runs find a winner, the baseline's test IQM ranges
over at most 5 points across runs. The last line is exactly
``verdict reproducibility: W/N runs found a winner; baseline test IQM range R.RR``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def components(run: Path, design_id: str) -> frozenset[str]:
    """The reward components a design logged (its reward's structure)."""
    path = run / "designs" / design_id / "curves.csv"
    if not path.is_file():
        return frozenset()
    with open(path, newline="") as handle:
        header = next(csv.reader(handle), [])
    return frozenset(c.split("/", 1)[1] for c in header if c.startswith("component/"))


def one_run(index: int, args: argparse.Namespace, scratch: Path, core: int | None = None) -> dict[str, Any]:
    run = scratch / f"run-{index}"
    env = dict(os.environ)
    env.update(
        AUTOGAI_CACHE=str(scratch / f"cache-{index}"),  # a fresh knowledge-base store and LLM cache
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    if args.embeddings:
        env["AUTOGAI_EMBEDDINGS"] = args.embeddings
    kb = [sys.executable, "-m", "autogai.cli.main", "kb", "ingest"]
    subprocess.run(kb, env=env, check=True, capture_output=True, text=True)
    pin = ["taskset", "-c", str(core)] if core is not None else []
    command = [
        *pin,
        sys.executable,
        "-m",
        "autogai.cli.main",
        "search",
        "--preset",
        args.preset,
        "--time-budget",
        args.budget,
        "--seed",
        str(args.first_seed + index),
        "--workers",
        str(1 if core is not None else args.workers),
        "--run-dir",
        str(run),
        "-q",
    ]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        return {"index": index, "wall_s": wall, "error": done.stderr.strip().splitlines()[-1:]}
    return {
        "index": index,
        "seed": args.first_seed + index,
        "core": core,
        "wall_s": round(wall, 1),
        **summarize(run, done.stdout),
    }


def summarize(run: Path, stdout: str | None) -> dict[str, Any]:
    """A finished search's verdict, read from its run directory."""
    board = json.loads((run / "leaderboard.json").read_text())
    plan = json.loads((run / "plan.json").read_text())
    rows = board["designs"]
    baseline = next(r for r in rows if r["is_baseline"])
    tested = [r for r in rows if r["score_source"] == "test" and not r["is_baseline"]]
    best = max(tested, key=lambda r: r["iqm"], default=None)
    winners = [r for r in tested if r["beats_baseline"]]
    top = winners[0] if winners else best
    state = json.loads((run / "state.json").read_text())
    return {
        "run": str(run),
        "search_s": state.get("search_seconds"),
        "budget_s": plan["budget_s"],
        "plan": {
            k: plan[k] for k in ("generations", "designs_per_generation", "trials_per_design", "test_seeds")
        },
        "baseline_iqm": baseline["iqm"],
        "baseline_ci": baseline["iqm_ci"],
        "best_id": None if top is None else top["design_id"],
        "best_iqm": None if top is None else top["iqm"],
        "best_diff_ci": None if top is None else top["diff_vs_baseline_ci"],
        "best_p_adjusted": None if top is None else top["p_value_adjusted"],
        "winner": bool(winners),
        "structure": sorted(components(run, top["design_id"])) if top is not None else [],
        "last_lines": (stdout or "").strip().splitlines()[-5:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budget", default="15m")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--embeddings", default=None, help="e.g. hash (faster knowledge base) or local")
    parser.add_argument("--scratch", type=Path, default=None, help="keep the runs here (default: temporary)")
    parser.add_argument(
        "--pinned", action="store_true", help="two runs at a time, one core and one worker each"
    )
    parser.add_argument(
        "--add", type=Path, action="append", default=[], help="a finished run's directory to count as well"
    )
    args = parser.parse_args()
    scratch_root = args.scratch or Path(tempfile.mkdtemp(prefix="autogai-verdicts-"))
    scratch_root.mkdir(parents=True, exist_ok=True)
    print(
        f"# {args.runs} independent searches: --preset {args.preset} --time-budget {args.budget} "
        f"--workers {args.workers}, seeds {args.first_seed}..{args.first_seed + args.runs - 1}, "
        f"fresh caches under {scratch_root}",
        flush=True,
    )
    results = [summarize(Path(run), None) for run in args.add]
    for result in results:
        print(json.dumps(result), flush=True)
    if args.pinned:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            for result in pool.map(lambda i: one_run(i, args, scratch_root, core=i % 2), range(args.runs)):
                results.append(result)
                print(json.dumps(result), flush=True)
    else:
        for index in range(args.runs):
            result = one_run(index, args, scratch_root)
            results.append(result)
            print(json.dumps(result), flush=True)
    ok = [r for r in results if "error" not in r]
    winners = [r for r in ok if r["winner"]]
    baselines = [r["baseline_iqm"] for r in ok if r["baseline_iqm"] is not None]
    best = [r["best_iqm"] for r in ok if r["best_iqm"] is not None]
    structures = [tuple(r["structure"]) for r in winners]
    shared = max((structures.count(s) for s in set(structures)), default=0)
    span = (max(baselines) - min(baselines)) if baselines else float("nan")
    walls = ", ".join(f"{r.get('search_s') or r.get('wall_s') or 0:.0f}s" for r in results)
    print(f"search time per run (state.json): {walls} (budget {args.budget})")
    print(f"baseline test IQM: {', '.join(f'{v:.2f}' for v in baselines)}; range {span:.2f}")
    if best:
        print(
            f"best design's test IQM: {', '.join(f'{v:.2f}' for v in best)}; range {max(best) - min(best):.2f}"
        )
    print(f"winners sharing one reward structure: {shared}/{len(winners)}")
    print(f"failed runs: {len(results) - len(ok)}")
    print(
        f"verdict reproducibility: {len(winners)}/{len(results)} runs found a winner; baseline test IQM range {span:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
