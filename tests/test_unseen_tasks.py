"""Tasks autogai has never seen: cards written outside the package describe each metric's intent, the
offline proposer binds the knowledge base's task-agnostic reward terms to them, and the LLM prompt shows
the same intents."""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest

from autogai.cli.main import main
from autogai.core.errors import ConfigError
from autogai.rag.documents import load_documents
from autogai.rag.markdown import KnowledgeDocumentError
from autogai.rag.offline_proposer import no_intents_note
from autogai.rag.program_editing import parse_program
from autogai.rag.prompts import render_all_for_task
from autogai.rag.reward_terms import parse_reward_term
from autogai.tasks import MetricSpec, get_task

ROOT = Path(__file__).resolve().parents[1]
MOUNTAIN_CAR = str(ROOT / "examples" / "tasks" / "mountain_car.py")
CARTPOLE = str(ROOT / "examples" / "tasks" / "cartpole.py")
KB_IDS = {path.stem for path in (ROOT / "knowledge_base").glob("*.md")}


# --- metric intents on the card ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"intent": "maximize"}, "intent 'maximize' is not one of"),
        ({"intent": "target"}, "needs a target value"),
        ({"intent": "target", "target": 2.0, "bounds": (0.0, 1.0)}, "outside its bounds"),
        ({"bounds": (1.0, 1.0)}, "low < high"),
        ({"obs_index": -1}, "non-negative"),
    ],
)
def test_metric_intents_are_checked(kwargs: dict, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        MetricSpec("x", "m", "a metric", **kwargs)


def test_metric_table_and_llm_prompt_show_the_intents() -> None:
    card = get_task(MOUNTAIN_CAR)
    table = card.metrics_table()
    assert "| position | m | car position after the step; the goal is at 0.45 |" in table
    assert "target 0.45; bounds [-1.2, 0.6]; obs[0]" in table
    assert "| force | 1 | applied force | minimise; bounds [-1, 1] |" in table
    rendered = render_all_for_task(get_task(CARTPOLE))
    prompt = rendered["propose"]
    assert "The intent column says what the task wants" in rendered["reflect"]
    assert (
        "failure flag (1 = failed)" in prompt
        and "| cart_velocity | m/s | cart velocity after the step | obs[1] |" in prompt
    )


# --- task-agnostic reward terms ----------------------------------------------------------------------


def _generic_terms() -> dict[str, object]:
    docs, errors = load_documents(ROOT / "knowledge_base")
    assert errors == []
    return {t.name: t for d in docs if d.id.startswith("term-generic-") for t in d.reward_terms}


def test_generic_terms_bind_only_to_metrics_that_offer_what_they_read() -> None:
    terms = _generic_terms()
    bounded = MetricSpec("x", "m", "", intent="target", target=0.45, bounds=(-1.2, 0.6), obs_index=0)
    unbounded = MetricSpec("y", "m", "", intent="target", target=0.0)
    potential = terms["potential"].bind(bounded)
    assert potential is not None and potential.requires == ["x"] and potential.bound_to == "x"
    assert list(potential.params) == ["potential_x_weight"]
    assert terms["potential"].bind(unbounded) is None  # no observation index, no bounds
    assert terms["distance"].bind(unbounded) is None  # no bounds to normalise by
    assert terms["failure"].bind(bounded) is None  # another intent
    # the bound expression is the potential difference gamma * phi(s') - phi(s), phi = -|x - 0.45| / 1.8
    expression = potential.expression.replace('p["potential_x_weight"]', "1.0")
    value = eval(expression, {"abs": abs}, {"m": _Metrics(obs=[0.0], next_obs=[0.18])})
    assert value == pytest.approx((0.99 * -abs(0.18 - 0.45) + abs(0.0 - 0.45)) / 1.8)


class _Metrics:
    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)


