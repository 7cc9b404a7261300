"""The RAG layer: knowledge base, prompts, LLM backends and proposers (the only layer importing
langchain and chromadb).

Import the submodules you need; this package imports nothing so ``import autogai`` stays cheap:

- :mod:`autogai.rag.documents` — knowledge files (:mod:`~autogai.rag.markdown`: front matter and fences),
  their ``reward-term`` blocks (:mod:`~autogai.rag.reward_terms`) and heading-aware chunks
  (:mod:`~autogai.rag.chunking`).
- :mod:`autogai.rag.embeddings` — ``make_embeddings("local" | "hash" | "ollama:<m>" | "openai:<m>")``.
- :mod:`autogai.rag.knowledge` — :class:`~autogai.rag.knowledge.KnowledgeBase` (Chroma store, ingest,
  hybrid retrieval with :mod:`~autogai.rag.lexical` BM25, past results).
- :mod:`autogai.rag.prompts`, :mod:`autogai.rag.llm` — prompt templates and LLM backends.
- :mod:`autogai.rag.replies` — the one reader of LLM replies (reasoning blocks, fences, JSON, prose).
- :mod:`autogai.rag.proposal` (the interface and shared steps), :mod:`autogai.rag.offline_proposer` (its
  program edits in :mod:`~autogai.rag.program_editing`),
  :mod:`autogai.rag.llm_proposer`, and :mod:`autogai.rag.proposers` (``make_proposer`` picks one).
"""
