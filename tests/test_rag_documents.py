"""Parsing, validation and splitting of knowledge documents (no embeddings, no store)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rag_helpers import FIXTURE_DOCS, MALFORMED, POWER_TERM, SHAPING, write_docs

from autogai.core.errors import ConfigError
from autogai.core.paths import knowledge_base_dir
from autogai.rag.chunking import split_by_headings
from autogai.rag.documents import KINDS, NO_FRONT_MATTER, load_documents, parse_document
from autogai.rag.markdown import KnowledgeDocumentError


def test_front_matter_fields_are_parsed(tmp_path: Path) -> None:
    docs, skipped = load_documents(write_docs(tmp_path))
    assert skipped == []  # README.md is ignored without a report
    by_id = {doc.id: doc for doc in docs}
    assert sorted(by_id) == sorted(Path(name).stem for name in FIXTURE_DOCS)
    shaping = by_id["principle-shaping"]
    assert shaping.title == "Potential-based shaping"
    assert shaping.kind == "principle"
    assert shaping.tags == ["shaping", "theory"]
    assert shaping.applies_to == ["any"]
    assert shaping.sources[0].startswith("Ng, Harada, Russell")
    assert shaping.meta["kind"] == "principle"
    assert by_id["pitfall-hacking"].applies_to == ["any"]  # a bare "any" becomes a list
    assert len(shaping.content_hash) == 64


def test_reward_term_blocks_are_parsed(tmp_path: Path) -> None:
    docs, _ = load_documents(write_docs(tmp_path))
    power = next(doc for doc in docs if doc.id == "term-uav-power")
    assert [t.name for t in power.reward_terms] == ["power", "power_norm"]
    term = power.reward_terms[0]
    assert term.expression == '-p["power_weight"] * m.power_total_mw'
    assert term.params == {"power_weight": {"default": 0.005, "low": 0.0005, "high": 0.05, "log": True}}
    assert term.requires == ["power_total_mw"]
    assert term.applies_to == ["uav-nearfield"]
    assert term.role == "regulariser"
    assert term.doc_id == "term-uav-power"
    # Missing requires/applies_to are derived from the expression and the document.
    norm = power.reward_terms[1]
    assert norm.requires == ["power_total_mw"]
    assert norm.applies_to == ["uav-nearfield"]
    assert norm.applies_to_task("uav-nearfield") and not norm.applies_to_task("pendulum")
    torque = next(doc for doc in docs if doc.id == "term-pendulum-torque").reward_terms[0]
    assert torque.requires == []  # m.action is always available


def test_recommends_is_parsed_to_canonical_short_names(tmp_path: Path) -> None:
    docs, _ = load_documents(write_docs(tmp_path))
    guide = next(doc for doc in docs if doc.kind == "enhancer-guide")
    assert guide.recommends == {"continuous": ["gdm+gan", "gdm", "plain"], "discrete": ["gan", "plain"]}


def test_malformed_file_is_reported_by_name_and_others_load(tmp_path: Path) -> None:
    write_docs(tmp_path)
    (tmp_path / "broken.md").write_text(MALFORMED, encoding="utf-8")
    (tmp_path / "notes.md").write_text("# Just notes\n\nNo front matter.\n", encoding="utf-8")
    docs, skipped = load_documents(tmp_path)
    assert len(docs) == len(FIXTURE_DOCS)
    reasons = {path.name: reason for path, reason in skipped}
    assert set(reasons) == {"broken.md", "notes.md"}
    assert "invalid YAML front matter" in reasons["broken.md"]
    assert reasons["notes.md"] == NO_FRONT_MATTER


BAD_TERM = POWER_TERM.replace(
    "role: regulariser\n```\n\n## Power cost: when", "role: bonus\n```\n\n## Power cost: when"
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (SHAPING.replace("kind: principle", "kind: essay"), "kind 'essay' is not valid"),
        (SHAPING.replace("sources: [", "references: ["), "misses required field(s): sources"),
        (SHAPING.replace("title: Potential-based shaping\n", ""), "misses required field(s): title"),
        (BAD_TERM, "role 'bonus' is not valid"),
        (
            POWER_TERM.replace('p["power_weight"] * m', 'p["powr_weight"] * m'),
            "undeclared param(s) ['powr_weight']",
        ),
        (
            POWER_TERM.replace("requires: [power_total_mw]", "requires: [rate_df]"),
            "m.power_total_mw not listed",
        ),
        (
            POWER_TERM.replace("* m.power_total_mw\n", "* (m.power_total_mw\n"),
            "expression is not valid Python",
        ),
        (
            POWER_TERM.replace("default: 0.005, low: 0.0005", "default: 0.5, low: 0.0005"),
            "low <= default <= high",
        ),
        (POWER_TERM.replace("name: power_norm", "name: power"), "used twice: power"),
        (SHAPING.replace("kind: principle", "kind: reward-term"), "at least one ```reward-term block"),
        (
            SHAPING.replace("applies_to: [any]", "applies_to: [any]\nrecommends: {continuous: [gan, warp]}"),
            "unknown enhancer 'warp'",
        ),
        ("---\ntitle: x\n", "never closed"),
    ],
)
def test_invalid_documents_name_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "doc.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeDocumentError) as info:
        parse_document(path)
    assert reason in str(info.value)


def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_documents(tmp_path / "nope")


def test_split_by_headings_keeps_title_and_section_in_each_chunk(tmp_path: Path) -> None:
    docs, _ = load_documents(write_docs(tmp_path))
    shaping = next(doc for doc in docs if doc.id == "principle-shaping")
    chunks = split_by_headings(shaping)
    assert [c.id for c in chunks] == ["principle-shaping#0", "principle-shaping#1"]
    assert [c.heading for c in chunks] == ["The shaping formula", "When it fails"]
    for chunk in chunks:
        assert chunk.text.startswith("Potential-based shaping\n" + chunk.heading + "\n\n")
        assert "# Potential-based shaping" not in chunk.text  # the H1 is not repeated as content


def test_long_sections_are_capped_and_code_blocks_are_not_headings(tmp_path: Path) -> None:
    paragraph = "Reward scale matters for TD3 because the critic regresses returns. " * 6
    body = "## Intro\n\n" + "\n\n".join([paragraph] * 12)
    body += "\n\n### Details\n\n```python\n# not a heading\nx = 1\n```\n\n#### Deeper heading stays\n\ntext\n"
    text = "---\ntitle: Long\nkind: pitfall\ntags: [x]\napplies_to: [any]\nsources: [s]\n---\n" + body
    path = tmp_path / "long.md"
    path.write_text(text, encoding="utf-8")
    chunks = split_by_headings(parse_document(path), max_chars=1000)
    intro = [c for c in chunks if c.heading == "Intro"]
    assert len(intro) > 1
    assert all(len(c.text) <= 1000 for c in chunks)
    details = [c for c in chunks if c.heading == "Intro > Details"]
    assert len(details) == 1
    assert "# not a heading" in details[0].text and "#### Deeper heading stays" in details[0].text
    # Every word of the body survives the split.
    joined = " ".join(c.text for c in chunks)
    assert joined.count("critic regresses returns") == 12 * 6


def test_content_hash_changes_with_content(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text(SHAPING, encoding="utf-8")
    first = parse_document(path).content_hash
    assert parse_document(path).content_hash == first
    path.write_text(SHAPING + "\nMore.\n", encoding="utf-8")
    assert parse_document(path).content_hash != first


def test_shipped_knowledge_base_parses_cleanly() -> None:
    directory = knowledge_base_dir()
    assert directory.is_dir(), f"the knowledge base ships in the repository: {directory} is missing"
    docs, skipped = load_documents(directory)
    assert skipped == [], skipped
    assert {doc.kind for doc in docs} <= set(KINDS)
    for doc in docs:
        assert split_by_headings(doc)
        if doc.kind == "reward-term":
            assert doc.reward_terms, doc.id


def test_long_lists_are_split_between_items(tmp_path: Path) -> None:
    items = [
        f"- Item {i}: a reward term with a long explanation\n  that wraps onto a second line here."
        for i in range(40)
    ]
    text = "---\ntitle: List\nkind: pitfall\ntags: [x]\napplies_to: [any]\nsources: [s]\n---\n## Items\n\n"
    path = tmp_path / "list.md"
    path.write_text(text + "\n".join(items) + "\n", encoding="utf-8")
    chunks = split_by_headings(parse_document(path), max_chars=500)
    assert len(chunks) > 1
    for chunk in chunks:
        body = chunk.text.split("\n\n", 1)[1]
        assert body.startswith("- Item ") and body.endswith("second line here.")
