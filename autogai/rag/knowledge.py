"""The knowledge base: Markdown documents split by headings, embedded, kept in a persistent Chroma store.

Two collections per embedding spec (vectors of different models never share a collection):

- ``kb-<embeddings>``: the chunks of the knowledge documents. Each chunk's metadata carries its
  document's content hash, so :meth:`KnowledgeBase.ingest` embeds only new or changed documents,
  replaces the chunks of changed ones and deletes those of files that are gone.
- ``results-<embeddings>``: designs that did well in past searches (:meth:`KnowledgeBase.add_result`),
  so a later search on the same or a similar task starts from what worked.

Retrieval blends the embedding similarity with a lexical BM25 score (:mod:`autogai.rag.lexical`) over the
same chunks: names like ``power_total_mw`` or "GAN" are matched exactly, which small sentence encoders
blur. The blend weight was measured on the retrieval tests (see :data:`DEFAULT_LEXICAL_WEIGHT`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autogai.core.errors import AutoGAIError, ConfigError, LLMUnavailableError, StorageError
from autogai.core.paths import cache_dir, knowledge_base_dir
from autogai.core.types import Design
from autogai.rag.chunking import split_by_headings
from autogai.rag.documents import KINDS, KnowledgeDocument, load_documents
from autogai.rag.embeddings import DEFAULT_EMBEDDINGS, embedding_slug, make_embeddings, parse_embedding_spec
from autogai.rag.lexical import BM25

if TYPE_CHECKING:
    from langchain_chroma import Chroma
    from langchain_core.embeddings import Embeddings

    from autogai.rag.reward_terms import RewardTerm

logger = logging.getLogger(__name__)

DEFAULT_LEXICAL_WEIGHT = 0.3
"""Share of the BM25 score in the blended relevance (the rest is cosine similarity).

Measured on 42 topic queries over the shipped knowledge base (47 documents, 218 chunks, all-MiniLM-L6-v2):
the target document is in the top 3 for 40/42 queries with embeddings alone (mean reciprocal rank 0.895),
40/42 with BM25 alone (0.911) and 41/42 with this blend (0.920); weights 0.1-0.5 score the same. The
gain is on identifier-like queries ("Fig. 4 results": rank 13 -> top 3)."""

_ADD_BATCH = 256
_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def default_store_dir() -> Path:
    """Where the vector store lives unless told otherwise: ``<cache_dir>/kb``."""
    return cache_dir() / "kb"


# ------------------------------------------------------------------------------------------ data types


@dataclass(frozen=True)
class IngestReport:
    """What one ingest did. Document ids in each list; ``skipped`` holds ``(path, reason)``."""

    directory: Path
    added: list[str] = field(default_factory=list)
    """New documents (never ingested before)."""
    updated: list[str] = field(default_factory=list)
    """Changed documents whose old chunks were replaced."""
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    """Documents whose file is gone from the directory: their chunks were deleted."""
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    """Files not loaded, with the reason. A skipped file's previously ingested chunks are kept."""
    chunks_added: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass(frozen=True)
class RetrievedChunk:
    """One retrieval hit. ``chunk_id`` (``<doc_id>#<n>``) is the source id a design cites."""

    chunk_id: str
    doc_id: str
    title: str
    kind: str
    text: str
    score: float
    """Blended relevance in [0, 1], higher is better."""
    path: str
    heading: str = ""
    vector_score: float = 0.0
    """Cosine similarity of query and chunk, clipped to [0, 1]."""
    lexical_score: float = 0.0
    """BM25 of the chunk for the query divided by the best BM25 among the candidates, in [0, 1]."""


@dataclass(frozen=True)
class IngestedDocument:
    """A document as held in the vector store (for ``autogai kb list``)."""

    doc_id: str
    title: str
    kind: str
    chunks: int
    path: str
    content_hash: str
    applies_to: list[str]


@dataclass(frozen=True)
class PastResult:
    """A design that did well before, retrieved from the results collection."""

    task_id: str
    design: dict[str, Any]
    """``Design.to_dict()`` as stored; :meth:`to_design` rebuilds the design."""
    score: float
    """The fitness score the design achieved."""
    summary: str
    relevance: float = 0.0
    """Similarity of the stored summary to the query, in [0, 1]."""

    def to_design(self) -> Design:
        return Design.from_dict(self.design)


# ------------------------------------------------------------------------------------------------ BM25

# ----------------------------------------------------------------------------------------- the store


