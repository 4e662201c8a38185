"""How the next token is chosen: greedily, or drawn at a temperature from the top-k / top-p of the distribution.

One `Sampling` value says it for every decoder in rxmrl and is passed whole: a stage's `[stage.generation]`
(`GenerationConfig.sampling`) to the rollout (`RolloutSettings.sampling`), the policy (`RxTPolicy.act`) and
`generate`; the retention benchmark's systems (the RxT and the stateless baseline) take the same value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Sampling:
    """`greedy` (or temperature 0) takes the argmax; otherwise one token is drawn per row after dividing the
    logits by `temperature` and keeping the `top_k` best tokens (0 = all) and the smallest set holding `top_p`
    of the probability (1 = all)."""

    greedy: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


GREEDY = Sampling(greedy=True)


def choose_tokens(logits: torch.Tensor, sampling: Sampling = Sampling(),
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """logits [B, V] -> token ids [B]."""
    if sampling.greedy or sampling.temperature == 0:
        return logits.argmax(dim=-1)
    scores = logits.float() / sampling.temperature
    if 0 < sampling.top_k < scores.shape[-1]:
        kth_best = scores.topk(sampling.top_k, dim=-1).values[:, -1:]  # [B, 1]
        scores = scores.masked_fill(scores < kth_best, float("-inf"))
    if sampling.top_p < 1.0:
        sorted_scores, order = scores.sort(dim=-1, descending=True)
        sorted_probs = sorted_scores.softmax(dim=-1)
        # Drop a token when the tokens ranked above it already hold top_p of the mass (the best one stays).
        drop_sorted = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= sampling.top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        scores = scores.masked_fill(drop, float("-inf"))
    # Inverse-CDF sampling: one uniform draw per row. (torch.multinomial costs ~0.2 ms per call on CPU,
    # as much as a whole decoder layer at batch 1.) right=True never picks a zero-probability token.
    cdf = scores.softmax(dim=-1).cumsum(dim=-1)  # [B, V]
    draw = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device, dtype=cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, draw, right=True).squeeze(-1).clamp_max(cdf.shape[-1] - 1)
