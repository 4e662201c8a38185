"""Losses and held-out statistics shared by the warm-start stages.

Token losses are averaged over the tokens a mask selects (not over rows), so a batch of long answers and a
batch of short ones weigh each token alike. Held-out statistics are returned as (sum, count) pairs so the
loop can add them up over many batches before dividing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# A held-out statistic: (sum over items, number of items). The loop reports sum / count.
Stat = tuple[float, float]


def masked_token_loss(logits: torch.Tensor, targets: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the selected positions. logits [B, T, V], targets [B, T], selected [B, T] bool.

    With nothing selected the loss is 0 (still attached to the graph), not NaN.
    """
    nll = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")  # [B*T]
    weights = selected.flatten().to(nll.dtype)
    return (nll * weights).sum() / weights.sum().clamp(min=1.0)


def token_stats(logits: torch.Tensor, targets: torch.Tensor, selected: torch.Tensor) -> dict[str, Stat]:
    """Held-out sums: cross-entropy ("loss") and greedy next-token hits ("accuracy") over selected positions."""
    with torch.no_grad():
        nll = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")
        hits = (logits.argmax(-1) == targets).flatten()
        weights = selected.flatten()
        count = float(weights.sum())
        return {
            "loss": (float(nll[weights].sum()), count),
            "accuracy": (float(hits[weights].sum()), count),
        }


def prefixed(stats: dict[str, Stat], prefix: str) -> dict[str, Stat]:
    return {f"{prefix}{k}": v for k, v in stats.items()}
