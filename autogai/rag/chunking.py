"""Splitting a knowledge document into retrievable chunks at its headings, each small enough to embed whole."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from autogai.rag.documents import KnowledgeDocument
from autogai.rag.markdown import FENCE_RE, fence_closes

DEFAULT_MAX_CHUNK_CHARS = 1000
"""Chunk cap. all-MiniLM-L6-v2 reads at most 256 word pieces (about 900-1200 characters of this formula-heavy prose);
anything longer would be silently truncated by the encoder."""

_LIST_ITEM_RE = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s")
_HEADING_RE = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Chunk:
    """A retrievable piece of a document: one section (or part of a long one)."""

    id: str
    """``<doc_id>#<n>``, n counting from 0 in document order."""
    doc_id: str
    index: int
    title: str
    kind: str
    heading: str
    """Section path inside the document, e.g. ``When it hurts > Scale``; empty for the preamble."""
    text: str
    """What is embedded and shown: the document title and section path on top of the section text, so a
    chunk read (or embedded) on its own still says what it is about."""


def _sections(body: str) -> list[tuple[list[str], str]]:
    """Split Markdown at ``#``/``##``/``###`` headings outside code fences: ``[(heading_path, text)]``.

    ``#`` (a repeated title) opens a new top-level path; ``####`` and deeper stay inside their section.
    """
    sections: list[tuple[list[str], str]] = []
    path: list[str] = []
    current: list[str] = []
    fence = ""

    def flush() -> None:
        text = "\n".join(current).strip()
        if text:
            sections.append((list(path), text))
        current.clear()

    for line in body.splitlines():
        fence_match = FENCE_RE.match(line)
        if fence_match:
            marker = fence_match["fence"]
            if not fence:
                fence = marker
            elif fence_closes(fence, fence_match):
                fence = ""
            current.append(line)
            continue
        heading = _HEADING_RE.match(line) if not fence else None
        if heading and len(heading["hashes"]) <= 3:
            flush()
            level = len(heading["hashes"])
            text = heading["text"].strip()
            if level == 1:
                path = []  # the H1 repeats the title: its text goes nowhere, the preamble follows
            elif level == 2:
                path = [text]
            else:
                path = [*path[:1], text] if path else [text]
            continue
        current.append(line)
    flush()
    return sections


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, never cutting through a fenced code block."""
    paragraphs: list[str] = []
    current: list[str] = []
    fence = ""
    for line in text.splitlines():
        fence_match = FENCE_RE.match(line)
        if fence_match:
            if not fence:
                fence = fence_match["fence"]
            elif fence_closes(fence, fence_match):
                fence = ""
        if not line.strip() and not fence:
            if current:
                paragraphs.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs


def _hard_split(text: str, limit: int) -> list[str]:
    """Split an over-long paragraph into pieces of at most ``limit`` characters.

    List items (with their wrapped lines) are kept whole and packed together; an item or prose paragraph
    longer than the limit is cut at sentence ends, then at spaces.
    """
    items: list[str] = []  # list items with their wrapped continuation lines, or the whole prose paragraph
    for line in text.splitlines():
        if not items or _LIST_ITEM_RE.match(line):
            items.append(line)
        else:
            items[-1] += "\n" + line
    units: list[str] = []
    for item in items:
        if len(item) <= limit:
            units.append(item)
            continue
        current = ""
        for sentence in re.split(r"(?<=[.!?;])\s+", " ".join(item.split())):
            while len(sentence) > limit:
                cut = sentence.rfind(" ", 0, limit)
                cut = cut if cut > limit // 2 else limit
                if current:
                    units.append(current)
                    current = ""
                units.append(sentence[:cut].rstrip())
                sentence = sentence[cut:].lstrip()
            if current and len(current) + 1 + len(sentence) > limit:
                units.append(current)
                current = sentence
            else:
                current = f"{current} {sentence}" if current else sentence
        if current:
            units.append(current)
    return _join_greedily(units, limit, "\n")


def _pack(paragraphs: Iterable[str], limit: int) -> list[str]:
    """Greedily join paragraphs into pieces of at most ``limit`` characters (long ones are hard-split)."""
    parts = (
        part
        for paragraph in paragraphs
        for part in ([paragraph] if len(paragraph) <= limit else _hard_split(paragraph, limit))
    )
    return _join_greedily(parts, limit, "\n\n")


def _join_greedily(parts: Iterable[str], limit: int, separator: str) -> list[str]:
    """Consecutive ``parts`` joined by ``separator`` into pieces of at most ``limit`` characters (a part
    longer than the limit stays a piece of its own)."""
    pieces: list[str] = []
    current = ""
    for part in parts:
        if current and len(current) + len(separator) + len(part) > limit:
            pieces.append(current)
            current = part
        else:
            current = f"{current}{separator}{part}" if current else part
    if current:
        pieces.append(current)
    return pieces


def split_by_headings(doc: KnowledgeDocument, *, max_chars: int = DEFAULT_MAX_CHUNK_CHARS) -> list[Chunk]:
    """Split ``doc`` into chunks at ``##``/``###`` headings, each at most about ``max_chars`` long.

    Every chunk's text starts with the document title and the section path, so the embedding of a
    section like "When it hurts" still knows which reward term it talks about. Sections longer than the
    cap are split at paragraphs (never inside a code block unless the block alone is too long), then at
    sentences.
    """
    chunks: list[Chunk] = []
    for heading_path, text in _sections(doc.body):
        heading = " > ".join(heading_path)
        header = f"{doc.title}\n{heading}\n\n" if heading else f"{doc.title}\n\n"
        budget = max(200, max_chars - len(header))
        for piece in _pack(_paragraphs(text), budget):
            chunks.append(
                Chunk(
                    id=f"{doc.id}#{len(chunks)}",
                    doc_id=doc.id,
                    index=len(chunks),
                    title=doc.title,
                    kind=doc.kind,
                    heading=heading,
                    text=header + piece,
                )
            )
    if not chunks:  # a body of headings only: still retrievable by its title
        chunks.append(Chunk(f"{doc.id}#0", doc.id, 0, doc.title, doc.kind, "", doc.title))
    return chunks
