"""Self-attention key/value cache for incremental decoding.

Buffers are allocated once per generation at full capacity and written in place, so a decode step costs
the same at token 1 and token 200 (no `torch.cat` reallocating the whole history every token).

All samples of a batch share slot indices (slot = step in the batch's timeline); each sample keeps its own
RoPE position counter and a per-slot validity flag, so right-padded prompts behave as if decoded alone.

Two ways in: `begin`/`write`/`commit` for any number of tokens (prompt prefill, chunks), and
`begin_step`/`commit_step` around the one-token decode step (`Decoder.step`), which does the same
bookkeeping with the fewest kernels: every new token is real, so the positions are the counters
themselves, and each layer writes its new key and value with one index_copy_ into `keys`/`values`.
"""

from __future__ import annotations

import torch

from rxmrl.model.masks import positions_from_mask


class KVCache:
    def __init__(
        self,
        layers: int,
        batch: int,
        kv_heads: int,
        head_dim: int,
        capacity: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        shape = (batch, kv_heads, capacity, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]  # L x [B, Hkv, C, hd]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.slot_valid = torch.zeros(batch, capacity, dtype=torch.bool, device=device)  # [B, C]
        self.next_position = torch.zeros(batch, dtype=torch.long, device=device)  # [B] RoPE position of next real token
        self.length = 0  # slots filled so far (shared by the batch)
        self.has_padding = False  # any invalid slot so far: attention then needs an explicit mask
        self._slot_index = torch.arange(capacity, device=device)  # slot numbers as tensors, for index_copy_

    @property
    def capacity(self) -> int:
        return self.slot_valid.shape[1]

    @property
    def batch(self) -> int:
        return self.slot_valid.shape[0]

    def begin(self, mask: torch.Tensor | None, length: int) -> tuple[int, torch.Tensor]:
        """Reserve `length` slots for new tokens; mask [B, T] marks real ones. Returns (start, positions [B, T])."""
        start = self.length
        end = start + length
        if end > self.capacity:
            raise ValueError(f"KV cache full: {end} slots needed, capacity {self.capacity}")
        if mask is None:
            self.slot_valid[:, start:end] = True
            offsets = torch.arange(length, device=self.slot_valid.device)[None, :]  # [1, T]
        else:
            self.slot_valid[:, start:end] = mask
            self.has_padding = self.has_padding or not bool(mask.all())
            offsets = positions_from_mask(mask)  # [B, T]
        positions = self.next_position[:, None] + offsets  # [B, T]
        return start, positions

    def write(self, layer: int, keys: torch.Tensor, values: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """keys/values [B, Hkv, T, hd] go to slots [start, start+T); returns views of slots [0, start+T)."""
        end = start + keys.shape[2]
        self.keys[layer][:, :, start:end] = keys
        self.values[layer][:, :, start:end] = values
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def begin_step(self) -> tuple[int, torch.Tensor, torch.Tensor]:
        """Reserve the next slot for one real token per sample.

        Returns (slot, the slot as a [1] long tensor for index_copy_, positions [B]: each sample's RoPE position).
        """
        slot = self.length
        if slot >= self.capacity:
            raise ValueError(f"KV cache full: {slot + 1} slots needed, capacity {self.capacity}")
        self.slot_valid[:, slot] = True
        # A copy: the counters advance in `commit_step`, after the step has used these positions.
        return slot, self._slot_index[slot : slot + 1], self.next_position.clone()

    def commit_step(self) -> None:
        """Mark the slot from `begin_step` filled; every sample's position advances by one."""
        self.length += 1
        self.next_position += 1

    def commit(self, mask: torch.Tensor | None, length: int) -> None:
        """Mark the `length` slots reserved by `begin` as filled and advance each sample's position."""
        self.length += length
        if mask is None:
            self.next_position += length
        else:
            self.next_position += mask.sum(dim=1)