def _chroma_client(persist_dir: Path) -> Any:
    """One persistent Chroma client per directory and process, telemetry off."""
    persist_dir = persist_dir.resolve()
    key = str(persist_dir)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            try:
                import chromadb
                from chromadb.config import Settings
            except ImportError as exc:  # pragma: no cover - a declared dependency
                from autogai.core.errors import MissingDependencyError

                raise MissingDependencyError(
                    "the knowledge base needs chromadb: pip install chromadb"
                ) from exc
            try:
                persist_dir.mkdir(parents=True, exist_ok=True)
                _CLIENTS[key] = chromadb.PersistentClient(
                    path=key, settings=Settings(anonymized_telemetry=False, allow_reset=False)
                )
            except OSError as exc:
                raise StorageError(f"cannot use the knowledge-base store {persist_dir}: {exc}") from exc
        return _CLIENTS[key]


def check_kinds(kinds: str | Sequence[str] | None) -> list[str]:
    """``kinds`` as a list, each checked against the document kinds (ConfigError listing the valid ones)."""
    kind_list = [kinds] if isinstance(kinds, str) else list(kinds or [])
    for kind in kind_list:
        if kind not in KINDS:
            raise ConfigError(f"unknown document kind {kind!r}; valid: {', '.join(KINDS)}")
    return kind_list


def _warn_skipped(skipped: Iterable[tuple[Path, str]]) -> None:
    for path, reason in skipped:
        logger.warning("knowledge file %s skipped: %s", path, reason)


def _joined(values: Iterable[str]) -> str:
    """List metadata as ``|a|b|`` (Chroma metadata values are scalars)."""
    return "|" + "|".join(values) + "|"


def _split_joined(value: Any) -> list[str]:
    return [v for v in str(value or "").split("|") if v]


