"""Recompute, with gradients, the STM an answer read: replay the last `depth` memory writes from a snapshot.

Follow-up k read the STM after its first `rollout.writes_read_by(k)` writes (the index rule is the rollout's,
`rxmrl.train.rollout`). With backpropagation depth d the update starts from the stored, detached snapshot d
writes earlier (or the first one) and re-applies the writes up to the answer, so the answer's loss reaches the
memory attention and encoder through d writes (fewer for early steps). Answers of different steps share one
batch: at write offset o a row takes part only while it still has writes to do, and rows that are done keep
their STM.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from rxmrl.train.rollout import Rollout

Write = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (stm, ids, mask) -> new stm


def replay_memory(
    write: Write,
    rollout: Rollout,
    rows: torch.Tensor,  # [M] sample of each answer
    steps: torch.Tensor,  # [M] 0-based follow-up of each answer
    depth: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (STM read by each answer, STM one write earlier), both [M, L, S, D] and carrying gradients."""
    reads = rollout.writes_read_by(steps)  # [M] writes in the STM each answer read
    start = (reads - depth).clamp(min=0)  # [M] first replayed write
    writes = reads - start  # [M] between 1 and depth
    stm = rollout.stm_before(rows, start)
    previous = stm
    for offset in range(depth):
        active = writes > offset  # [M]
        if not bool(active.any()):
            break
        j = start + offset
        if bool(active.all()):
            previous, stm = stm, write(stm, *rollout.interaction(rows, j))
            continue
        idx = active.nonzero().squeeze(1)
        before = stm[idx]
        previous = previous.index_put((idx,), before)
        stm = stm.index_put((idx,), write(before, *rollout.interaction(rows[idx], j[idx])))
    return stm, previous
