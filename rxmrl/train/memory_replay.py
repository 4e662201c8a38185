"""Recompute, with gradients, the STM an answer read: replay memory writes with the current weights.

Follow-up k read the STM after its first `rollout.writes_read_by(k)` writes (the index rule is the rollout's,
`rxmrl.train.rollout`). Two ways:

- `replay_memory` (per answer, depth d): start from the stored, detached snapshot d writes earlier (or the
  first one) and re-apply the writes up to the answer, so the answer's loss reaches the memory attention and
  encoder through d writes (fewer for early steps). Answers of different steps share one batch: at write
  offset o a row takes part only while it still has writes to do, and rows that are done keep their STM.
- `replay_episodes` (per episode, the whole chain): start from the STM the episode began with and re-apply
  its writes once, so each answer's loss reaches every write before it (the story's write learns from the
  recall many turns later) and no snapshot taken under older weights is used past the first. One pass over the
  writes per episode, where `replay_memory` at full depth makes one per answer.
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


def replay_episodes(
    write: Write,
    rollout: Rollout,
    rows: torch.Tensor,  # [M] sample of each answer
    steps: torch.Tensor,  # [M] 0-based follow-up of each answer
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (STM read by each answer, STM one write earlier), both [M, L, S, D], through every write of its
    episode (each episode's chain computed once, however many of its answers are asked for)."""
    episodes, slot = torch.unique(rows, return_inverse=True)  # [E], [M]
    reads = rollout.writes_read_by(steps)  # [M]
    first = torch.zeros_like(episodes)
    chain = [rollout.stm_before(episodes, first)]  # chain[j]: the STM after j writes, [E, L, S, D]
    for j in range(int(reads.max())):
        chain.append(write(chain[-1], *rollout.interaction(episodes, first + j)))
    states = torch.stack(chain, dim=1)  # [E, writes + 1, L, S, D]
    return states[slot, reads], states[slot, reads - 1]
