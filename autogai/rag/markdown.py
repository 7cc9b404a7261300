"""The Markdown of knowledge files: YAML front matter, fenced code blocks, and why a file is unusable.

Shared by the document parser (:mod:`autogai.rag.documents`), the ``reward-term`` blocks
(:mod:`autogai.rag.reward_terms`) and the chunker (:mod:`autogai.rag.chunking`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from autogai.core.errors import AutoGAIError

FENCE_RE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


class KnowledgeDocumentError(AutoGAIError):
    """A knowledge file could not be used; the message is the reason shown next to its path."""


def split_front_matter(text: str) -> tuple[str, str] | None:
    """``(front_matter_yaml, body)``, or None when the text does not open with a ``---`` block."""
    text = text.lstrip("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    raise KnowledgeDocumentError("front matter opened with '---' is never closed")


def string_list(value: Any, field_name: str, *, allow_scalar: bool = True) -> list[str]:
    if isinstance(value, str) and allow_scalar:
        value = [value]
    if not isinstance(value, list):
        raise KnowledgeDocumentError(
            f"front matter {field_name!r} must be a list, got {type(value).__name__}"
        )
    out = []
    for item in value:
        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
            text = str(item).strip()
        elif isinstance(item, Mapping):  # a structured citation {authors:, title:, year:, url:}
            text = "; ".join(f"{k}: {v}" for k, v in item.items())
        else:
            raise KnowledgeDocumentError(f"front matter {field_name!r} holds a non-text item {item!r}")
        if text:
            out.append(text)
    return out


def yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} (line {mark.line + 1})" if mark is not None else str(problem)


def fence_closes(fence: str, match: re.Match[str] | None) -> bool:
    """Whether a fence line closes the block opened by ``fence`` (same character, at least as long)."""
    return (
        match is not None
        and match["fence"][0] == fence[0]
        and len(match["fence"]) >= len(fence)
        and not match["info"].strip()
    )


def fenced_blocks(body: str, info: str) -> list[str]:
    """Contents of the fenced code blocks whose info string is ``info`` (e.g. ``reward-term``)."""
    blocks: list[str] = []
    fence = ""  # the opening marker while inside any fenced block
    capture: list[str] | None = None  # lines of the block being collected, if it is an ``info`` block
    for line in body.splitlines():
        match = FENCE_RE.match(line)
        if not fence:
            if match:
                fence = match["fence"]
                words = match["info"].split()
                capture = [] if words and words[0] == info else None
            continue
        if fence_closes(fence, match):
            if capture is not None:
                blocks.append("\n".join(capture))
            fence, capture = "", None
            continue
        if capture is not None:
            capture.append(line)
    if fence and capture is not None:
        raise KnowledgeDocumentError(f"a ```{info} block is never closed")
    return blocks