def test_momentum_shaping_pays_for_speed_gained_and_telescopes() -> None:
    terms = _generic_terms()
    velocity = MetricSpec("v", "m/step", "", intent="momentum", bounds=(-0.07, 0.07), obs_index=1)
    momentum = terms["momentum"].bind(velocity)
    assert momentum is not None and momentum.role == "shaping" and momentum.bound_to == "v"
    assert terms["momentum"].bind(MetricSpec("v", "m/step", "", intent="momentum")) is None  # no scale
    # without an observation index only the (non-potential) speed bonus applies
    bonus = terms["speed_bonus"].bind(MetricSpec("v", "m/step", "", intent="momentum", bounds=(-2.0, 1.0)))
    assert bonus is not None and "abs(m.v) / 2" in bonus.expression
    expression = momentum.expression.replace('p["momentum_v_weight"]', "1.0")

    def shaping(before: float, after: float) -> float:
        return eval(expression, {"abs": abs}, {"m": _Metrics(obs=[0.0, before], next_obs=[0.0, after])})

    # speeding up in either direction pays, slowing down costs
    assert shaping(0.0, 0.035) == pytest.approx(0.99 * 0.25)
    assert shaping(0.0, -0.035) == pytest.approx(0.99 * 0.25)
    assert shaping(0.07, 0.0) == pytest.approx(-1.0)
    # potential-based: over a trajectory the discounted sum is gamma^T phi(s_T) - phi(s_0), whatever the path
    path = [0.0, 0.02, -0.05, 0.06, 0.01, 0.07]
    total = sum(0.99**t * shaping(a, b) for t, (a, b) in enumerate(itertools.pairwise(path)))
    assert total == pytest.approx(0.99 ** (len(path) - 1) * 1.0 - 0.0)


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        ("expression: -p['w'] * m.$metric * $width", "unknown placeholder \\$width"),
        ("expression: -p['w'] * m.$metric * m.speed", "may read only m.\\$metric, not m.speed"),
        ("expression: -p['w'] * 2.0", "must read its metric"),
        ("expression: -p['w'] * m.$metric\nrequires: [speed]", "takes no 'requires'"),
        ("expression: -p['w'] * m.$metric\nintent: sometimes", "intent 'sometimes' is not valid"),
    ],
)
def test_malformed_generic_terms_are_rejected_with_the_reason(block: str, reason: str) -> None:
    text = "name: cost\nrole: penalty\nparams:\n  w: {default: 1.0, low: 0.1, high: 2.0}\n" + block
    if "intent:" not in block:
        text += "\nintent: minimise"
    with pytest.raises(KnowledgeDocumentError, match=reason):
        parse_reward_term(text, doc_id="term-test", doc_applies_to=["any"], number=1)


