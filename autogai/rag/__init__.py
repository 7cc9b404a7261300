"""The RAG layer: knowledge base, prompts, LLM backends and proposers (the only layer importing
langchain and chromadb).

Import the submodules you need; this package imports nothing so ``import autogai`` stays cheap:

- :mod:`autogai.rag.documents` — knowledge files: front matter, ``reward-term`` blocks, heading-aware chunks.
- :mod:`autogai.rag.embeddings` — ``make_embeddings("local" | "hash" | "ollama:<m>" | "openai:<m>")``.
- :mod:`autogai.rag.knowledge` — :class:`~autogai.rag.knowledge.KnowledgeBase` (Chroma store, ingest,
  hybrid retrieval, past results).
- :mod:`autogai.rag.prompts`, :mod:`autogai.rag.llm` — prompt templates and LLM backends.
- :mod:`autogai.rag.replies` — the one reader of LLM replies (reasoning blocks, fences, JSON, prose).
- :mod:`autogai.rag.proposal` (the interface and shared steps), :mod:`autogai.rag.offline_proposer`,
  :mod:`autogai.rag.llm_proposer`, and :mod:`autogai.rag.proposers` (``make_proposer`` picks one).
"""
