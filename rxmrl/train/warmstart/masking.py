"""BERT-style masked-LM corruption for the encoder's joint-LM objective.

Each real, non-special token is chosen for prediction with probability `probability` (independently, so the
rate is exact in expectation rather than per row). A chosen token is replaced by `[MASK]` 80% of the time, by a
random ordinary token 10% of the time, and left as it is 10% of the time: the model cannot tell which inputs
are genuine, so it has to keep a useful representation of every position, not only of the `[MASK]`s.
"""

from __future__ import annotations

import torch


def mask_tokens(
    tokens: torch.Tensor,
    mask: torch.Tensor,
    *,
    mask_id: int,
    special_ids: list[int] | tuple[int, ...],
    vocab_size: int,
    generator: torch.Generator,
    probability: float = 0.15,
    replace_with_mask: float = 0.8,
    replace_with_random: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt `tokens` [B, T] (`mask` [B, T] bool marks real tokens).

    Returns `(inputs [B, T], chosen [B, T] bool)`: the corrupted input ids, and which positions the MLM loss
    predicts (their targets are the original `tokens`). Padding and special tokens are never chosen.
    `generator` must live on the CPU; every draw is made there so a seed gives the same masks on any device.
    """
    device = tokens.device
    cpu_tokens = tokens.cpu()
    special = torch.zeros(vocab_size, dtype=torch.bool)
    special[list(special_ids)] = True
    eligible = mask.cpu() & ~special[cpu_tokens]

    # One uniform draw decides "chosen", a second decides what a chosen token becomes.
    chosen = (torch.rand(cpu_tokens.shape, generator=generator) < probability) & eligible
    action = torch.rand(cpu_tokens.shape, generator=generator)
    to_mask = chosen & (action < replace_with_mask)
    to_random = chosen & (action >= replace_with_mask) & (action < replace_with_mask + replace_with_random)

    # Random replacements are ordinary tokens only: a random [EOS] or [Q] would teach nothing useful.
    ordinary = (~special).nonzero().squeeze(1)  # [V_ordinary]
    picks = torch.randint(len(ordinary), cpu_tokens.shape, generator=generator)
    inputs = cpu_tokens.clone()
    inputs[to_mask] = mask_id
    inputs[to_random] = ordinary[picks[to_random]]
    return inputs.to(device), chosen.to(device)
