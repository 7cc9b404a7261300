"""Where the shipped data (knowledge base, prompts) and the default run root live."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
PROJECT_ROOT = PACKAGE_DIR.parent


def knowledge_base_dir() -> Path:
    """The shipped knowledge base (``knowledge_base/`` at the project root)."""
    return Path(os.environ.get("AUTOGAI_KNOWLEDGE_BASE", PROJECT_ROOT / "knowledge_base"))


def prompts_dir() -> Path:
    """The shipped prompt templates (``prompts/`` at the project root)."""
    return Path(os.environ.get("AUTOGAI_PROMPTS", PROJECT_ROOT / "prompts"))


def runs_root() -> Path:
    """Default output root for runs (``runs/`` at the project root, or ``$AUTOGAI_RUNS``)."""
    return Path(os.environ.get("AUTOGAI_RUNS", PROJECT_ROOT / "runs"))


def cache_dir() -> Path:
    """Per-user cache (vector store, LLM response cache shared between runs): ``$AUTOGAI_CACHE`` or XDG."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "autogai"
    return Path(os.environ.get("AUTOGAI_CACHE", default))
