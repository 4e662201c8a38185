"""Right-padded token batches: joining two of them row by row, and padding a list of them to one width.

A query `[BOS][Q] q [A]` followed by its answer `a [EOS]` is exactly the interaction `[BOS][Q] q [A] a [EOS]`
that the memory encoder reads, so the trainer builds interactions from the very ids the policy generated
(no decode/re-encode round trip that could change them).
"""

from __future__ import annotations

import torch


def join_padded(
    left: torch.Tensor,  # [B, T1] right-padded
    left_mask: torch.Tensor,  # [B, T1] bool
    right: torch.Tensor,  # [B, T2] right-padded
    right_mask: torch.Tensor,  # [B, T2] bool
    pad_id: int,
    max_len: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise concatenation of the real tokens of `left` and `right`, right-padded. -> ([B, T], [B, T]).

    `max_len` truncates the end of the joined rows (the right part loses tokens first).
    """
    batch, width_left = left.shape
    left_len = left_mask.sum(1)  # [B]
    right_len = right_mask.sum(1)
    width = int((left_len + right_len).max().item()) if batch else 0
    if max_len is not None:
        width = min(width, max_len)
    width = max(width, 1)
    ids = torch.full((batch, width), pad_id, dtype=left.dtype, device=left.device)
    mask = torch.zeros((batch, width), dtype=torch.bool, device=left.device)
    # Scatter each part's real tokens to its target columns; columns beyond `width` are dropped.
    for part, part_mask, offset in ((left, left_mask, torch.zeros_like(left_len)), (right, right_mask, left_len)):
        cols = torch.arange(part.shape[1], device=part.device)[None, :] + offset[:, None]  # [B, Tp]
        keep = part_mask & (cols < width)
        rows = torch.arange(batch, device=part.device)[:, None].expand_as(cols)
        ids[rows[keep], cols[keep]] = part[keep]
        mask[rows[keep], cols[keep]] = True
    return ids, mask


def pad_to_width(ids: torch.Tensor, mask: torch.Tensor, width: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (or trim empty columns of) [B, T] ids and mask to [B, width]."""
    current = ids.shape[1]
    if current == width:
        return ids, mask
    if current > width:
        if mask[:, width:].any():
            raise ValueError(f"cannot trim a batch holding {int(mask.sum(1).max())} tokens to width {width}")
        return ids[:, :width], mask[:, :width]
    extra = width - current
    ids = torch.cat([ids, ids.new_full((ids.shape[0], extra), pad_id)], dim=1)
    mask = torch.cat([mask, mask.new_zeros((mask.shape[0], extra))], dim=1)
    return ids, mask


def stack_padded(
    batches: list[tuple[torch.Tensor, torch.Tensor]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """[(ids [B, T_k], mask [B, T_k]), ...] -> ids [B, K, T], mask [B, K, T] with T = max_k T_k."""
    width = max(ids.shape[1] for ids, _ in batches)
    padded = [pad_to_width(ids, mask, width, pad_id) for ids, mask in batches]
    return torch.stack([p[0] for p in padded], dim=1), torch.stack([p[1] for p in padded], dim=1)


def trim_padding(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop trailing all-padding columns of right-padded [N, T] ids/mask (keeps at least one column)."""
    width = max(1, int(mask.sum(1).max().item())) if mask.numel() else 1
    return ids[:, :width], mask[:, :width]
