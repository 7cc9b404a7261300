"""Find the reward program in a free-form LLM reply.

Replies come as a fenced ```python block, several blocks (``PARAMS`` in one, the function in another),
prose around unfenced code, ``<think>...</think>`` reasoning before the answer (DeepSeek-R1, Qwen3; code in
there is a draft and is ignored), or JSON with a code field (``{"reward_code": "..."}``,
``{"designs": [{"reward": "..."}]}``). :func:`extract_reward_programs` returns every candidate, best first
(candidates that pass the static checks before those that do not, then in reply order);
:func:`extract_reward_program` returns the best or raises :class:`ProposalError`.

Two harmless lines LLMs add out of habit, ``import numpy as np`` and ``import math``, are removed (the
sandbox supplies both); any other import stays and is rejected by validation.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
import textwrap
from typing import Any

from autogai.core.errors import ProposalError, RewardRejectedError

_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(
    r"(?P<fence>```|~~~)[ \t]*(?P<lang>[\w+.-]*)[^\n]*\n(?P<body>.*?)(?:(?P=fence)|\Z)", re.DOTALL
)
_BENIGN_IMPORT = re.compile(
    r"^[ \t]*(import numpy as np|import math|import numpy)[ \t]*(#.*)?$", re.MULTILINE
)
_CODE_KEYS = ("reward_code", "reward_program", "reward_source", "reward", "code", "program", "source")
_DEFINES_REWARD = re.compile(r"^def compute_reward\s*\(", re.MULTILINE)
_PYTHON_LANGS = ("", "python", "py", "python3", "python3.11", "py3")


def _strip_thinking(text: str) -> str:
    text = _THINK.sub("", text)
    # An unopened closing tag (the opening one was in the prompt template) ends a reasoning preamble;
    # an unclosed opening tag means everything after it is reasoning.
    for tag in ("think", "thinking", "reasoning"):
        closing = f"</{tag}>"
        index = text.lower().rfind(closing)
        if index >= 0:
            text = text[index + len(closing) :]
        opening = f"<{tag}>"
        index = text.lower().find(opening)
        if index >= 0:
            text = text[:index]
    return text


def _normalise(code: str) -> str:
    code = textwrap.dedent(code.replace("\r\n", "\n")).strip("\n")
    code = _BENIGN_IMPORT.sub("", code)
    return code.strip("\n") + "\n"


def _json_candidates(text: str) -> list[str]:
    documents: list[Any] = []
    stripped = text.strip()
    for attempt in (stripped, *[m.group("body") for m in _FENCE.finditer(text) if m.group("lang") == "json"]):
        try:
            documents.append(json.loads(attempt))
        except ValueError:
            continue
    if not documents:
        first, last = stripped.find("{"), stripped.rfind("}")
        if 0 <= first < last:
            with contextlib.suppress(ValueError):
                documents.append(json.loads(stripped[first : last + 1]))
    found: list[str] = []
    for document in documents:
        _collect_code(document, found)
    return found


def _collect_code(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        preferred = [k for k in _CODE_KEYS if k in node] + [k for k in node if k not in _CODE_KEYS]
        for key in preferred:
            value = node[key]
            if isinstance(value, str) and "def compute_reward" in value:
                code = value
                fenced = list(_FENCE.finditer(code))
                if fenced:
                    code = "\n".join(m.group("body") for m in fenced)
                if code not in found:
                    found.append(code)
            else:
                _collect_code(value, found)
    elif isinstance(node, list):
        for item in node:
            _collect_code(item, found)


def _top_level_definitions(code: str) -> tuple[set[str], set[str]] | None:
    """(names defined at top level, names loaded) of ``code``, or None if it does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return None
    defined: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef):
            defined.add(statement.name)
        elif isinstance(statement, ast.Assign):
            defined.update(t.id for t in statement.targets if isinstance(t, ast.Name))
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return defined, loaded


