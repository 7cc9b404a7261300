"""``autogai kb ingest|query|list``: build, query and inspect the knowledge base.

langchain, chromadb and sentence-transformers are imported inside the commands, so ``autogai --help``
stays cheap.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from autogai.cli._render import plain, snippet

if TYPE_CHECKING:
    from autogai.rag.knowledge import KnowledgeBase

_STORE_HELP = "Vector-store directory (default: <cache>/kb, see AUTOGAI_CACHE)."
_EMBEDDINGS_HELP = "Embeddings: local (bundled all-MiniLM-L6-v2), hash, ollama:<model> or openai:<model>."


MAX_K = 1_000


def _knowledge_base(
    store: Path | None, embeddings: str, source_dir: Path | None = None, *, must_exist: bool = False
) -> KnowledgeBase:
    """The knowledge base; with ``must_exist`` a store directory that is not there is an error line
    (listing must not create an empty store at a mistyped path)."""
    from autogai.core.errors import ConfigError, StorageError
    from autogai.core.validation import check_text
    from autogai.rag.knowledge import KnowledgeBase

    check_text("--embeddings", embeddings)
    if store is not None and not str(store).strip():
        raise ConfigError("--store is empty; leave the option out to use the default store")
    if source_dir is not None and source_dir.is_file():
        raise ConfigError(
            f"{str(source_dir)!r} is a file; kb ingest takes a folder of Markdown files "
            f"(e.g. {str(source_dir.parent)!r})"
        )
    kb = KnowledgeBase(persist_dir=store, embeddings=embeddings, source_dir=source_dir)
    if must_exist and not kb.persist_dir.is_dir():
        raise StorageError(
            f"no knowledge-base store at {str(kb.persist_dir)!r}; build one with "
            f"`autogai kb ingest --store {kb.persist_dir}`"
        )
    return kb


def ingest(
    directory: Path | None = typer.Argument(
        None, help="Folder of Markdown knowledge files (default: the shipped knowledge_base/)."
    ),
    store: Path | None = typer.Option(None, "--store", help=_STORE_HELP),
    embeddings: str = typer.Option("local", "--embeddings", help=_EMBEDDINGS_HELP),
) -> int:
    """Embed new and changed documents into the store; report skipped (malformed) files with the reason."""
    kb = _knowledge_base(store, embeddings, source_dir=directory)
    report = kb.ingest(directory)
    typer.echo(plain(f"knowledge base {report.directory} -> {kb.persist_dir} [{kb.collection_name}]"))
    for label, ids in (
        ("added", report.added),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
        ("removed", report.removed),
    ):
        typer.echo(f"  {label + ':':10} {len(ids):3}")
        if ids and label != "unchanged":
            typer.echo(
                plain(
                    textwrap.fill(
                        ", ".join(ids), width=100, initial_indent=" " * 6, subsequent_indent=" " * 6
                    ),
                    keep_newlines=True,
                )
            )
    typer.echo(f"  {'skipped:':10} {len(report.skipped):3}")
    for path, reason in report.skipped:
        typer.echo(f"    {plain(path.name)}: {plain(reason)}")
    typer.echo(f"  {report.chunks_added} chunks embedded, {kb.count()} chunks in the store")
    return 0


def query(
    text: str = typer.Argument(..., help="What to look for (e.g. a task description plus feedback)."),
    k: int = typer.Option(5, "-k", "--k", min=1, help="Number of chunks to return."),
    kind: list[str] = typer.Option(
        [],
        "--kind",
        help="Only this document kind (repeatable): principle, reward-term, enhancer-guide, pitfall, case-study.",
    ),
    task: str | None = typer.Option(
        None, "--task", help="Only documents that apply to this task id (or to any task)."
    ),
    store: Path | None = typer.Option(None, "--store", help=_STORE_HELP),
    embeddings: str = typer.Option("local", "--embeddings", help=_EMBEDDINGS_HELP),
) -> int:
    """Retrieve the chunks most relevant to TEXT, with their source ids and scores."""
    from autogai.core.validation import check_count, check_text
    from autogai.rag.knowledge import check_kinds

    check_text("TEXT", text)
    check_text("--task", task)
    check_count("-k", k, high=MAX_K, why="chunks returned by one query")
    check_kinds(kind)
    kb = _knowledge_base(store, embeddings)
    if kb.count() == 0:
        typer.echo(plain(f"the store is empty: ingesting {kb.source_dir} first"), err=True)
        kb.ensure_ingested()
    hits = kb.query(text, k=k, kinds=kind or None, task_id=task)
    if not hits:
        typer.echo("no matching chunks")
        return 0
    for rank, hit in enumerate(hits, start=1):
        where = f" > {hit.heading}" if hit.heading else ""
        typer.echo(
            f"{rank}. {hit.score:.3f}  {plain(hit.chunk_id)}  [{plain(hit.kind)}]  (vector "
            f"{hit.vector_score:.3f}, lexical {hit.lexical_score:.3f})"
        )
        typer.echo(f"   {plain(hit.title + where)}")
        typer.echo(f"   {plain(snippet(hit.text, hit.title, hit.heading))}")
    return 0


def list_documents(
    store: Path | None = typer.Option(None, "--store", help=_STORE_HELP),
    embeddings: str = typer.Option("local", "--embeddings", help=_EMBEDDINGS_HELP),
) -> int:
    """List the documents in the store with their kind and chunk count."""
    kb = _knowledge_base(store, embeddings, must_exist=True)
    documents = kb.list_ingested()
    if not documents:
        typer.echo(
            plain(f"the store {kb.persist_dir} [{kb.collection_name}] is empty; run `autogai kb ingest`")
        )
        return 0
    width = max(len(plain(d.doc_id)) for d in documents)
    typer.echo(f"{'document':{width}}  {'kind':14}  chunks  title")
    for doc in documents:
        typer.echo(f"{plain(doc.doc_id):{width}}  {plain(doc.kind):14}  {doc.chunks:6}  {plain(doc.title)}")
    total = sum(d.chunks for d in documents)
    typer.echo(plain(f"{len(documents)} documents, {total} chunks in {kb.persist_dir}"))
    return 0


def register(app: typer.Typer) -> None:
    kb_app = typer.Typer(
        name="kb",
        help="Build, query and inspect the knowledge base.",
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
    )
    kb_app.command("ingest")(ingest)
    kb_app.command("query")(query)
    kb_app.command("list")(list_documents)
    app.add_typer(kb_app, name="kb")
