"""Shared test set-up: offline everything, quiet telemetry, one torch thread per test process; the one
knowledge-base fixture."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import pytest

# Process-wide on purpose, and so not through monkeypatch: these must hold before any test module imports
# huggingface_hub or chromadb (which read them at import time), and for every subprocess a test starts.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests must never pick up a developer's real keys or endpoints.
for _name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "OLLAMA_HOST"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def make_kb(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """``make_kb(embeddings="hash", documents=None)``: a knowledge base ingested into a temporary store, built
    once per session for each set of arguments. ``documents`` maps file names to Markdown; without it, the
    knowledge base shipped in the repository (missing or malformed, the test fails: it ships with the code)."""
    from autogai.core.paths import knowledge_base_dir
    from autogai.rag.knowledge import KnowledgeBase

    built: dict[tuple[str, tuple[tuple[str, str], ...]], KnowledgeBase] = {}

    def make(embeddings: str = "hash", documents: Mapping[str, str] | None = None) -> KnowledgeBase:
        key = (embeddings, tuple(sorted((documents or {}).items())))
        if key not in built:
            root = tmp_path_factory.mktemp("kb")
            source = knowledge_base_dir()
            if documents is not None:
                source = root / "docs"
                source.mkdir()
                for name, text in documents.items():
                    (source / name).write_text(text)
            base = KnowledgeBase(persist_dir=root / "store", embeddings=embeddings, source_dir=source)
            report = base.ingest()
            assert report.skipped == [] and report.chunks_added > 0, report
            built[key] = base
        return built[key]

    return make


@pytest.fixture(scope="module")
def kb(make_kb: Callable[..., Any], request: pytest.FixtureRequest) -> Any:
    """The knowledge base a test module reads: the shipped one with the deterministic ``hash`` embeddings,
    unless the module sets ``KB_EMBEDDINGS`` (e.g. ``"local"``) or ``KB_DOCUMENTS`` ({file name: Markdown})."""
    return make_kb(
        getattr(request.module, "KB_EMBEDDINGS", "hash"), getattr(request.module, "KB_DOCUMENTS", None)
    )
