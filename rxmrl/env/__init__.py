"""Memory-retention environments: `MemoryRetentionEnv` (text, one episode) and `VectorMemoryEnv` (token
arrays, a batch in lock-step), their episode pools and reward routing. Names load on first use."""

from __future__ import annotations

import importlib
from typing import Any

ENV_ID = "rxmrl/MemoryRetention-v0"

_EXPORTS = {
    "MemoryRetentionEnv": "rxmrl.env.memory_env",
    "VectorMemoryEnv": "rxmrl.env.vector_env",
    "select_episodes": "rxmrl.env.episodes",
    "route_step": "rxmrl.env.routing",
    "StepRoute": "rxmrl.env.routing",
    "resolve_reward": "rxmrl.env.rewards",
    "token_f1_reward": "rxmrl.env.rewards",
}

__all__ = ["ENV_ID", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rxmrl.env' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