class KnowledgeBase:
    """Reward-design knowledge: ingest Markdown documents, retrieve chunks, remember good designs.

    Args:
        persist_dir: Directory of the Chroma store; default :func:`default_store_dir`.
        embeddings: Embedding spec (``local``, ``hash``, ``ollama:<model>``, ``openai:<model>``).
        source_dir: The knowledge documents :meth:`ensure_ingested` and :meth:`documents` use; default the
            shipped ``knowledge_base/``.
        lexical_weight: Share of BM25 in the blended score, in [0, 1] (0 = embeddings only).

    Nothing heavy happens at construction: the store opens on first use, the embedding model loads on the
    first text that needs embedding (an ingest with nothing changed never loads it).
    """

    def __init__(
        self,
        persist_dir: Path | None = None,
        embeddings: str = DEFAULT_EMBEDDINGS,
        source_dir: Path | None = None,
        *,
        lexical_weight: float = DEFAULT_LEXICAL_WEIGHT,
    ) -> None:
        parse_embedding_spec(embeddings)  # fail early on a bad spec
        if not 0.0 <= lexical_weight <= 1.0:
            raise ConfigError(f"lexical_weight={lexical_weight} must be in [0, 1]")
        self.persist_dir = (
            Path(persist_dir) if persist_dir is not None else default_store_dir()
        ).expanduser()
        self.embedding_spec = embeddings
        self.source_dir = Path(source_dir) if source_dir is not None else knowledge_base_dir()
        self.lexical_weight = lexical_weight
        slug = embedding_slug(embeddings)
        self.collection_name = f"kb-{slug}"
        self.results_collection_name = f"results-{slug}"
        self._embeddings: Embeddings | None = None
        self._stores: dict[str, Chroma] = {}
        self._documents: list[KnowledgeDocument] | None = None
        self._lexical: tuple[str, list[str], BM25] | None = None

    # ------------------------------------------------------------------ plumbing

    @property
    def embeddings(self) -> Embeddings:
        if self._embeddings is None:
            self._embeddings = make_embeddings(self.embedding_spec)
        return self._embeddings

    def _store(self, name: str | None = None) -> Chroma:
        name = name or self.collection_name
        if name not in self._stores:
            from langchain_chroma import Chroma

            try:
                self._stores[name] = Chroma(
                    collection_name=name,
                    embedding_function=self.embeddings,
                    client=_chroma_client(self.persist_dir),
                    collection_metadata={"autogai_embeddings": self.embedding_spec},
                    collection_configuration={"hnsw": {"space": "cosine"}},
                )
            except AutoGAIError:
                raise
            except Exception as exc:
                raise StorageError(f"cannot open collection {name!r} in {self.persist_dir}: {exc}") from exc
        return self._stores[name]

    def _embedding_guard(self, action: str, exc: Exception) -> AutoGAIError:
        provider, _ = parse_embedding_spec(self.embedding_spec)
        if provider in ("ollama", "openai"):
            return LLMUnavailableError(f"{action}: embeddings {self.embedding_spec} failed: {exc}")
        return StorageError(f"{action} failed: {exc}")

    def _all_chunks(self) -> dict[str, Any]:
        return self._store().get(include=["metadatas", "documents"])

    def _ingested_index(self) -> dict[str, dict[str, Any]]:
        """doc_id -> {hash, path, source_dir, ids, title, kind, applies_to} from chunk metadata."""
        data = self._store().get(include=["metadatas"])
        index: dict[str, dict[str, Any]] = {}
        for chunk_id, meta in zip(data["ids"], data["metadatas"], strict=True):
            meta = meta or {}
            doc_id = str(meta.get("doc_id") or chunk_id.split("#")[0])
            entry = index.setdefault(
                doc_id,
                {
                    "hash": meta.get("content_hash", ""),
                    "path": meta.get("path", ""),
                    "source_dir": meta.get("source_dir", ""),
                    "title": meta.get("title", doc_id),
                    "kind": meta.get("kind", ""),
                    "applies_to": _split_joined(meta.get("applies_to")),
                    "ids": [],
                },
            )
            entry["ids"].append(chunk_id)
        return index

    # ------------------------------------------------------------------ documents

    def documents(self) -> list[KnowledgeDocument]:
        """The documents parsed from ``source_dir`` (cached; malformed files are logged and left out)."""
        if self._documents is None:
            self._documents, skipped = load_documents(self.source_dir)
            _warn_skipped(skipped)
        return list(self._documents)

    def document(self, doc_id: str) -> KnowledgeDocument:
        """One document of ``source_dir`` by id (file stem); ConfigError listing the ids if unknown."""
        for doc in self.documents():
            if doc.id == doc_id:
                return doc
        known = ", ".join(sorted(d.id for d in self.documents())) or "(none)"
        raise ConfigError(f"no knowledge document {doc_id!r}; known: {known}")

    def reward_terms(self, task_id: str | None = None) -> list[RewardTerm]:
        """Every ``reward-term`` block of ``source_dir``, optionally only those applying to ``task_id``."""
        terms = [term for doc in self.documents() for term in doc.reward_terms]
        if task_id is not None:
            terms = [term for term in terms if term.applies_to_task(task_id)]
        return terms

    # ------------------------------------------------------------------ ingest

    def ingest(self, directory: Path | None = None) -> IngestReport:
        """Bring the store in line with ``directory`` (default ``source_dir``); embed only what changed.

        New documents are added, changed ones (different content hash or path) have their chunks replaced,
        documents whose file is gone from ``directory`` are deleted. Documents ingested from another
        directory are left alone. Malformed files are reported in ``skipped`` and keep whatever they had in
        the store before. Raises :class:`ConfigError` when the directory does not exist.
        """
        directory = Path(directory) if directory is not None else self.source_dir
        if not directory.is_dir():
            raise ConfigError(f"knowledge base directory {directory} does not exist")
        directory = directory.resolve()
        docs, skipped = load_documents(directory)
        store = self._store()
        existing = self._ingested_index()

        added: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        texts: list[str] = []
        metadatas: list[dict[str, Any]] = []
        ids: list[str] = []
        stale_ids: list[str] = []
        for doc in docs:
            old = existing.get(doc.id)
            path = str(doc.path.resolve())
            if old is not None and old["hash"] == doc.content_hash and old["path"] == path:
                unchanged.append(doc.id)
                continue
            chunks = split_by_headings(doc)
            new_ids = {chunk.id for chunk in chunks}
            (updated if old is not None else added).append(doc.id)
            if old is not None:
                stale_ids.extend(i for i in old["ids"] if i not in new_ids)
            for chunk in chunks:
                ids.append(chunk.id)
                texts.append(chunk.text)
                metadatas.append(
                    {
                        "doc_id": doc.id,
                        "title": doc.title,
                        "kind": doc.kind,
                        "heading": chunk.heading,
                        "chunk_index": chunk.index,
                        "n_chunks": len(chunks),
                        "path": path,
                        "source_dir": str(directory),
                        "content_hash": doc.content_hash,
                        "applies_to": _joined(doc.applies_to),
                        "tags": _joined(doc.tags),
                        "embeddings": self.embedding_spec,
                    }
                )
        present = {doc.id for doc in docs} | {path.stem for path, _ in skipped}
        removed = sorted(
            doc_id
            for doc_id, old in existing.items()
            if old["source_dir"] == str(directory) and doc_id not in present
        )
        stale_ids.extend(i for doc_id in removed for i in existing[doc_id]["ids"])

        if texts:
            # Upsert first, delete leftovers after: a failing embedding backend loses nothing.
            try:
                for start in range(0, len(texts), _ADD_BATCH):  # Chroma caps the size of one upsert
                    end = start + _ADD_BATCH
                    store.add_texts(texts[start:end], metadatas=metadatas[start:end], ids=ids[start:end])
            except AutoGAIError:
                raise
            except Exception as exc:
                raise self._embedding_guard(f"ingesting {len(texts)} chunks", exc) from exc
        if stale_ids:
            store.delete(ids=stale_ids)
        if texts or stale_ids:
            self._lexical = None
        if directory == self.source_dir.resolve():
            self._documents = list(docs)
        report = IngestReport(
            directory=directory,
            added=added,
            updated=updated,
            unchanged=unchanged,
            removed=removed,
            skipped=skipped,
            chunks_added=len(texts),
        )
        logger.info(
            "ingested %s: %d added, %d updated, %d unchanged, %d removed, %d skipped (%d chunks embedded)",
            directory,
            len(added),
            len(updated),
            len(unchanged),
            len(removed),
            len(skipped),
            len(texts),
        )
        return report

    def ensure_ingested(self) -> IngestReport:
        """Ingest ``source_dir`` if the store is empty or behind it (cheap when it is up to date).

        Skipped (malformed) files are logged as warnings; :meth:`ingest` leaves reporting to its caller.
        """
        report = self.ingest(self.source_dir)
        _warn_skipped(report.skipped)
        return report

    def count(self) -> int:
        """Number of chunks in the store."""
        return int(self._store()._collection.count())

    def list_ingested(self) -> list[IngestedDocument]:
        """Documents in the store, sorted by kind then id."""
        out = [
            IngestedDocument(
                doc_id=doc_id,
                title=str(entry["title"]),
                kind=str(entry["kind"]),
                chunks=len(entry["ids"]),
                path=str(entry["path"]),
                content_hash=str(entry["hash"]),
                applies_to=list(entry["applies_to"]),
            )
            for doc_id, entry in self._ingested_index().items()
        ]
        kind_order = {kind: i for i, kind in enumerate(KINDS)}
        return sorted(out, key=lambda d: (kind_order.get(d.kind, len(KINDS)), d.doc_id))

    # ------------------------------------------------------------------ query

    def _lexical_index(self) -> tuple[list[str], BM25]:
        data = self._all_chunks()
        fingerprint = hashlib.sha256(
            "\n".join(
                f"{i}:{(m or {}).get('content_hash', '')}"
                for i, m in zip(data["ids"], data["metadatas"], strict=True)
            ).encode()
        ).hexdigest()
        if self._lexical is None or self._lexical[0] != fingerprint:
            self._lexical = (fingerprint, list(data["ids"]), BM25(data["documents"]))
        return self._lexical[1], self._lexical[2]

    def query(
        self,
        text: str,
        k: int = 5,
        *,
        kinds: str | Sequence[str] | None = None,
        task_id: str | None = None,
        max_per_document: int | None = None,
    ) -> list[RetrievedChunk]:
        """The ``k`` chunks most relevant to ``text``, best first.

        Args:
            kinds: Keep only chunks of these document kinds (one kind or several).
            task_id: Keep only chunks of documents whose ``applies_to`` lists the task or ``any``.
            max_per_document: At most this many chunks of one document (None = no limit), so one long
                document cannot fill all ``k`` places.
        """
        if k < 1:
            raise ConfigError(f"k={k} must be at least 1")
        kind_list = check_kinds(kinds)
        store = self._store()
        total = self.count()
        if total == 0 or not text.strip():
            return []
        where: dict[str, Any] | None = None
        if len(kind_list) == 1:
            where = {"kind": kind_list[0]}
        elif kind_list:
            where = {"kind": {"$in": kind_list}}
        try:
            query_vector = self.embeddings.embed_query(text)
        except AutoGAIError:
            raise
        except Exception as exc:
            raise self._embedding_guard("embedding the query", exc) from exc
        # The store is small (hundreds of chunks): rank every candidate, so the lexical score can lift a
        # chunk the embedding alone would have left below k.
        hits = store.similarity_search_by_vector_with_relevance_scores(query_vector, k=total, filter=where)
        candidates = []
        for document, distance in hits:
            meta = document.metadata or {}
            applies = _split_joined(meta.get("applies_to"))
            if task_id is not None and "any" not in applies and task_id not in applies:
                continue
            similarity = min(1.0, max(0.0, 1.0 - float(distance)))  # cosine distance -> similarity
            candidates.append((document, meta, similarity))
        if not candidates:
            return []

        lexical: dict[str, float] = {}
        if self.lexical_weight > 0:
            ids, bm25 = self._lexical_index()
            raw = dict(zip(ids, bm25.scores(text), strict=True))
            best = max((raw.get(str(doc.id), 0.0) for doc, _, _ in candidates), default=0.0)
            if best > 0:
                lexical = {str(doc.id): raw.get(str(doc.id), 0.0) / best for doc, _, _ in candidates}

        w = self.lexical_weight
        results = [
            RetrievedChunk(
                chunk_id=str(doc.id),
                doc_id=str(meta.get("doc_id", "")),
                title=str(meta.get("title", "")),
                kind=str(meta.get("kind", "")),
                text=doc.page_content,
                score=(1.0 - w) * similarity + w * lexical.get(str(doc.id), 0.0),
                path=str(meta.get("path", "")),
                heading=str(meta.get("heading", "")),
                vector_score=similarity,
                lexical_score=lexical.get(str(doc.id), 0.0),
            )
            for doc, meta, similarity in candidates
        ]
        results.sort(key=lambda r: (-r.score, r.chunk_id))
        if max_per_document is not None:
            per_doc: Counter[str] = Counter()
            kept = []
            for result in results:
                if per_doc[result.doc_id] < max_per_document:
                    per_doc[result.doc_id] += 1
                    kept.append(result)
            results = kept
        return results[:k]

    # ------------------------------------------------------------------ past results

    def add_result(self, task_id: str, design: Design, score: float, summary: str) -> str:
        """Remember that ``design`` scored ``score`` on ``task_id``; returns the stored id.

        Storing the same design for the same task again replaces the earlier entry.
        """
        if not math.isfinite(float(score)):
            raise ConfigError(f"score={score} must be a finite number")
        entry_id = f"{task_id}/{design.id}"
        text = "\n".join(
            part
            for part in (
                f"Task {task_id}: design {design.name or design.id} with enhancers {design.enhancers.short_name}.",
                summary.strip(),
                f"Rationale: {design.rationale.strip()}" if design.rationale.strip() else "",
            )
            if part
        )
        metadata = {
            "task_id": task_id,
            "design_id": design.id,
            "score": float(score),
            "summary": summary,
            "enhancers": design.enhancers.short_name,
            "design_json": json.dumps(design.to_dict(), sort_keys=True),
        }
        try:
            self._store(self.results_collection_name).add_texts([text], metadatas=[metadata], ids=[entry_id])
        except AutoGAIError:
            raise
        except Exception as exc:
            raise self._embedding_guard("storing a past result", exc) from exc
        return entry_id

    def query_results(self, task_id: str | None, text: str, k: int = 3) -> list[PastResult]:
        """Past designs most similar to ``text`` (for ``task_id``, or every task when None), best first."""
        if k < 1:
            raise ConfigError(f"k={k} must be at least 1")
        store = self._store(self.results_collection_name)
        if store._collection.count() == 0:
            return []
        where = {"task_id": task_id} if task_id is not None else None
        try:
            hits = store.similarity_search_with_score(text or " ", k=k, filter=where)
        except AutoGAIError:
            raise
        except Exception as exc:
            raise self._embedding_guard("querying past results", exc) from exc
        out = []
        for document, distance in hits:
            meta = document.metadata or {}
            out.append(
                PastResult(
                    task_id=str(meta.get("task_id", "")),
                    design=json.loads(str(meta.get("design_json", "{}"))),
                    score=float(meta.get("score", float("nan"))),
                    summary=str(meta.get("summary", "")),
                    relevance=min(1.0, max(0.0, 1.0 - float(distance))),
                )
            )
        return out


def chunks_by_document(chunks: Iterable[RetrievedChunk]) -> dict[str, list[RetrievedChunk]]:
    """Group retrieval hits by document id, keeping rank order (handy for prompts and citations)."""
    grouped: dict[str, list[RetrievedChunk]] = defaultdict(list)
    for chunk in chunks:
        grouped[chunk.doc_id].append(chunk)
    return dict(grouped)
