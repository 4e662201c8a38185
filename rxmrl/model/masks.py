"""Boolean attention masks (True = may attend), shaped to broadcast over heads: [B, 1, T, S].

Every mask keeps each row attendable to at least one key, so softmax never sees a row of -inf (which would
turn into NaN and, through the backward pass, poison the whole batch). Rows kept alive this way belong to
padding queries or to a sample with no real key; their outputs are ignored downstream.
"""

from __future__ import annotations

import torch


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """mask [B, T] bool -> positions [B, T] long: 0, 1, 2... over each sample's real tokens.

    Padding in the middle (a right-padded query followed by an answer) is skipped, so every sample gets the
    positions it would have alone. Padding slots repeat the previous position; they are masked anyway.
    """
    return (mask.long().cumsum(dim=1) - 1).clamp_min(0)


def causal_padding_mask(key_valid: torch.Tensor, query_start: int, query_len: int) -> torch.Tensor:
    """key_valid [B, S] (S = query_start + query_len) -> [B, 1, T, S].

    Query i sits in key slot `query_start + i` and sees valid keys at slots <= its own.
    """
    total = key_valid.shape[1]
    query_slots = torch.arange(query_start, query_start + query_len, device=key_valid.device)  # [T]
    key_slots = torch.arange(total, device=key_valid.device)  # [S]
    causal = key_slots[None, :] <= query_slots[:, None]  # [T, S]
    allowed = causal[None, :, :] & key_valid[:, None, :]  # [B, T, S]
    # A padding query may have no valid key behind it; let it see itself so its row stays finite.
    own_slot = key_slots[None, :] == query_slots[:, None]  # [T, S]
    allowed = allowed | own_slot[None, :, :]
    return allowed.unsqueeze(1)


def padding_mask(key_valid: torch.Tensor) -> torch.Tensor:
    """key_valid [B, S] -> [B, 1, 1, S] for bidirectional or cross attention (every query sees every valid key)."""
    # A sample with no valid key at all attends to everything rather than to nothing.
    no_key = ~key_valid.any(dim=1, keepdim=True)  # [B, 1]
    return (key_valid | no_key)[:, None, None, :]
