"""autogai: LLM-assisted reward design and AutoRL for GAI-enhanced TD3.

The top level stays cheap to import (no torch, optuna, langchain or chromadb); heavy layers are imported
where they are used.
"""

from __future__ import annotations

from autogai.core.errors import AutoGAIError
from autogai.core.types import Design, EnhancerCombo

__version__ = "0.1.0"

__all__ = ["AutoGAIError", "Design", "EnhancerCombo", "__version__"]
