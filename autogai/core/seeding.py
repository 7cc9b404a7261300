"""One place that seeds every random number generator a run touches."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int, *, deterministic_torch: bool = False) -> np.random.Generator:
    """Seed Python, NumPy and (if already imported or importable cheaply) torch; return a NumPy Generator.

    torch is seeded only when it is installed; importing it here is acceptable because callers that
    seed are about to train anyway. ``deterministic_torch`` trades speed for bit-exact CPU repeats.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency, but core must not need it
        pass
    else:
        torch.manual_seed(seed)
        if deterministic_torch:
            torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)


def derive_seed(*parts: int | str) -> int:
    """A stable 31-bit seed derived from parts (e.g. run name, design id, trial number, seed index)."""
    import hashlib

    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
