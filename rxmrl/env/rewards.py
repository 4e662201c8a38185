"""Turn the env's `reward=` argument into a callable, and the built-in fallback reward.

- a callable is used as it is (its result always goes through `as_output`);
- a name or path goes to `rxmrl.reward.get_reward`;
- `None` means the `mrl-composite` preset through `get_reward`, or, in an install whose `rxmrl.reward` has
  no `get_reward` yet, the built-in `token_f1_reward` (documented below, and named so in logs).
"""

from __future__ import annotations

import importlib
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch

from rxmrl.errors import RewardError
from rxmrl.reward.base import RewardBatch, RewardOutput

DEFAULT_REWARD = "mrl-composite"
FALLBACK_NAME = "token-f1 (built-in fallback)"
_WORD = re.compile(r"\w+")


def resolve_reward(spec: Any) -> tuple[Callable[[RewardBatch], Any], str]:
    """(reward callable, name for messages) for a callable, a registry/preset name, or None (the default)."""
    if callable(spec):
        return spec, getattr(spec, "__name__", type(spec).__name__)
    get_reward = _get_reward_function()
    if spec is None:
        if get_reward is None:
            return token_f1_reward, FALLBACK_NAME
        spec = DEFAULT_REWARD
    if not isinstance(spec, str):
        raise RewardError(f"reward must be a name or a callable, got {type(spec).__name__}")
    if get_reward is None:
        raise RewardError(f"reward '{spec}': named rewards need rxmrl.reward.get_reward, which this install lacks; "
                          f"pass a callable reward(batch) instead")
    return get_reward(spec), spec


def token_f1_reward(batch: RewardBatch) -> RewardOutput:
    """Fallback reward: 10 x the F1 of lower-cased word overlap (multiset) between answer and reference.

    It ignores `mode` and `remember`: the reference already says what to recall (cumulative, long-range end)
    or stays on its own topic (long-range intermediate steps). Components: `token_f1` in [0, 1].
    """
    f1 = torch.tensor([_word_f1(g, r) for g, r in zip(batch.generated, batch.reference)], dtype=torch.float32)
    return RewardOutput(total=10.0 * f1, components={"token_f1": f1})


def _word_f1(generated: str, reference: str) -> float:
    gen, ref = Counter(_WORD.findall(generated.lower())), Counter(_WORD.findall(reference.lower()))
    common = sum((gen & ref).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(gen.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def _get_reward_function() -> Callable[[Any], Any] | None:
    try:
        module = importlib.import_module("rxmrl.reward")
    except ModuleNotFoundError as e:
        if e.name == "rxmrl.reward":
            return None
        raise  # rxmrl.reward exists but cannot import what it needs: a real problem, not "not built yet"
    return getattr(module, "get_reward", None)
