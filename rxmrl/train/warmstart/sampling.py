"""Which examples form micro-batch i of a run: a pure function of (seed, i), so resume needs no cursor.

The examples are visited in epochs; each epoch is a fresh permutation drawn from its own seed, and the
micro-batches tile the endless sequence epoch 0, epoch 1, ... without gaps, so every example is seen once per
epoch even when the batch size does not divide the data.
"""

from __future__ import annotations

import torch


class EpochSampler:
    def __init__(self, num_examples: int, batch_size: int, seed: int) -> None:
        if num_examples < 1:
            raise ValueError("no examples to sample from")
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.seed = seed
        self._cached: tuple[int, list[int]] | None = None  # the last epoch's permutation (a speed-up only)

    def indices(self, batch_index: int) -> list[int]:
        """Example indices of micro-batch `batch_index` (0-based)."""
        start = batch_index * self.batch_size
        out = []
        for position in range(start, start + self.batch_size):
            epoch, offset = divmod(position, self.num_examples)
            out.append(self._permutation(epoch)[offset])
        return out

    def _permutation(self, epoch: int) -> list[int]:
        if self._cached is None or self._cached[0] != epoch:
            # any int seed works: the mix is kept inside the 63 bits a torch.Generator accepts
            generator = torch.Generator().manual_seed((self.seed * 7919 + epoch) % 2**63)
            self._cached = (epoch, torch.randperm(self.num_examples, generator=generator).tolist())
        return self._cached[1]
