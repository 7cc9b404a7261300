"""Retrieval quality on the shipped knowledge base with the real local embeddings (all-MiniLM-L6-v2).

The store is built once per session in a temporary directory by the conftest's ``kb`` fixture (loading the
model and embedding ~200 chunks is most of this file's run time); every test here reads it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autogai.cli.main import main
from autogai.rag.knowledge import DEFAULT_LEXICAL_WEIGHT, KnowledgeBase

# (query, document written for it). The first four are the brief's; the identifier-style ones are those
# the lexical (BM25) half of the score exists for.
QUERIES = [
    ("potential-based shaping preserves the optimal policy", "principle-potential-based-shaping"),
    ("GAN critic adversarial Bellman target", "enhancer-gan-critic"),
    ("UAV transmit power cost", "term-uav-power-cost"),
    ("pendulum torque penalty", "term-pendulum-torque-cost"),
    ("diffusion actor denoising steps for the policy", "enhancer-diffusion-actor"),
    ("agent switches the transmitters off because the power penalty dominates", "pitfall-uav-power-off"),
    ("one reward component is orders of magnitude larger than the others", "pitfall-scale-mismatch"),
    ("near-field versus far-field beamforming distance", "case-wireless-relay-near-field-physics"),
    ("time limit truncation versus termination bootstrapping", "principle-termination-truncation"),
    ("which enhancers for discrete MultiDiscrete action spaces", "enhancer-action-space-selection"),
    ("relay_violation", "term-uav-relay-violation-penalty"),
    ("Fig. 4 results", "enhancer-paper-fig4-findings"),
]


KB_EMBEDDINGS = "local"  # the conftest's kb fixture: the shipped knowledge base with the real local model


@pytest.fixture(scope="module")
def store(kb: KnowledgeBase) -> Path:
    return kb.persist_dir


def _reciprocal_rank(ranked_doc_ids: list[str], doc_id: str) -> float:
    return 1.0 / (ranked_doc_ids.index(doc_id) + 1) if doc_id in ranked_doc_ids else 0.0


@pytest.mark.parametrize(("query", "doc_id"), QUERIES, ids=[q[1] for q in QUERIES])
def test_topic_queries_find_their_document_in_the_top_3(kb: KnowledgeBase, query: str, doc_id: str) -> None:
    hits = kb.query(query, k=3)
    assert doc_id in [h.doc_id for h in hits], [(h.chunk_id, round(h.score, 3)) for h in hits]
    assert all(0.0 <= h.score <= 1.0 for h in hits)


def test_blending_bm25_does_not_hurt_the_ranking(kb: KnowledgeBase) -> None:
    """Mean reciprocal rank of the target document, blended score against the cosine similarity alone
    (both read off the same hits: every chunk is a candidate, ``vector_score`` is the cosine part)."""
    assert kb.lexical_weight == DEFAULT_LEXICAL_WEIGHT > 0
    blended = vector = 0.0
    for query, doc_id in QUERIES:
        hits = kb.query(query, k=kb.count())
        blended += _reciprocal_rank([h.doc_id for h in hits], doc_id)
        by_vector = sorted(hits, key=lambda h: -h.vector_score)
        vector += _reciprocal_rank([h.doc_id for h in by_vector], doc_id)
    assert blended >= vector - 0.02 * len(QUERIES), (blended / len(QUERIES), vector / len(QUERIES))


def test_filters_on_the_real_knowledge_base(kb: KnowledgeBase) -> None:
    terms = kb.query(
        "penalty for leaving the allowed area", k=5, kinds="reward-term", task_id="uav-nearfield"
    )
    assert terms and all(h.kind == "reward-term" for h in terms)
    assert all(not h.doc_id.startswith("term-pendulum") for h in terms)
    pendulum = kb.query("cost on the control effort", k=5, task_id="pendulum")
    assert pendulum and all(not h.doc_id.startswith("term-uav") for h in pendulum)


def test_cli_on_the_real_knowledge_base(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Re-ingesting the unchanged shipped knowledge base embeds nothing.
    assert main(["kb", "ingest", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"added:\s+0\b", out) and "0 chunks embedded" in out
    assert main(["kb", "query", "pendulum torque penalty", "-k", "3", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "term-pendulum-torque-cost#" in out.split("\n2. ")[0]
    assert main(["kb", "list", "--store", str(store)]) == 0
    assert "enhancer-gan-critic" in capsys.readouterr().out
