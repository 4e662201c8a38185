"""Recompute, with gradients, the STM an answer read: replay the last `depth` memory writes from a snapshot.

Follow-up k read the STM after write k (see `rxmrl.train.rollout`). With backpropagation depth d the update
starts from the stored, detached snapshot before write max(k + 1 − d, 0) and re-applies the writes up to k,
so the answer's loss reaches the memory attention and encoder through d writes (fewer for early steps).
Answers of different steps share one batch: at write offset o a row takes part only while it still has
writes to do, and rows that are done keep their STM.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rxmrl.tokens import trim_padding

Write = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (stm, ids, mask) -> new stm


def replay_memory(
    write: Write,
    snapshots: torch.Tensor,  # [B, W, L, S, D] STM before write j, detached
    written: torch.Tensor,  # [B, W, Tw] interaction of write j
    written_mask: torch.Tensor,  # [B, W, Tw]
    rows: torch.Tensor,  # [M] sample of each answer
    steps: torch.Tensor,  # [M] 0-based follow-up of each answer
    depth: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (STM read by each answer, STM one write earlier), both [M, L, S, D] and carrying gradients."""
    start = (steps + 1 - depth).clamp(min=0)  # [M] first replayed write
    writes = steps + 1 - start  # [M] between 1 and depth
    stm = snapshots[rows, start]
    previous = stm
    for offset in range(depth):
        active = writes > offset  # [M]
        if not bool(active.any()):
            break
        j = start + offset
        if bool(active.all()):
            ids, mask = trim_padding(written[rows, j], written_mask[rows, j])
            previous, stm = stm, write(stm, ids, mask)
            continue
        idx = active.nonzero().squeeze(1)
        ids, mask = trim_padding(written[rows[idx], j[idx]], written_mask[rows[idx], j[idx]])
        before = stm[idx]
        previous = previous.index_put((idx,), before)
        stm = stm.index_put((idx,), write(before, ids, mask))
    return stm, previous
