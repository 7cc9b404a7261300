"""The paper's Fig. 4 experiment on the UAV relay task, with seeds and intervals.

Stage 1 (the paper's setting): every enhancer combination of Fig. 4 (plain TD3, GAN, VAE, Transformer, GDM,
GDM-GAN, GDM-GAN-Transformer, GDM-GAN-Transformer-VAE) on each action space, the paper's reward (the task
card's baseline program), the fixed scenario. The seeds of one (combination, action space) are trained as one
population. Per cell: IQM with a 95% bootstrap interval over seeds of the final fitness, of the relay rate and
of the total power, the learning curve (IQM and 95% band at every evaluation) and the training time.

Stage 2 (generalisation): the best two combinations of stage 1, and plain TD3 as the control, trained on the
random scenario distribution and evaluated on held-out scenarios that training never draws, raw and as a
fraction of each scenario's oracle.

Networks are 64x64 and the batch 128 in every cell: the task has a 4-dimensional action and a 106-value
observation, so the default 256x256 / 256 of TD3 buys nothing here but a four times larger update, and the
smaller update is what lets ten seeds of 24 cells run on one core. The fitness is always the task's utility
(never the reward the agents learn from); a deterministic policy on the fixed scenario is one flight, so one
evaluation episode is exact.

Usage::

    python bench/paper_case_study.py --smoke            # < 60 s: 2 seeds, 2 combinations, tiny budget
    python bench/paper_case_study.py                     # the study (about an hour of one core)
    python bench/paper_case_study.py --report-only       # tables and plots again from the saved JSON
    python bench/paper_case_study.py --resume --expensive-modes continuous,discrete,hybrid
                                                         # add cells to a finished study (same settings)

Raw results go to ``--out`` (``paper_case_study.json`` and ``paper_case_study.txt``, the printed tables);
plots to ``--img``. The JSON is rewritten after every cell, so an interrupted study keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autogai.core.statistics import compare, estimate

ROOT = Path(__file__).resolve().parent.parent
COMBOS = (
    "plain",
    "gan",
    "vae",
    "transformer",
    "gdm",
    "gdm+gan",
    "gdm+gan+transformer",
    "gdm+gan+transformer+vae",
)
MODES = ("continuous", "discrete", "hybrid")
METRICS = (("fitness", "fitness"), ("rate_df", "DF rate"), ("power_total_mw", "power mW"))


# ------------------------------------------------------------------------------------------ training
def _config(learning_starts: int):
    from autogai.agents import TD3Config

    return TD3Config(
        net_arch=(64, 64), batch_size=128, learning_starts=learning_starts, device="cpu", torch_threads=1
    )


def _oracle(mode: str) -> float:
    from autogai.envs.uav import oracle_episode_fitness

    return float(oracle_episode_fitness(action_mode=mode))


def _heldout_oracles(mode: str, seeds: Sequence[int]) -> list[float]:
    """The oracle of every held-out scenario (the physical limit each episode is measured against)."""
    from autogai.envs.uav import UAVNearFieldEnv

    env = UAVNearFieldEnv(action_mode=mode, scenario="random")
    oracles = []
    for seed in seeds:
        env.reset(options={"scenario_seed": int(seed)})
        oracles.append(float(env.oracle_fitness()))
    return oracles


def train_cell(
    combo: str,
    mode: str,
    scenario: str,
    *,
    seeds: Sequence[int],
    steps: int,
    eval_every: int,
    eval_episodes: int,
    learning_starts: int,
    heldout: int = 0,
) -> dict[str, Any]:
    """Train one population (one agent per seed) and summarise every agent's final evaluation.

    With ``heldout`` > 0 the agents are evaluated again on that many held-out scenarios after training.
    """
    from autogai.tasks import get_task
    from autogai.training import AgentSpec, evaluation_seed, train

    task = get_task("uav-nearfield")
    env_kwargs = {"action_mode": mode, "scenario": scenario}
    config = _config(learning_starts)
    start = time.monotonic()
    results = train(
        task,
        [AgentSpec(seed=s, td3_config=config) for s in seeds],
        enhancers=combo,
        reward_source=None,  # the card's baseline: the paper's reward
        total_steps=steps,
        env_kwargs=env_kwargs,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
    )
    train_time = time.monotonic() - start
    agents = []
    for seed, result in zip(seeds, results, strict=True):
        final = result.final_evaluation
        row: dict[str, Any] = {
            "seed": seed,
            "status": result.status,
            "reason": result.reason,
            "fitness": None if final is None else _num(final.fitness_mean),
            "rate_df": None if final is None else _num(final.report_metrics.get("rate_df")),
            "power_total_mw": None if final is None else _num(final.report_metrics.get("power_total_mw")),
            "curve": [(int(r["step"]), _num(r["fitness"])) for r in result.curve],
        }
        agents.append(row)

    cell: dict[str, Any] = {
        "combo": combo,
        "mode": mode,
        "scenario": scenario,
        "steps": steps,
        "seeds": list(seeds),
        "train_time_s": train_time,
        "agents": agents,
    }
    if heldout:
        cell.update(_evaluate_heldout(results, task, env_kwargs, heldout, evaluation_seed(seeds[0])))
        for row, evaluation in zip(agents, cell.pop("evaluations"), strict=True):
            row.update(evaluation)
    else:
        cell["oracle"] = _oracle(mode)
    return cell


def _evaluate_heldout(
    results: Sequence[Any], task: Any, env_kwargs: dict[str, Any], n: int, seed: int
) -> dict[str, Any]:
    """Every surviving agent on the same ``n`` held-out scenarios: raw fitness and fraction of each oracle."""
    from autogai.envs.uav import scenario_seeds
    from autogai.training import evaluate_population

    heldout = scenario_seeds("heldout", n)
    oracles = np.array(_heldout_oracles(env_kwargs["action_mode"], heldout))
    population = next((r.agent for r in results if r.agent is not None), None)
    evaluations = (
        evaluate_population(
            population, task, episodes=n, seed=seed, env_kwargs=env_kwargs, scenario_seeds=heldout
        )
        if population is not None
        else []
    )
    rows = []
    for result in results:
        if result.agent is None:
            rows.append(
                {
                    "fitness": None,
                    "oracle_fraction": None,
                    "rate_df": None,
                    "power_total_mw": None,
                    "heldout_fitness": None,
                }
            )
            continue
        evaluation = evaluations[result.population_position]
        fitness = np.array(evaluation.episode_fitness)
        rows.append(
            {
                "fitness": _num(fitness.mean()),
                "oracle_fraction": _num(float(np.mean(fitness / oracles))),
                "rate_df": _num(evaluation.report_metrics.get("rate_df")),
                "power_total_mw": _num(evaluation.report_metrics.get("power_total_mw")),
                "heldout_fitness": [_num(f) for f in fitness],
            }
        )
    return {"heldout_scenarios": heldout, "heldout_oracles": oracles.tolist(), "evaluations": rows}


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------------------------ summaries
def _scores(cell: dict[str, Any], key: str) -> np.ndarray:
    values = [a[key] for a in cell["agents"]]
    return np.array([math.nan if v is None else v for v in values], dtype=float)


def _fmt_estimate(scores: np.ndarray, digits: int) -> str:
    e = estimate(scores)
    if not math.isfinite(e.iqm):
        return "n/a"
    if not math.isfinite(e.low):
        return f"{e.iqm:.{digits}f}"
    return f"{e.iqm:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def _fmt_compare(x: np.ndarray, y: np.ndarray, words: tuple[str, str] = ("better", "worse")) -> str:
    """X against Y; the verdict names a side only when the difference interval excludes 0."""
    c = compare(x, y)
    if not math.isfinite(c.difference):
        return "n/a"
    verdict = words[0] if c.better else words[1] if c.worse else "no clear difference"
    if not math.isfinite(c.difference_low):
        return f"{c.difference:+.2f} ({verdict})"
    return (
        f"{c.difference:+.2f} [{c.difference_low:+.2f}, {c.difference_high:+.2f}], "
        f"P(>) {c.probability_of_improvement:.2f} [{c.probability_low:.2f}, {c.probability_high:.2f}]: "
        f"{verdict}"
    )


def _failures(cell: dict[str, Any]) -> str:
    bad = [a for a in cell["agents"] if a["status"] != "completed"]
    return "" if not bad else f" ({len(bad)} {'/'.join(sorted({a['status'] for a in bad}))})"


def stage_table(cells: Sequence[dict[str, Any]], *, heldout: bool) -> list[str]:
    """One markdown table per action space: every metric's IQM [95% CI] and the comparison with plain."""
    lines: list[str] = []
    for mode in MODES:
        rows = sorted((c for c in cells if c["mode"] == mode), key=lambda c: COMBOS.index(c["combo"]))
        if not rows:
            continue
        baseline = next((c for c in rows if c["combo"] == "plain"), None)
        where = "held-out scenarios" if heldout else f"fixed scenario, oracle {rows[0]['oracle']:.2f}"
        lines += ["", f"### {mode} ({where})", ""]
        head = ["combination", "seeds", "fitness IQM [95% CI]"]
        if heldout:
            head.append("fraction of oracle")
        head += ["DF rate (bit/s/Hz)", "power (mW)", "time (s)", "fitness vs plain: IQM diff [CI], P(>)"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for cell in rows:
            fitness = _scores(cell, "fitness")
            row = [cell["combo"], f"{int(np.isfinite(fitness).sum())}{_failures(cell)}"]
            row.append(_fmt_estimate(fitness, 2))
            if heldout:
                row.append(_fmt_estimate(_scores(cell, "oracle_fraction"), 3))
            row += [
                _fmt_estimate(_scores(cell, "rate_df"), 2),
                _fmt_estimate(_scores(cell, "power_total_mw"), 0),
                f"{cell['train_time_s']:.0f}",
                "-"
                if baseline is None or cell is baseline
                else _fmt_compare(fitness, _scores(baseline, "fitness")),
            ]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def fluctuation(cell: dict[str, Any]) -> np.ndarray:
    """Per seed: the standard deviation of its evaluation fitness over the second half of training (how much
    the greedy policy's score jumps between evaluations once learning has started); NaN without 2 points."""
    values = []
    for agent in cell["agents"]:
        late = [f for s, f in agent["curve"] if f is not None and s > cell["steps"] / 2]
        values.append(float(np.std(late, ddof=1)) if len(late) >= 2 else math.nan)
    return np.array(values)


def claims_table(cells: Sequence[dict[str, Any]]) -> list[str]:
    """The paper's Fig. 4 claims, each against the measurement that tests it (a row per action space)."""
    by = {(c["combo"], c["mode"]): c for c in cells}
    tests: list[tuple[str, str, str, str, bool]] = []  # claim, mode, X, Y, on fluctuation (not fitness)
    for mode in MODES:
        tests.append(("GDM-TD3 better than TD3", mode, "gdm", "plain", False))
        tests += [
            ("GDM-TD3 best of all", mode, "gdm", other, False)
            for other in COMBOS
            if other not in ("gdm", "plain")
        ]
        tests.append(("GAN helps", mode, "gan", "plain", False))
        tests.append(("GAN fluctuates", mode, "gan", "plain", True))
        tests.append(("VAE unstable", mode, "vae", "plain", True))
        tests.append(("VAE vs TD3", mode, "vae", "plain", False))
        tests.append(("Transformer ~ no change", mode, "transformer", "plain", False))
        tests.append(("GDM-GAN slightly better than GDM", mode, "gdm+gan", "gdm", False))
        tests.append(("adding VAE hurts", mode, "gdm+gan+transformer+vae", "gdm+gan+transformer", False))
    lines = [
        "| claim | action space | X vs Y | IQM(X) - IQM(Y) [95% CI], P(X > Y) [95% CI] |",
        "|---|---|---|---|",
    ]
    for claim, mode, x, y, on_fluctuation in tests:
        if (x, mode) not in by or (y, mode) not in by:
            continue
        if on_fluctuation:
            scores = fluctuation(by[(x, mode)]), fluctuation(by[(y, mode)])
            what, words = "late-curve std", ("more", "less")
        else:
            scores = _scores(by[(x, mode)], "fitness"), _scores(by[(y, mode)], "fitness")
            what, words = "fitness", ("better", "worse")
        lines.append(f"| {claim} | {mode} | {x} vs {y} ({what}) | {_fmt_compare(*scores, words=words)} |")
    for mode in MODES:
        if ("gdm", mode) in by and ("plain", mode) in by:
            ratio = by[("gdm", mode)]["train_time_s"] / by[("plain", mode)]["train_time_s"]
            lines.append(f"| GDM costs much more time | {mode} | gdm / plain (wall time) | {ratio:.2f}x |")
    return lines


def best_combos(cells: Sequence[dict[str, Any]], modes: Sequence[str], k: int = 2) -> list[str]:
    """The ``k`` combinations with the highest mean, over ``modes``, of the IQM of the fitness as a fraction
    of the mode's oracle; only combinations measured in every one of ``modes`` compete."""
    scores: dict[str, list[float]] = {}
    for cell in cells:
        if cell["mode"] in modes:
            scores.setdefault(cell["combo"], []).append(
                estimate(_scores(cell, "fitness")).iqm / cell["oracle"]
            )
    ranked = sorted(
        (float(np.mean(v)), combo)
        for combo, v in scores.items()
        if len(v) == len(modes) and np.isfinite(v).all()
    )
    return [combo for _, combo in reversed(ranked)][:k]


# ------------------------------------------------------------------------------------------ plots
def plot_curves(cells: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Learning curves: per action space, every combination's IQM over seeds with its 95% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in MODES if any(c["mode"] == m for c in cells)]
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.7), squeeze=False, sharey=True)
    colours = plt.get_cmap("tab10")
    for ax, mode in zip(axes[0], modes, strict=True):
        for cell in (c for c in cells if c["mode"] == mode):
            steps = sorted({s for a in cell["agents"] for s, _ in a["curve"]})
            iqm, low, high = [], [], []
            for step in steps:
                values = [f for a in cell["agents"] for s, f in a["curve"] if s == step and f is not None]
                e = estimate(values)
                iqm.append(e.iqm)
                low.append(e.low)
                high.append(e.high)
            colour = colours(COMBOS.index(cell["combo"]) % 10)
            ax.plot(steps, iqm, label=cell["combo"], color=colour, linewidth=1.2)
            ax.fill_between(steps, low, high, color=colour, alpha=0.15, linewidth=0)
        if "oracle" in next(c for c in cells if c["mode"] == mode):
            oracle = next(c for c in cells if c["mode"] == mode)["oracle"]
            ax.axhline(oracle, color="black", linestyle="--", linewidth=0.8, label="oracle")
        ax.set_title(mode, fontsize=9)
        ax.set_xlabel("env steps per agent", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("evaluation fitness (utility / slot)", fontsize=8)
    legend: dict[str, Any] = {}  # one legend for all panels: some combinations run on one action space only
    for ax in axes[0]:
        legend.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    fig.legend(
        legend.values(), legend.keys(), fontsize=7, loc="lower center", ncol=len(legend), frameon=False
    )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ driver
def _plan(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(combination, action space) cells of stage 1; ``--expensive-modes`` limits the expensive ones."""
    cheap = [(c, m) for m in args.modes for c in args.combos if c not in args.expensive]
    expensive = [
        (c, m) for m in args.modes for c in args.combos if c in args.expensive and m in args.expensive_modes
    ]
    return cheap + expensive  # the cheap cells first: an interrupted study keeps the most cells


def report(data: dict[str, Any], out: Path, img: Path) -> str:
    stage1, stage2 = data["fixed"], data["random"]
    commands = data.get("commands") or [data["command"]]
    lines = [f"# Paper case study ({data['label']})", "", *(f"command: {c}" for c in commands), ""]
    lines.append(
        f"Stage 1: fixed scenario, {data['steps']} env steps per agent, {len(data['seeds'])} seeds per "
        "population, the paper's reward; final fitness, DF rate and total power of the final policy "
        "(IQM over seeds [95% bootstrap CI]); time = wall time of the whole population."
    )
    lines += stage_table(stage1, heldout=False)
    if stage2:
        lines += [
            "",
            f"Stage 2: random scenarios, {data['random_steps']} env steps per agent, best two of stage 1 "
            f"({', '.join(data['random_combos'])}) and plain TD3 as the control, evaluated on "
            f"{data['heldout']} held-out scenarios "
            "(per agent: mean over the scenarios; fraction = fitness / that scenario's oracle).",
        ]
        lines += stage_table(stage2, heldout=True)
    if stage1:
        lines += [
            "",
            "The paper's Fig. 4 claims against stage 1 (late-curve std: per seed, the standard deviation of "
            "the evaluation fitness over the second half of training):",
            "",
        ]
        lines += claims_table(stage1)
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{data['label']}.txt").write_text(text)
    if stage1:
        plot_curves(stage1, img / f"{data['label']}_fixed.png", "fixed scenario, paper's reward")
    if stage2:
        plot_curves(
            stage2, img / f"{data['label']}_random.png", "random scenarios (curves: training scenarios)"
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny budget, 2 seeds, 2 combinations")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=3000, help="env steps per agent, fixed scenario")
    parser.add_argument("--random-steps", type=int, default=3000, help="env steps per agent, random")
    parser.add_argument("--learning-starts", type=int, default=500)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--heldout", type=int, default=20, help="held-out scenarios of stage 2")
    parser.add_argument("--combos", default=",".join(COMBOS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--expensive",
        default="transformer,gdm+gan+transformer,gdm+gan+transformer+vae",
        help="combinations run only on --expensive-modes",
    )
    parser.add_argument("--expensive-modes", default="continuous")
    parser.add_argument("--random-modes", default="continuous")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--img", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--report-only", action="store_true", help="tables and plots from the saved JSON")
    parser.add_argument(
        "--resume", action="store_true", help="keep the cells of the saved JSON and run only the missing ones"
    )
    args = parser.parse_args(argv)

    if args.smoke:
        args.seeds, args.steps, args.random_steps = 2, 150, 150
        args.learning_starts, args.eval_every, args.heldout = 50, 50, 3
        args.combos, args.modes, args.random_modes = "plain,gan", "continuous,hybrid", "continuous"
    label = "paper_case_study_smoke" if args.smoke else "paper_case_study"
    path = args.out / f"{label}.json"
    if args.report_only:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"error: cannot read {path}: {exc}", file=sys.stderr)
            return 2
        print(report(data, args.out, args.img))
        return 0

    for name in ("combos", "modes", "expensive", "expensive_modes", "random_modes"):
        setattr(args, name, [v for v in getattr(args, name).split(",") if v])
    unknown = [c for c in args.combos + args.expensive if c not in COMBOS]
    unknown += [m for m in args.modes + args.expensive_modes + args.random_modes if m not in MODES]
    if unknown:
        print(
            f"error: unknown combination or action space {unknown}; valid: {COMBOS}, {MODES}", file=sys.stderr
        )
        return 2

    import torch

    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    command = "python bench/paper_case_study.py " + " ".join(sys.argv[1:] if argv is None else argv)
    data: dict[str, Any] = {
        "label": label,
        "commands": [command.strip()],
        "seeds": seeds,
        "steps": args.steps,
        "random_steps": args.random_steps,
        "learning_starts": args.learning_starts,
        "eval_every": args.eval_every,
        "heldout": args.heldout,
        "net_arch": [64, 64],
        "batch_size": 128,
        "fixed": [],
        "random": [],
        "random_combos": [],
    }
    if args.resume and path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"error: cannot resume from {path}: {exc}", file=sys.stderr)
            return 2
        settings = ("seeds", "steps", "random_steps", "learning_starts", "eval_every", "heldout")
        differ = [k for k in settings if saved.get(k) != data[k]]
        if differ:
            print(
                f"error: cannot resume from {path}: it was run with other {', '.join(differ)}",
                file=sys.stderr,
            )
            return 2
        saved["commands"] = [*saved.get("commands", [saved.pop("command", "").strip()]), command.strip()]
        data = saved

    def save() -> None:
        args.out.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)

    common = {"seeds": seeds, "eval_every": args.eval_every, "learning_starts": args.learning_starts}
    done = {(c["combo"], c["mode"]) for c in data["fixed"]}
    for combo, mode in (cell for cell in _plan(args) if cell not in done):
        cell = train_cell(combo, mode, "fixed", steps=args.steps, eval_episodes=1, **common)
        data["fixed"].append(cell)
        save()
        print(f"fixed {mode:10s} {combo:24s} {cell['train_time_s']:7.1f} s", flush=True)

    data["random_combos"] = best_combos(data["fixed"], args.random_modes)
    trained = list(dict.fromkeys([*data["random_combos"], "plain"]))  # plain TD3 as the control
    data["random"] = [c for c in data["random"] if c["combo"] in trained]
    done = {(c["combo"], c["mode"]) for c in data["random"]}
    for mode in args.random_modes:
        for combo in (c for c in trained if (c, mode) not in done):
            cell = train_cell(
                combo,
                mode,
                "random",
                steps=args.random_steps,
                eval_episodes=3,
                heldout=args.heldout,
                **common,
            )
            data["random"].append(cell)
            save()
            print(f"random {mode:10s} {combo:24s} {cell['train_time_s']:7.1f} s", flush=True)
    save()  # also when resuming found nothing to run: the command is on record
    print(report(data, args.out, args.img))
    return 0


if __name__ == "__main__":
    sys.exit(main())
