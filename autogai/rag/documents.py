"""Knowledge documents: Markdown files with YAML front matter, parsed, validated and split for retrieval.

A knowledge document looks like::

    ---
    title: Potential-based reward shaping
    kind: principle              # principle | reward-term | enhancer-guide | pitfall | case-study
    tags: [shaping, theory]
    applies_to: [any]            # task ids or "any"
    sources: ["Ng, Harada, Russell (1999) ..."]
    recommends:                  # enhancer guides only: action space -> enhancer short names, best first
      continuous: [gdm+gan, gdm, plain]
    ---
    ## Section
    ...

Rules (the same for :func:`load_documents` and ``autogai kb ingest``):

- Every ``*.md`` file under the directory is read, sub-folders included, hidden ones (``.x``) excluded.
- ``README.md`` files describe the folder; they are ignored without a report.
- Any other file that does not start with a ``---`` front matter block is **not** a knowledge document: it
  is skipped and reported with the reason ``no YAML front matter``, so a document whose front matter was
  forgotten never disappears silently.
- A malformed file (bad YAML, missing or invalid field, bad ``reward-term`` block, duplicate id) is
  skipped and reported by path with the reason; every other file is still loaded.

A ``reward-term`` document carries one or more fenced blocks tagged ``reward-term`` (see
:mod:`autogai.rag.reward_terms`) from which the offline proposer composes reward programs. The chunker that
splits a document for retrieval is :mod:`autogai.rag.chunking`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autogai.core.errors import ConfigError
from autogai.core.types import EnhancerCombo
from autogai.rag.markdown import (
    KnowledgeDocumentError,
    fenced_blocks,
    split_front_matter,
    string_list,
    yaml_reason,
)
from autogai.rag.reward_terms import RewardTerm, parse_reward_term

logger = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("principle", "reward-term", "enhancer-guide", "pitfall", "case-study")
REQUIRED_FIELDS: tuple[str, ...] = ("title", "kind", "tags", "applies_to", "sources")
ACTION_SPACES: tuple[str, ...] = ("continuous", "discrete", "hybrid", "any")

# Bump when parsing (here) or splitting (autogai.rag.chunking) changes what ends up in the store: every
# document is then re-ingested.
CHUNKER_VERSION = "2"


@dataclass(frozen=True)
class KnowledgeDocument:
    """One parsed knowledge file. ``id`` is the file stem and serves as the source id in designs."""

    id: str
    path: Path
    title: str
    kind: str
    tags: list[str]
    applies_to: list[str]
    sources: list[str]
    body: str
    """The Markdown after the front matter."""
    meta: dict[str, Any]
    """The whole front matter as parsed."""
    content_hash: str
    """SHA-256 of the file's text (and the chunker version): equal hash, nothing to re-ingest."""
    reward_terms: list[RewardTerm] = field(default_factory=list)
    recommends: dict[str, list[str]] = field(default_factory=dict)
    """Enhancer guides: action space -> enhancer short names, best first (canonical short names)."""

    def applies_to_task(self, task_id: str) -> bool:
        return "any" in self.applies_to or task_id in self.applies_to


# --------------------------------------------------------------------------------------------- parsing


def content_hash(text: str) -> str:
    return hashlib.sha256(f"autogai-kb-v{CHUNKER_VERSION}\n{text}".encode()).hexdigest()


