"""Pick a proposer from an ``--llm`` spec: :func:`make_proposer`.

- :class:`~autogai.rag.offline_proposer.OfflineProposer` (the default): deterministic, retrieval-driven
  composition of reward programs from the knowledge base; no language model.
- :class:`~autogai.rag.llm_proposer.LLMProposer`: any LangChain chat model (propose, reflect, repair).

Both implement :class:`~autogai.rag.proposal.Proposer`. Proposals are written to a run directory by
:meth:`autogai.pipeline.rundir.RunDirectory.write_proposal`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autogai.rag.knowledge import KnowledgeBase
    from autogai.rag.proposal import Proposer


def make_proposer(
    llm: str | None = None,
    *,
    base_url: str | None = None,
    temperature: float = 0.7,
    kb: KnowledgeBase | None,
    cache_dir: Path | None = None,
    ledger_path: Path | None = None,
    timeout_s: float = 60.0,
    max_retries: int = 3,
    seed: int = 0,
    **options: Any,
) -> Proposer:
    """``llm`` None/``offline`` -> :class:`OfflineProposer`; ``provider:model`` -> :class:`LLMProposer`.

    Extra ``options`` go to the LLM backend (``backoff_s``, ``structured``, ``context_tokens``,
    ``max_concurrency``, ``max_tokens``, ``progress``, ``stream``) or the LLM proposer (``max_repair_rounds``,
    ``validation_kwargs``, ``retrieval_k``, ``prompts_directory``). ``None`` values mean "the default".
    """
    if llm is None or llm.strip().lower() in ("", "offline", "none"):
        from autogai.rag.offline_proposer import OfflineProposer

        return OfflineProposer(kb, seed=seed, validation_kwargs=options.get("validation_kwargs"))
    from autogai.rag.llm import ChatBackend
    from autogai.rag.llm_proposer import LLMProposer

    options = {k: v for k, v in options.items() if v is not None}
    backend_keys = (
        "backoff_s",
        "structured",
        "context_tokens",
        "max_concurrency",
        "max_tokens",
        "progress",
        "stream",
        "chat_model",
    )
    backend = ChatBackend(
        llm,
        base_url=base_url,
        temperature=temperature,
        timeout_s=timeout_s,
        max_retries=max_retries,
        cache_dir=cache_dir,
        ledger_path=ledger_path,
        **{k: v for k, v in options.items() if k in backend_keys},
    )
    proposer_keys = ("max_repair_rounds", "validation_kwargs", "retrieval_k", "prompts_directory")
    return LLMProposer(backend, kb, seed=seed, **{k: v for k, v in options.items() if k in proposer_keys})
