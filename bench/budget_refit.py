"""How well a finished time-budgeted search's plan predicted its final test, from the calibration alone and
from the throughput refitted on the populations the run trained (``search.plan.observed_throughput``).

    python bench/budget_refit.py runs/quickstart

Prints both predictions of the final test the run actually ran, and the seconds it took.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from autogai.search.budget import get_preset
from autogai.search.plan import SearchPlan, _test_seconds, observed_throughput
from autogai.search.records import RunStore
from autogai.search.storage import make_storage


def main(run: Path) -> int:
    plan = SearchPlan.from_dict(json.loads((run / "plan.json").read_text()))
    state = json.loads((run / "state.json").read_text())
    config = json.loads((run / "config.json").read_text())
    budget = plan.apply(get_preset(config["preset"]))
    store = RunStore(make_storage(f"sqlite:///{run / 'optuna.db'}", heartbeat=False), run.name)
    baseline = state["baseline_id"]
    designs = {d for g in state["generations"] for d in g["design_ids"]} | {baseline}
    observed = store.trained_populations(designs, baseline)
    tested: dict[tuple[str, float], tuple[int, str]] = {}
    for design in sorted(designs):
        for t in store.scoring_trials(design, "test"):
            r = t.result
            if t.complete and r.population and r.duration_s:
                tested[(design, r.duration_s)] = (r.population, (r.worker or {}).get("pid"))
    refit = observed_throughput(plan, observed, budget.total_steps)
    final = state.get("final_test") or {"finalists": plan.finalists, "test_seeds": plan.test_seeds}
    assert plan.throughput is not None and refit.throughput is not None
    calibrated_s = _test_seconds(final["finalists"], final["test_seeds"], budget, plan.throughput)
    refitted_s = _test_seconds(final["finalists"], final["test_seeds"], budget, refit.throughput)
    print(
        f"run {run}: final test of {final['finalists']} finalist(s) + baseline on {final['test_seeds']} seeds"
    )
    print(
        f"calibrated a + b*P: {plan.throughput.per_step_fixed_s * 1e3:.2f} ms + {plan.throughput.per_step_per_agent_s * 1e3:.3f} ms x P per step"
    )
    print(
        f"refitted on {len(observed)} populations: {refit.throughput.per_step_fixed_s * 1e3:.2f} ms + {refit.throughput.per_step_per_agent_s * 1e3:.3f} ms x P per step"
    )
    print(
        f"test populations as run: {sorted(tested.values(), key=str)} with durations {sorted(s for _, s in tested)} s"
    )
    print(f"predicted final test: calibration {calibrated_s:.0f} s, refit {refitted_s:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart")))
