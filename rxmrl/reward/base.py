"""The reward contract shared by environments, trainers, benchmarks and plug-ins.

A reward is any callable `reward(batch: RewardBatch) -> RewardOutput` (or a sequence / 1-D tensor of
floats, one per sample, which `as_output` turns into a `RewardOutput` with no components).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from rxmrl.data.episode import Interaction
from rxmrl.errors import RewardError

MODES = ("standard", "negative", "long_range")


@dataclass(frozen=True)
class RewardBatch:
    """B answers to score. Lists are per sample; id tensors are `[B, T]` right-padded with `pad_id`."""

    query: list[str]  # the question each answer replies to
    generated: list[str]  # the policy's answers
    reference: list[str]  # the dataset's reference answers
    remember: list[list[Interaction]]  # interactions each answer should recall
    facts: list[dict[str, str] | None] = field(default_factory=list)  # ground truth, when known ([] = none)
    step: list[int] = field(default_factory=list)  # 1-based follow-up index ([] = unknown)
    mode: list[str] = field(default_factory=list)  # one of MODES per sample ([] = all "standard")
    generated_ids: torch.Tensor | None = None  # [B, Tg]
    reference_ids: torch.Tensor | None = None  # [B, Tr]
    pad_id: int = 0

    def __len__(self) -> int:
        return len(self.generated)

    def facts_at(self, i: int) -> dict[str, str] | None:
        return self.facts[i] if self.facts else None

    def mode_at(self, i: int) -> str:
        return self.mode[i] if self.mode else "standard"


@dataclass(frozen=True)
class RewardOutput:
    total: torch.Tensor  # [B] float32
    components: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> [B]
    # [B] bool: scores that were NaN/inf and are reported as 0.0 instead; only a tolerant reward
    # (`rxmrl.train.guard.tolerant_reward`) sets it, and the environment passes it on as info["nonfinite"]
    nonfinite: torch.Tensor | None = None


def as_output(result: object, batch_size: int, name: str = "reward") -> RewardOutput:
    """Normalise what a reward returned, and check it: B finite floats, or it is an error naming `name`."""
    if isinstance(result, RewardOutput):
        out = result
    elif isinstance(result, torch.Tensor):
        out = RewardOutput(total=result.detach().to(torch.float32).reshape(-1))
    elif isinstance(result, Sequence):
        try:
            out = RewardOutput(total=torch.tensor([float(x) for x in result], dtype=torch.float32))
        except (TypeError, ValueError):
            raise RewardError(f"reward '{name}' returned non-numeric values") from None
    else:
        raise RewardError(f"reward '{name}' returned {type(result).__name__}; expected a list of floats")
    if out.total.shape != (batch_size,):
        raise RewardError(f"reward '{name}' returned {tuple(out.total.shape)} values for a batch of {batch_size}")
    if not torch.isfinite(out.total).all():
        bad = [i for i, v in enumerate(out.total.tolist()) if not math.isfinite(v)]
        raise RewardError(f"reward '{name}' returned non-finite values for samples {bad[:5]}")
    return out
