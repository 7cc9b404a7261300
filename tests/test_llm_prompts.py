"""Prompt templates: every shipped template declares its variables and renders with the real task cards."""

from __future__ import annotations

import re

import pytest

from autogai.core.errors import ConfigError
from autogai.core.paths import prompts_dir
from autogai.rag.prompts import TEMPLATE_NAMES, load_template, parse_template, render_all_for_task
from autogai.tasks.registry import get_task


def test_every_shipped_template_is_listed_and_declares_its_variables() -> None:
    shipped = sorted(p.stem for p in prompts_dir().glob("*.md"))
    assert shipped == sorted(TEMPLATE_NAMES)
    for name in TEMPLATE_NAMES:
        template = load_template(name)  # raises if header and body disagree
        assert template.name == name
        for variable in template.variables:
            assert f"${variable}" in template.body or f"${{{variable}}}" in template.body


@pytest.mark.parametrize("task_id", ["uav-nearfield", "pendulum"])
def test_every_template_renders_with_a_real_task_card(task_id: str) -> None:
    card = get_task(task_id)
    rendered = render_all_for_task(card)
    assert set(rendered) == set(TEMPLATE_NAMES)
    for name, text in rendered.items():
        assert not re.search(r"\$[A-Za-z_{]", text), f"unfilled placeholder in {name}"
        assert "<!--" not in text, f"header comment leaked into {name}"
    assert card.description.strip()[:60] in rendered["propose"]
    assert card.metrics_table() in rendered["propose"]
    assert card.baseline_reward.strip().splitlines()[0] in rendered["propose"]
    assert "gdm+gan" in rendered["enhancer_menu"]
    assert "fitness score" in rendered["reflect"]  # DesignFeedback.to_text() went in
    assert "example reason" in rendered["repair"]


def test_missing_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="task_title"):
        load_template("propose").render(task_id="x")


def test_header_and_body_must_agree() -> None:
    with pytest.raises(ConfigError, match="declared but not used"):
        parse_template("t", "<!-- t\nvariables: a, b\n-->\nonly $a here\n")
    with pytest.raises(ConfigError, match="used but not declared"):
        parse_template("t", "<!-- t\nvariables: a\n-->\n$a and $c\n")
    with pytest.raises(ConfigError, match="no header"):
        parse_template("t", "no header $a")
    assert parse_template("t", "<!-- t\nvariables: (none)\n-->\ncosts $$5\n").render() == "costs $5\n"
