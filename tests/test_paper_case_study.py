"""The paper case study's smoke run: it trains real populations, writes honest raw results, tables and plots."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "paper_case_study.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    # This checkout's package first, whatever the interpreter has installed.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )


# One line per trained cell: ``fixed continuous plain 12.3 s``.
TRAINED_CELL = re.compile(r"^(?:fixed|random) +\S+ +\S+ +[\d.]+ s$", re.MULTILINE)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("case_study")
    return out, _run("--smoke", "--out", str(out), "--img", str(out))


def test_smoke_trains_every_cell(smoke) -> None:
    out, proc = smoke
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((out / "paper_case_study_smoke.json").read_text())
    assert len(TRAINED_CELL.findall(proc.stdout)) == len(data["fixed"]) + len(data["random"]) > 0


def test_smoke_raw_results_are_real_population_runs(smoke) -> None:
    out, _ = smoke
    data = json.loads((out / "paper_case_study_smoke.json").read_text())
    cells = {(c["combo"], c["mode"]): c for c in data["fixed"]}
    assert set(cells) == {(c, m) for c in ("plain", "gan") for m in ("continuous", "hybrid")}
    for cell in cells.values():
        assert cell["seeds"] == [0, 1] and cell["train_time_s"] > 0
        # 42.85 continuous / 42.84 hybrid: the oracle of the paper's scenario in that action space.
        assert cell["oracle"] == pytest.approx({"continuous": 42.85, "hybrid": 42.84}[cell["mode"]], abs=0.01)
        for agent in cell["agents"]:
            assert agent["status"] == "completed"
            assert math.isfinite(agent["fitness"]) and agent["fitness"] <= cell["oracle"] + 1e-6
            assert agent["rate_df"] > 0 and 0 < agent["power_total_mw"] <= 2000
            assert [s for s, _ in agent["curve"]] == [50, 100, 150]
            assert agent["curve"][-1][1] == pytest.approx(agent["fitness"])
        # The seeds are different agents, not one run copied.
        assert cell["agents"][0]["curve"] != cell["agents"][1]["curve"]


def test_smoke_generalisation_uses_heldout_scenarios_and_their_oracles(smoke) -> None:
    out, _ = smoke
    data = json.loads((out / "paper_case_study_smoke.json").read_text())
    assert len(data["random_combos"]) == 2 and set(data["random_combos"]) <= {"plain", "gan"}
    assert {c["combo"] for c in data["random"]} == {*data["random_combos"], "plain"}  # plain: the control
    for cell in data["random"]:
        assert cell["scenario"] == "random" and len(cell["heldout_scenarios"]) == 3
        assert all(seed % 2 == 1 for seed in cell["heldout_scenarios"])  # odd seeds: never trained on
        oracles = cell["heldout_oracles"]
        assert len(set(oracles)) == 3 and all(o > 0 for o in oracles)  # one oracle per scenario
        for agent in cell["agents"]:
            episodes = agent["heldout_fitness"]
            assert len(episodes) == 3 and agent["fitness"] == pytest.approx(sum(episodes) / 3)
            assert all(
                f <= o + 1e-6 for f, o in zip(episodes, oracles, strict=True)
            )  # no policy beats an oracle
            # The fraction is taken scenario by scenario, then averaged.
            fraction = sum(f / o for f, o in zip(episodes, oracles, strict=True)) / 3
            assert agent["oracle_fraction"] == pytest.approx(fraction)


def test_smoke_tables_and_plots(smoke) -> None:
    out, proc = smoke
    text = (out / "paper_case_study_smoke.txt").read_text()
    assert text in proc.stdout
    assert "### continuous (fixed scenario, oracle 42.85)" in text
    assert "### continuous (held-out scenarios)" in text
    assert "fitness vs plain: IQM diff [CI], P(>)" in text
    assert "| GAN helps | continuous | gan vs plain (fitness) |" in text
    assert "| GAN fluctuates | hybrid | gan vs plain (late-curve std) |" in text
    for name in ("paper_case_study_smoke_fixed.png", "paper_case_study_smoke_random.png"):
        png = (out / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 200_000


def test_resume_keeps_finished_cells(smoke, tmp_path: Path) -> None:
    out, _ = smoke
    shutil.copy(out / "paper_case_study_smoke.json", tmp_path)
    before = json.loads((tmp_path / "paper_case_study_smoke.json").read_text())
    proc = _run("--smoke", "--resume", "--out", str(tmp_path), "--img", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert TRAINED_CELL.findall(proc.stdout) == []  # nothing was trained again
    after = json.loads((tmp_path / "paper_case_study_smoke.json").read_text())
    assert after["fixed"] == before["fixed"] and after["random"] == before["random"]
    assert len(after["commands"]) == 2 and after["commands"][1].endswith(f"--img {tmp_path}")


def test_resume_refuses_other_settings(tmp_path: Path) -> None:
    saved = {"seeds": list(range(10)), "steps": 999, "fixed": [], "random": []}
    (tmp_path / "paper_case_study.json").write_text(json.dumps(saved))
    proc = _run("--resume", "--out", str(tmp_path), "--img", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "run with other steps" in proc.stderr and proc.stderr.strip().count("\n") == 0


def _bench_module():
    spec = importlib.util.spec_from_file_location("paper_case_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fluctuation_is_the_late_curve_spread_per_seed() -> None:
    bench = _bench_module()
    cell = {
        "steps": 400,
        "agents": [
            {"curve": [(100, -50.0), (200, 10.0), (300, 20.0), (400, 30.0)]},  # only steps > 200 count
            {"curve": [(100, 5.0), (200, 5.0), (300, 5.0), (400, 5.0)]},
            {"curve": [(100, 1.0), (200, 2.0), (300, 3.0), (400, None)]},  # one late point: no spread
        ],
    }
    spread = bench.fluctuation(cell)
    assert spread[0] == pytest.approx(math.sqrt(50.0)) and spread[1] == 0.0 and math.isnan(spread[2])


def test_best_two_are_ranked_by_oracle_fraction_over_the_modes() -> None:
    bench = _bench_module()

    def cell(combo: str, mode: str, fitness: float, oracle: float) -> dict:
        return {"combo": combo, "mode": mode, "oracle": oracle, "agents": [{"fitness": fitness}] * 3}

    cells = [
        cell("plain", "continuous", 30.0, 40.0),
        cell("plain", "discrete", 30.0, 30.0),  # mean fraction 0.875
        cell("gan", "continuous", 36.0, 40.0),
        cell("gan", "discrete", 24.0, 30.0),  # 0.85
        cell("gdm", "continuous", 39.0, 40.0),  # best, but not measured in both modes
    ]
    assert bench.best_combos(cells, ["continuous", "discrete"]) == ["plain", "gan"]
    assert bench.best_combos(cells, ["continuous"]) == ["gdm", "gan"]


def test_bad_input_is_one_line_and_nonzero(tmp_path: Path) -> None:
    proc = _run("--combos", "plain,diffusion", "--out", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "diffusion" in proc.stderr
    proc = _run("--report-only", "--out", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "cannot read" in proc.stderr
    assert list(tmp_path.iterdir()) == []
