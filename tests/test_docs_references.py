"""Every document the code and the docs point to is in the repository: docstrings cite docs/<page>.md
pages that exist, never design notes kept elsewhere, and the docs' own relative links resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "autogai").rglob("*.py"))
PAGES = sorted((ROOT / "docs").glob("*.md"))
# A bare capitalised Markdown name (ARCHITECTURE.md, UAV_ENV.md) is a design note that is not shipped.
_OUTSIDE_NOTE = re.compile(r"\b(?!README\b)[A-Z][A-Z_]+\.md\b")
_DOCS_REF = re.compile(r"\bdocs/([\w-]+\.md)")
_MARKDOWN_LINK = re.compile(r"\]\((?!https?://|#)([^)#\s]+)")
_TEST_REF = re.compile(r"\btests/(test_\w+\.py)::(test_\w+)")


def _docs_references() -> list[tuple[str, str]]:
    found = []
    for path in [*SOURCES, ROOT / "README.md", ROOT / "knowledge_base" / "README.md"]:
        for page in _DOCS_REF.findall(path.read_text(encoding="utf-8")):
            found.append((str(path.relative_to(ROOT)), page))
    return sorted(set(found))


@pytest.mark.parametrize(("where", "page"), _docs_references(), ids=lambda value: str(value))
def test_cited_docs_pages_exist(where: str, page: str) -> None:
    assert (ROOT / "docs" / page).is_file(), f"{where} cites docs/{page}, which is not in the repository"


def test_no_module_cites_a_design_note_outside_the_repository() -> None:
    cited = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in SOURCES
        for name in _OUTSIDE_NOTE.findall(path.read_text(encoding="utf-8"))
    }
    assert not cited, sorted(cited)


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_relative_links_in_the_docs_resolve(page: Path) -> None:
    broken = [
        target
        for target in _MARKDOWN_LINK.findall(page.read_text(encoding="utf-8"))
        if not (page.parent / target).exists()
    ]
    assert not broken, f"{page.name} links to missing files: {broken}"


def test_the_docs_cover_architecture_rewards_search_and_task_cards() -> None:
    names = {page.name for page in PAGES}
    assert {"architecture.md", "reward_programs.md", "search.md", "task_cards.md"} <= names
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for layer in (
        "cli",
        "pipeline",
        "search",
        "rag",
        "training",
        "agents",
        "rewards",
        "tasks",
        "envs",
        "core",
    ):
        assert f"`autogai.{layer}`" in architecture, layer


def test_tests_named_in_the_docs_exist() -> None:
    """The docs name the tests that keep their claims true (docs/architecture.md); a renamed or deleted test
    must not leave a claim pointing at nothing."""
    named = {
        (page.name, file, test)
        for page in [*PAGES, ROOT / "README.md"]
        for file, test in _TEST_REF.findall(page.read_text(encoding="utf-8"))
    }
    assert any(page == "architecture.md" for page, _, _ in named)
    missing = [
        f"{page}: tests/{file}::{test}"
        for page, file, test in sorted(named)
        if not (ROOT / "tests" / file).is_file()
        or f"def {test}(" not in (ROOT / "tests" / file).read_text(encoding="utf-8")
    ]
    assert missing == [], missing
