"""Extracting reward programs from free-form LLM replies."""

from __future__ import annotations

import json

import pytest

from autogai.core.errors import ProposalError
from autogai.rag.replies import extract_reward_program, extract_reward_programs
from autogai.rewards import RewardProgram

FENCE = "```"
PARAMS = "PARAMS = {'w': {'default': 1.0, 'low': 0.1, 'high': 2.0}}"
FUNCTION = "def compute_reward(m, p):\n    r = p['w'] * m.x\n    return r, {'r': r}"


def _valid(code: str) -> RewardProgram:
    return RewardProgram.from_source(code)


def test_single_fenced_block_with_prose_and_benign_imports():
    text = f"Here is the design.\n\n{FENCE}python\nimport numpy as np\nimport math\n{PARAMS}\n\n{FUNCTION}\n{FENCE}\nIt rewards x."
    code = extract_reward_program(text)
    assert "import" not in code
    assert _valid(code).params["w"].default == 1.0


def test_params_and_function_in_separate_blocks_are_merged():
    text = (
        f"Parameters:\n{FENCE}python\n{PARAMS}\n{FENCE}\nand the function:\n{FENCE}py\n{FUNCTION}\n{FENCE}\n"
    )
    code = extract_reward_program(text)
    program = _valid(code)
    assert list(program.params) == ["w"]


def test_helper_block_is_merged():
    helper = "def scale(v):\n    return 2.0 * v"
    function = "def compute_reward(m, p):\n    return scale(m.x), {'x': scale(m.x)}"
    text = f"{FENCE}python\n{helper}\n{FENCE}\n{FENCE}python\n{function}\n{FENCE}"
    assert "def scale" in extract_reward_program(text)


def test_several_candidates_statically_valid_first():
    broken = "def compute_reward(m, p):\n    import os\n    return 0.0, {}"
    good = "def compute_reward(m, p):\n    return m.x, {'x': m.x}"
    text = f"First try:\n{FENCE}python\n{broken}\n{FENCE}\nBetter:\n{FENCE}python\n{good}\n{FENCE}"
    candidates = extract_reward_programs(text)
    assert len(candidates) == 2
    assert candidates[0].strip() == good
    assert "import os" in candidates[1]


def test_code_inside_think_is_ignored():
    draft = "def compute_reward(m, p):\n    return 0.0, {'draft': 0.0}"
    final = "def compute_reward(m, p):\n    return m.x, {'final': m.x}"
    text = f"<think>Let me draft.\n{FENCE}python\n{draft}\n{FENCE}\nHmm.</think>\n\n{FENCE}python\n{final}\n{FENCE}"
    assert extract_reward_programs(text) == [final + "\n"]
    # A reply whose opening tag was in the prompt: only the closing tag appears.
    assert extract_reward_programs(f"draft {draft}\n</think>\n{FENCE}python\n{final}\n{FENCE}") == [
        final + "\n"
    ]
    # Only thinking, no answer: nothing.
    assert extract_reward_programs(f"<think>{FENCE}python\n{draft}\n{FENCE}</think>") == []


def test_json_with_code_fields():
    reply = json.dumps({"reward_code": FUNCTION, "rationale": "x is good"})
    assert extract_reward_program(reply).strip() == FUNCTION
    designs = {
        "designs": [
            {"reward": FUNCTION, "enhancers": "gdm"},
            {"reward": PARAMS + "\n\n" + FUNCTION.replace("'r'", "'s'"), "enhancers": "gan"},
        ]
    }
    fenced_json = f"Sure:\n{FENCE}json\n{json.dumps(designs)}\n{FENCE}"
    candidates = extract_reward_programs(fenced_json)
    assert len(candidates) == 2
    # The second design is statically valid (the first reads p['w'] without PARAMS), so it comes first.
    assert "'s'" in candidates[0] and "PARAMS" in candidates[0]
    assert "'r'" in candidates[1]


def test_unfenced_code_in_prose():
    text = (
        "Sure! The reward is below.\n\n"
        "PARAMS = {\n    'w': {'default': 1.0, 'low': 0.1, 'high': 2.0},\n}\n\n"
        "def helper(v):\n    return v * 2\n\n"
        "def compute_reward(m, p):\n    r = helper(m.x) * p['w']\n    return r, {'r': r}\n\n"
        "This doubles x. Note: it is simple.\n"
    )
    code = extract_reward_program(text)
    program = _valid(code)
    assert "def helper" in code and list(program.params) == ["w"]
    assert "Note" not in code


def test_no_program_raises_proposal_error():
    with pytest.raises(ProposalError, match="no reward program"):
        extract_reward_program("I could not come up with anything.")
    assert extract_reward_programs("") == []
