"""Episodes, their sources and checks, the synthetic generator, and the tokenizer.

Names are imported on first use, so `import rxmrl.data.episode` (which the reward contract does) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Episode": "rxmrl.data.episode",
    "Interaction": "rxmrl.data.episode",
    "STRATEGIES": "rxmrl.data.episode",
    "FACT_VALUES": "rxmrl.data.facts",
    "VALUE_TO_SLOT": "rxmrl.data.facts",
    "load_episodes": "rxmrl.data.loader",
    "read_episodes": "rxmrl.data.loader",
    "load_interactions": "rxmrl.data.loader",
    "load_texts": "rxmrl.data.loader",
    "iter_all_texts": "rxmrl.data.loader",
    "list_subsets": "rxmrl.data.sources",
    "list_splits": "rxmrl.data.sources",
    "synthesize_episodes": "rxmrl.data.synthetic",
    "synthesize_stories": "rxmrl.data.synthetic",
    "synthesize_pairs": "rxmrl.data.synthetic",
    "write_synthetic_dataset": "rxmrl.data.synthetic_dataset",
    "summarize_episodes": "rxmrl.data.stats",
    "Tokenizer": "rxmrl.data.tokenizer",
    "train_tokenizer": "rxmrl.data.tokenizer",
    "SPECIAL_TOKENS": "rxmrl.data.tokenizer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rxmrl.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
