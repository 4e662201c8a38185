"""Turn the env's `reward=` argument into a callable, and a dependency-free word-overlap reward.

- a callable is used as it is (its result always goes through `as_output`);
- a name or path goes to `rxmrl.reward.get_reward`; `None` means the `mrl-composite` preset.

`token_f1_reward` needs neither an embedding model nor facts, which makes it the cheap reward of tests and
quick experiments with the environments.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch

from rxmrl.errors import RewardError
from rxmrl.reward.base import RewardBatch, RewardOutput
from rxmrl.reward.registry import get_reward

DEFAULT_REWARD = "mrl-composite"
_WORD = re.compile(r"\w+")


def resolve_reward(spec: Any) -> tuple[Callable[[RewardBatch], Any], str]:
    """(reward callable, name for messages) for a callable, a registry/preset name, or None (the default)."""
    if callable(spec):
        return spec, getattr(spec, "__name__", type(spec).__name__)
    if spec is None:
        spec = DEFAULT_REWARD
    if not isinstance(spec, str):
        raise RewardError(f"reward must be a name or a callable, got {type(spec).__name__}")
    return get_reward(spec), spec


def token_f1_reward(batch: RewardBatch) -> RewardOutput:
    """10 x the F1 of lower-cased word overlap (multiset) between answer and reference.

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
