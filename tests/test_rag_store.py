"""The Chroma-backed KnowledgeBase with the offline hashing embeddings: ingest bookkeeping, filters,
past results and the ``autogai kb`` commands. Fast: no model is loaded."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from rag_helpers import FIXTURE_DOCS, MALFORMED, SHAPING, write_docs

from autogai.cli.main import main
from autogai.core.errors import ConfigError
from autogai.core.types import Design, EnhancerCombo
from autogai.rag.embeddings import HashingEmbeddings, embedding_slug, make_embeddings, parse_embedding_spec
from autogai.rag.knowledge import KnowledgeBase
from autogai.rag.lexical import BM25, lexical_tokens


def _kb(tmp_path: Path, source: Path | None = None, **kwargs) -> KnowledgeBase:
    return KnowledgeBase(tmp_path / "store", embeddings="hash", source_dir=source, **kwargs)


def _chunk_ids(kb: KnowledgeBase, doc_id: str) -> list[str]:
    return sorted(i for i in kb._store().get()["ids"] if i.startswith(doc_id + "#"))


def test_hash_embeddings_are_deterministic_unit_vectors() -> None:
    emb = make_embeddings("hash:64")
    assert isinstance(emb, HashingEmbeddings)
    a = emb.embed_query("transmit power cost")
    assert a == HashingEmbeddings(64).embed_documents(["transmit power cost"])[0]
    assert len(a) == 64 and math.isclose(sum(x * x for x in a), 1.0)
    assert emb.embed_query("") != [0.0] * 64


@pytest.mark.parametrize("spec", ["nope", "ollama", "openai:", "hash:3", "local:other"])
def test_bad_embedding_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError, match="embeddings"):
        parse_embedding_spec(spec)


def test_embedding_slugs_are_chroma_safe() -> None:
    assert embedding_slug("local") == "local-all-minilm-l6-v2"
    assert embedding_slug("hash") == "hash-512"
    long = embedding_slug("openai:text-embedding-3-large-with-a-very-long-deployment-name-v2")
    assert len(long) <= 40 and long[0].isalnum() and long[-1].isalnum()


def test_openai_embeddings_need_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_embeddings("openai:text-embedding-3-small")


def test_bm25_prefers_documents_with_rare_query_terms() -> None:
    assert "power_total_mw" in lexical_tokens("m.power_total_mw") and "mw" in lexical_tokens("power_total_mw")
    assert lexical_tokens("Penalties rewards") == ["penalty", "reward"]
    bm25 = BM25(["the gan critic", "the diffusion actor", "reward scale for the critic"])
    scores = bm25.scores("GAN critic")
    assert scores[0] > scores[2] > scores[1] == 0.0


def test_reingest_of_unchanged_files_adds_nothing(tmp_path: Path) -> None:
    source = write_docs(tmp_path / "kb")
    kb = _kb(tmp_path, source)
    first = kb.ingest()
    assert sorted(first.added) == sorted(Path(n).stem for n in FIXTURE_DOCS)
    assert first.skipped == [] and first.chunks_added == kb.count() > 0
    count = kb.count()
    # A fresh instance on the same store (a new process, as far as the store can tell) sees it all.
    second = _kb(tmp_path, source).ingest()
    assert second.added == second.updated == second.removed == []
    assert sorted(second.unchanged) == sorted(first.added)
    assert second.chunks_added == 0 and not second.changed
    assert _kb(tmp_path, source).count() == count


def test_changed_file_replaces_its_chunks_and_removed_file_is_deleted(tmp_path: Path) -> None:
    source = write_docs(tmp_path / "kb")
    kb = _kb(tmp_path, source)
    kb.ingest()
    assert _chunk_ids(kb, "principle-shaping") == ["principle-shaping#0", "principle-shaping#1"]
    gan_chunks = _chunk_ids(kb, "enhancer-gan")

    # Shrink the shaping document to one section: exactly one chunk with the new text must remain.
    (source / "principle-shaping.md").write_text(SHAPING.split("## When it fails")[0], encoding="utf-8")
    (source / "pitfall-hacking.md").unlink()
    report = kb.ingest()
    assert report.updated == ["principle-shaping"]
    assert report.removed == ["pitfall-hacking"]
    assert report.added == [] and report.chunks_added == 1
    assert _chunk_ids(kb, "principle-shaping") == ["principle-shaping#0"]
    assert _chunk_ids(kb, "pitfall-hacking") == []
    assert _chunk_ids(kb, "enhancer-gan") == gan_chunks
    assert all("ride in circles" not in text for text in kb._store().get()["documents"])
    listed = {d.doc_id: d for d in kb.list_ingested()}
    assert listed["principle-shaping"].chunks == 1
    assert "pitfall-hacking" not in listed


def test_malformed_file_is_skipped_and_keeps_its_previous_chunks(tmp_path: Path) -> None:
    source = write_docs(tmp_path / "kb")
    kb = _kb(tmp_path, source)
    kb.ingest()
    before = _chunk_ids(kb, "principle-shaping")
    (source / "principle-shaping.md").write_text(MALFORMED, encoding="utf-8")
    (source / "new-broken.md").write_text(MALFORMED, encoding="utf-8")
    report = kb.ingest()
    assert {path.name for path, _ in report.skipped} == {"principle-shaping.md", "new-broken.md"}
    assert report.removed == [] and report.added == []
    assert _chunk_ids(kb, "principle-shaping") == before


def test_other_directories_are_left_alone(tmp_path: Path) -> None:
    kb = _kb(tmp_path)
    kb.ingest(write_docs(tmp_path / "a", {"principle-shaping.md": SHAPING}))
    report = kb.ingest(write_docs(tmp_path / "b", {"enhancer-gan.md": FIXTURE_DOCS["enhancer-gan.md"]}))
    assert report.removed == []
    assert {d.doc_id for d in kb.list_ingested()} == {"principle-shaping", "enhancer-gan"}


def test_query_scores_and_filters(tmp_path: Path) -> None:
    kb = _kb(tmp_path, write_docs(tmp_path / "kb"))
    kb.ingest()
    hits = kb.query("adversarial Bellman target of the GAN critic", k=3)
    assert hits[0].doc_id == "enhancer-gan"
    assert hits[0].chunk_id == "enhancer-gan#0" and hits[0].kind == "enhancer-guide"
    assert hits[0].title == "GAN critic for TD3" and hits[0].path.endswith("enhancer-gan.md")
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    terms = kb.query("cost", k=10, kinds="reward-term")
    assert terms and {h.kind for h in terms} == {"reward-term"}
    mixed = kb.query("cost", k=10, kinds=["reward-term", "pitfall"])
    assert {h.kind for h in mixed} == {"reward-term", "pitfall"}

    pendulum = kb.query("cost of the action", k=20, task_id="pendulum")
    assert "term-uav-power" not in {h.doc_id for h in pendulum}
    assert {"term-pendulum-torque", "principle-shaping"} <= {h.doc_id for h in pendulum}

    one_each = kb.query("power cost", k=10, max_per_document=1)
    assert len({h.doc_id for h in one_each}) == len(one_each)

    with pytest.raises(ConfigError, match="unknown document kind"):
        kb.query("x", kinds="essay")


def test_query_on_empty_store_returns_nothing(tmp_path: Path) -> None:
    assert _kb(tmp_path).query("anything") == []


def test_ensure_ingested_and_documents(tmp_path: Path) -> None:
    source = write_docs(tmp_path / "kb")
    kb = _kb(tmp_path, source)
    assert kb.ensure_ingested().added
    assert not kb.ensure_ingested().changed
    assert {d.id for d in kb.documents()} == {Path(n).stem for n in FIXTURE_DOCS}
    assert kb.document("enhancer-gan").recommends["discrete"] == ["gan", "plain"]
    assert [t.name for t in kb.reward_terms("pendulum")] == ["torque"]
    with pytest.raises(ConfigError, match="no knowledge document"):
        kb.document("nope")


def test_results_collection_round_trip(tmp_path: Path) -> None:
    kb = _kb(tmp_path)
    assert kb.query_results("uav-nearfield", "anything") == []
    good = Design(
        reward_source="def compute_reward(m, p):\n    return m.rate_df, {'rate': m.rate_df}\n",
        enhancers=EnhancerCombo.parse("gdm+gan"),
        rationale="rate objective with a diffusion actor",
        name="rate-only",
    )
    other = Design(
        reward_source="def compute_reward(m, p):\n    return -m.power_total_mw, {}\n", name="power"
    )
    pendulum = Design(reward_source="def compute_reward(m, p):\n    return m.env_reward, {}\n", name="native")
    kb.add_result("uav-nearfield", good, 42.5, "high relay rate, feasible 98% of slots")
    kb.add_result("uav-nearfield", other, -3.0, "switched the transmitters off")
    kb.add_result("pendulum", pendulum, -150.0, "swings up in 60 steps")
    kb.add_result("uav-nearfield", good, 44.0, "high relay rate, feasible 99% of slots")  # replaces

    results = kb.query_results("uav-nearfield", "relay rate feasible", k=3)
    assert len(results) == 2 and {r.task_id for r in results} == {"uav-nearfield"}
    best = results[0]
    assert best.score == 44.0 and best.summary.endswith("99% of slots")
    assert best.to_design() == good and best.design["id"] == good.id
    assert 0.0 <= best.relevance <= 1.0
    assert len(kb.query_results(None, "swings up", k=5)) == 3
    with pytest.raises(ConfigError):
        kb.add_result("pendulum", pendulum, float("nan"), "")


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_kb_ingest_query_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_docs(tmp_path / "kb")
    (source / "broken.md").write_text(MALFORMED, encoding="utf-8")
    store = ["--store", str(tmp_path / "store"), "--embeddings", "hash"]

    assert main(["kb", "ingest", str(source), *store]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"added:\s+{len(FIXTURE_DOCS)}\b", out)
    assert re.search(r"skipped:\s+1\b", out) and "broken.md: invalid YAML front matter" in out

    assert main(["kb", "ingest", str(source), *store]) == 0
    out = capsys.readouterr().out
    assert re.search(r"added:\s+0\b", out) and re.search(rf"unchanged:\s+{len(FIXTURE_DOCS)}\b", out)
    assert "0 chunks embedded" in out

    assert main(["kb", "query", "GAN critic adversarial Bellman target", "-k", "2", *store]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. ") and "enhancer-gan#0" in out and "GAN critic for TD3" in out
    assert "3. " not in out

    assert main(["kb", "query", "cost", "--kind", "reward-term", "--task", "pendulum", *store]) == 0
    out = capsys.readouterr().out
    assert "term-pendulum-torque#0" in out and "term-uav-power" not in out

    assert main(["kb", "list", *store]) == 0
    out = capsys.readouterr().out
    assert "term-uav-power" in out and "reward-term" in out and f"{len(FIXTURE_DOCS)} documents" in out


def test_cli_kb_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ["--store", str(tmp_path / "store"), "--embeddings", "hash"]
    assert main(["kb", "ingest", str(tmp_path / "missing"), *store]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["kb", "query", "x", "--kind", "essay", *store, "--embeddings", "hash"]) != 0
    assert main(["kb", "list", "--store", str(tmp_path / "store"), "--embeddings", "bogus"]) == 1
    assert "unknown embeddings" in capsys.readouterr().err
    assert main(["kb", "list", *store]) == 1  # listing never creates a store at a mistyped path
    assert "no knowledge-base store" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()