def _parse_recommends(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        raise KnowledgeDocumentError("'recommends' must map an action space to a list of enhancer names")
    out: dict[str, list[str]] = {}
    for space, names in value.items():
        space_name = str(space).strip().lower()
        if space_name not in ACTION_SPACES:
            raise KnowledgeDocumentError(
                f"'recommends' has unknown action space {space!r}; valid: {', '.join(ACTION_SPACES)}"
            )
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            raise KnowledgeDocumentError(
                f"'recommends.{space_name}' must be a non-empty list of enhancer names"
            )
        canonical = []
        for name in names:
            try:
                short = EnhancerCombo.parse(str(name)).short_name
            except ConfigError as exc:
                raise KnowledgeDocumentError(f"'recommends.{space_name}': {exc}") from exc
            if short not in canonical:
                canonical.append(short)
        out[space_name] = canonical
    return out


def parse_document(path: Path, text: str | None = None) -> KnowledgeDocument:
    """Parse one knowledge file; raise :class:`KnowledgeDocumentError` with the reason when unusable.

    Raises it with reason ``no YAML front matter`` for a file that is not a knowledge document at all.
    """
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise KnowledgeDocumentError("not UTF-8 text") from exc
        except OSError as exc:
            raise KnowledgeDocumentError(f"cannot read: {exc.strerror or exc}") from exc
    split = split_front_matter(text)
    if split is None:
        raise KnowledgeDocumentError(NO_FRONT_MATTER)
    front, body = split
    try:
        meta = yaml.safe_load(front)
    except yaml.YAMLError as exc:
        raise KnowledgeDocumentError(f"invalid YAML front matter: {yaml_reason(exc)}") from exc
    if not isinstance(meta, dict):
        raise KnowledgeDocumentError(
            "front matter must be a YAML mapping (title, kind, tags, applies_to, sources)"
        )
    missing = [name for name in REQUIRED_FIELDS if meta.get(name) in (None, "", [])]
    if missing:
        raise KnowledgeDocumentError(f"front matter misses required field(s): {', '.join(missing)}")
    title = meta["title"]
    if not isinstance(title, str) or not title.strip():
        raise KnowledgeDocumentError("front matter 'title' must be text")
    kind = meta["kind"]
    if kind not in KINDS:
        raise KnowledgeDocumentError(f"kind {kind!r} is not valid; valid: {', '.join(KINDS)}")
    tags = string_list(meta["tags"], "tags")
    applies_to = string_list(meta["applies_to"], "applies_to")
    sources = string_list(meta["sources"], "sources")
    if not body.strip():
        raise KnowledgeDocumentError("the document has no body after the front matter")
    doc_id = path.stem
    recommends = _parse_recommends(meta["recommends"]) if meta.get("recommends") is not None else {}
    blocks = fenced_blocks(body, "reward-term")
    terms = [
        parse_reward_term(block, doc_id=doc_id, doc_applies_to=applies_to, number=i + 1)
        for i, block in enumerate(blocks)
    ]
    if kind == "reward-term" and not terms:
        raise KnowledgeDocumentError("a reward-term document needs at least one ```reward-term block")
    names = [term.name for term in terms]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise KnowledgeDocumentError(f"reward-term name(s) used twice: {', '.join(duplicates)}")
    return KnowledgeDocument(
        id=doc_id,
        path=path,
        title=title.strip(),
        kind=kind,
        tags=tags,
        applies_to=applies_to,
        sources=sources,
        body=body,
        meta=meta,
        content_hash=content_hash(text),
        reward_terms=terms,
        recommends=recommends,
    )


NO_FRONT_MATTER = "no YAML front matter (not a knowledge document)"


def knowledge_files(directory: Path) -> list[Path]:
    """The Markdown files :func:`load_documents` considers, sorted (READMEs and hidden paths excluded)."""
    directory = Path(directory)
    files = []
    for path in sorted(directory.rglob("*.md")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.name.lower() == "readme.md" or not path.is_file():
            continue
        files.append(path)
    return files


def load_documents(directory: Path) -> tuple[list[KnowledgeDocument], list[tuple[Path, str]]]:
    """Parse every knowledge file under ``directory``.

    Returns ``(documents, skipped)`` where ``skipped`` lists ``(path, reason)`` for each file that was not
    loaded (see the module docstring for the rules). Raises :class:`ConfigError` if the directory is missing.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"knowledge base directory {directory} does not exist")
    documents: list[KnowledgeDocument] = []
    skipped: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    for path in knowledge_files(directory):
        try:
            doc = parse_document(path)
        except KnowledgeDocumentError as exc:
            logger.info("skipping knowledge file %s: %s", path, exc)
            skipped.append((path, str(exc)))
            continue
        if doc.id in seen:
            reason = f"duplicate document id {doc.id!r} (also {seen[doc.id]})"
            logger.info("skipping knowledge file %s: %s", path, reason)
            skipped.append((path, reason))
            continue
        seen[doc.id] = path
        documents.append(doc)
    return documents, skipped