# --- the offline proposer on cards it has never seen -------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.mark.parametrize(
    "task", [MOUNTAIN_CAR, "pendulum", CARTPOLE], ids=["mountain-car", "pendulum", "cartpole"]
)
def test_propose_without_an_llm_goes_beyond_the_baseline_with_traced_components(
    task: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = ["propose", "--task", task, "-n", "3", "--run-dir", str(run), "--embeddings", "hash"]
    code = main([*args, "--store", str(store)])
    out = capsys.readouterr().out
    assert code == 0, out
    card = get_task(task)
    baseline = {c.name for c in parse_program(card.baseline_reward).components}
    designs = [json.loads(p.read_text()) for p in sorted(run.glob("designs/*/design.json"))]
    assert len(designs) == 3 and all(d["status"] == "proposed" and d["validation"]["ok"] for d in designs)
    beyond = 0
    for design in designs:
        components = parse_program(design["reward_source"]).components
        cited = {source.split("#")[0] for source in design["sources"]}
        for component in components:
            # every component names the knowledge-base document it came from, and the design cites it
            match = re.search(
                rf"{re.escape(component.name)} = .*?\((\w+), from ([\w-]+)\)", design["rationale"]
            )
            assert match is not None, (component.name, design["rationale"])
            assert match.group(2) in KB_IDS and match.group(2) in cited
        beyond += bool({c.name for c in components} - baseline)
    # cards without task-specific knowledge get every design from the generic terms; on Pendulum a
    # composition that only rebuilds the baseline comes after those that add to it
    assert beyond == 3, [d["name"] for d in designs]


def test_mountain_car_designs_start_from_the_fitness_and_shape_position_and_momentum_together(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = get_task(MOUNTAIN_CAR)
    assert card.fitness_metric == "env_reward" and get_task("uav-nearfield").fitness_metric is None
    run = tmp_path / "run"
    args = ["propose", "--task", MOUNTAIN_CAR, "-n", "2", "--run-dir", str(run), "--embeddings", "hash"]
    assert main([*args, "--store", str(store)]) == 0, capsys.readouterr().out
    designs = [json.loads(p.read_text()) for p in sorted(run.glob("designs/*/design.json"))]
    components = [{c.name for c in parse_program(d["reward_source"]).components} for d in designs]
    # the fitness is the native return, so the objective reading it comes before the goal flag's
    assert all("gain_env_reward" in names for names in components), components
    # the card's two shaping intents (a target and a momentum) are offered together in one design
    shaped = [d for d, names in zip(designs, components, strict=True) if "momentum_velocity" in names]
    assert shaped and "potential_position" in {
        c.name for c in parse_program(shaped[0]["reward_source"]).components
    }
    assert "term-generic-momentum-shaping" in {s.split("#")[0] for s in shaped[0]["sources"]}


def test_a_card_without_intents_is_told_in_one_line_what_the_offline_proposer_cannot_compose(
    store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Intents are optional: the mountain car's card with every intent removed is still a valid card.
    card_file = tmp_path / "plain_mountain_car.py"
    card_file.write_text(
        "import dataclasses\n"
        "from autogai.tasks import get_task\n"
        f"_CARD = get_task({MOUNTAIN_CAR!r})\n"
        "TASK = dataclasses.replace(\n"
        "    _CARD,\n"
        "    id='plain-mountain-car',\n"
        "    metrics=tuple(dataclasses.replace(m, intent=None, target=None) for m in _CARD.metrics),\n"
        ")\n"
    )
    run = tmp_path / "run"
    args = ["propose", "--task", str(card_file), "-n", "2", "--run-dir", str(run), "--embeddings", "hash"]
    with caplog.at_level(logging.WARNING, logger="autogai.rag.offline_proposer"):
        assert main([*args, "--store", str(store)]) == 0, capsys.readouterr().out
    notes = [r.getMessage() for r in caplog.records if "declares no metric intents" in r.getMessage()]
    assert len(notes) == 1 and "\n" not in notes[0], notes
    assert "task card plain-mountain-car declares no metric intents" in notes[0]
    assert "it proposes only the baseline reward (its weights varied)" in notes[0]
    assert "cannot compose rewards from the knowledge base's generic terms" in notes[0]
    assert 'docs/task_cards.md ("Metrics and their intents")' in notes[0]
    assert "## Metrics and their intents" in (ROOT / "docs" / "task_cards.md").read_text()
    # and the line is true: every design keeps exactly the baseline's components
    baseline = {c.name for c in parse_program(get_task(str(card_file)).baseline_reward).components}
    designs = [json.loads(p.read_text()) for p in sorted(run.glob("designs/*/design.json"))]
    assert designs and all(
        {c.name for c in parse_program(d["reward_source"]).components} == baseline for d in designs
    )
    # a card that declares intents gets no such line
    assert no_intents_note(get_task(MOUNTAIN_CAR), []) is None


def test_cartpole_card_fits_its_discrete_env() -> None:
    card = get_task(CARTPOLE)
    env = card.make_env()
    assert env.action_space.__class__.__name__ == "Discrete"
    obs, _ = env.reset(seed=3)
    terminated = False
    rng = np.random.default_rng(0)
    while not terminated:
        action = int(rng.integers(2))
        next_obs, reward, terminated, _, info = env.step(action)
        metrics = card.metrics_fn(obs, action, reward, next_obs, info)
        assert set(metrics) == set(card.metric_names)
        assert metrics["fell"] == float(terminated)  # the failure flag is CartPole's own termination test
        assert card.fitness_fn(metrics, reward) == 1.0
        obs = next_obs
    assert math.isclose(card.metrics[2].bounds[1], 0.20943951, rel_tol=1e-7)


# --- hostile task cards: one line, exit 1, nothing written -----------------------------------------------

_CARD = """
from autogai.tasks import TaskCard, MetricSpec, native_fitness, NATIVE_REWARD_BASELINE
TASK = TaskCard(id="hostile", title="t", description="d", env_id={env_id!r}, env_kwargs={env_kwargs!r},
    metrics=(MetricSpec("env_reward", "r", "native", intent="maximise"), MetricSpec("speed", "r", "x")),
    fitness_description="f", baseline_reward=NATIVE_REWARD_BASELINE,
    metrics_fn={metrics_fn}, fitness_fn={fitness_fn})
"""
_GOOD = {
    "env_id": "Pendulum-v1",
    "env_kwargs": {},
    "metrics_fn": "lambda o, a, r, n, i: {'env_reward': r, 'speed': 0.0}",
    "fitness_fn": "native_fitness",
}


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        ('raise SystemExit("\\x1b[2Jall clear")', r"cannot load task file .*SystemExit: \\x1b\[2Jall clear"),
        ("import no_such_module_here", "cannot load task file .*ModuleNotFoundError"),
        (_CARD.format(**{**_GOOD, "env_id": "NoSuchEnv-v9"}), "cannot make env 'NoSuchEnv-v9'"),
        (_CARD.format(**{**_GOOD, "env_kwargs": {"nonsense": 3}}), "cannot make env .*TypeError"),
        (_CARD.format(**{**_GOOD, "metrics_fn": "lambda o, a, r, n, i: 1 / 0"}), "metrics_fn raised ZeroDiv"),
        (_CARD.format(**{**_GOOD, "metrics_fn": "lambda o, a, r, n, i: [r]"}), "returned list, not a dict"),
        (
            _CARD.format(**{**_GOOD, "metrics_fn": "lambda o, a, r, n, i: {'env_reward': r}"}),
            r"no value for metric\(s\) \['speed'\]",
        ),
        (
            _CARD.format(**{**_GOOD, "fitness_fn": "lambda m, r: '\\x1b[31mred'"}),
            r"fitness_fn raised ValueError: .*\\x1b\[31mred",
        ),
    ],
    ids=[
        "exits",
        "imports",
        "env-id",
        "env-kwargs",
        "metrics-raise",
        "metrics-list",
        "metric-missing",
        "fitness",
    ],
)
@pytest.mark.parametrize("command", ["propose", "train", "search"])
def test_a_broken_task_card_is_one_line_and_writes_nothing(
    card: str, reason: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hostile_card.py"
    path.write_text(card)
    run = tmp_path / "run"
    args = {
        "propose": ["propose", "-n", "1", "--embeddings", "hash"],
        "train": ["train", "--steps", "300", "--no-progress", "--eval-every", "0"],
        "search": ["search", "--preset", "smoke", "--embeddings", "hash", "-q"],
    }[command]
    code = main([*args, "--task", str(path), "--run-dir", str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert re.search(reason, err[0]) and "\x1b" not in err[0], err[0]
    assert not run.exists()


@pytest.mark.parametrize(
    ("task", "space", "reason"),
    [
        ("pendulum", "discrete", "task pendulum has a single action space; drop --action-space"),
        (
            "uav-nearfield",
            "hyb",
            "--action-space 'hyb' is not supported by task uav-nearfield; choose one of",
        ),
    ],
)
@pytest.mark.parametrize("command", ["propose", "train", "search"])
def test_an_action_space_the_card_lacks_is_the_same_line_in_every_command(
    task: str, space: str, reason: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    code = main([command, "--task", task, "--action-space", space, "--run-dir", str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith(f"autogai: error: {reason}"), err
    assert not run.exists()