def _fenced_candidates(text: str) -> list[str]:
    blocks = [
        _normalise(m.group("body"))
        for m in _FENCE.finditer(text)
        if m.group("lang").lower() in _PYTHON_LANGS and m.group("body").strip()
    ]
    mains = [b for b in blocks if _DEFINES_REWARD.search(b)]
    others = [b for b in blocks if not _DEFINES_REWARD.search(b)]
    candidates = []
    for main in mains:
        # Merge in blocks defining what the main block uses but lacks (PARAMS, helpers) when split.
        info = _top_level_definitions(main)
        if info is None:
            candidates.append(main)
            continue
        defined, loaded = info
        missing = (loaded | {"PARAMS"}) - defined
        if "PARAMS" in defined:
            missing.discard("PARAMS")
        prefix = []
        for other in others:
            other_info = _top_level_definitions(other)
            if other_info is not None and other_info[0] & missing:
                prefix.append(other)
                missing -= other_info[0]
        candidates.append("\n".join([*prefix, main]) if prefix else main)
    return candidates


_CODE_LINE = re.compile(
    r"^(def |PARAMS\b|[A-Za-z_]\w*\s*=[^=]|[A-Za-z_]\w*\s*\[.*\]\s*=|#|\}|\]|\)|[\"'][\w ]+[\"']\s*:)"
)


def _unfenced_candidates(text: str) -> list[str]:
    lines = text.splitlines()
    candidates: list[str] = []
    for index, line in enumerate(lines):
        if not re.match(r"^\s*def compute_reward\s*\(", line):
            continue
        indent = len(line) - len(line.lstrip())
        start = index
        while start > 0:
            previous = lines[start - 1]
            body = previous[indent:] if previous[:indent].strip() == "" else previous
            if not previous.strip() or previous.startswith(" " * (indent + 1)) or _CODE_LINE.match(body):
                start -= 1
            else:
                break
        end = index + 1
        while end < len(lines):
            following = lines[end]
            body = following[indent:] if following[:indent].strip() == "" else following
            if not following.strip() or following.startswith(" " * (indent + 1)) or _CODE_LINE.match(body):
                end += 1
            else:
                break
        chunk = lines[start:end]
        def_at = index - start
        # Shrink from both ends until the chunk parses (prose that happened to look like code).
        ends = [len(chunk)] + [
            e for e in range(len(chunk) - 1, def_at, -1) if not chunk[e - 1].startswith(" ")
        ]
        found = None
        for offset in range(def_at + 1):
            for stop in ends:
                code = _normalise("\n".join(chunk[offset:stop]))
                if _top_level_definitions(code) is not None:
                    found = code
                    break
            if found is not None:
                break
        candidates.append(found if found is not None else _normalise("\n".join(lines[index:end])))
    return candidates


def _statically_valid(code: str) -> bool:
    from autogai.rewards.program import RewardProgram

    try:
        RewardProgram.from_source(code)
    except RewardRejectedError:
        return False
    return True


def extract_reward_programs(text: str) -> list[str]:
    """Every candidate reward program in ``text``, best first (may be empty)."""
    if not isinstance(text, str) or not text.strip():
        return []
    visible = _strip_thinking(text)
    candidates = [_normalise(c) for c in _json_candidates(visible)]
    if not candidates:
        candidates = _fenced_candidates(visible)
    if not candidates:
        candidates = _unfenced_candidates(visible)
    unique: list[str] = []
    for candidate in candidates:
        if candidate.strip() and candidate not in unique:
            unique.append(candidate)
    valid = [c for c in unique if _statically_valid(c)]
    return valid + [c for c in unique if c not in valid]


def extract_reward_program(text: str) -> str:
    """The best candidate program in ``text``; raises :class:`ProposalError` if there is none."""
    candidates = extract_reward_programs(text)
    if not candidates:
        preview = " ".join(str(text).split())[:120]
        raise ProposalError(f"no reward program (def compute_reward(m, p)) found in the reply: {preview!r}")
    return candidates[0]
