"""The generator-decoder stack: causal self-attention (with KV cache), memory cross-attention, MoE FFN.

The memory's keys/values depend only on the memory (the STM, fixed for a whole interaction), so they are
projected once per interaction (`memory_kv`) and reused by every decoding step: a step's cost does not
depend on how many turns came before.

`step` is the one-token inference path used by generation. A decode step at batch 1 is hundreds of tiny
kernels, so their count is its cost: the step builds the RoPE rotation and the padding mask once for all
layers, keeps a batch of one as vectors (gemv, not gemm), calls functions rather than modules where it
can, and lets each MoE layer run only its k experts' matrix-vector products. `step(compiled=True)` runs
the same layer code through torch.compile instead (opt-in: it must compile first).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from rxmrl.model.config import RxTConfig
from rxmrl.model.kv_cache import KVCache
from rxmrl.model.layers import DecoderLayer
from rxmrl.model.masks import causal_padding_mask, padding_mask, positions_from_mask
from rxmrl.model.norm import LayerNormWithStep, NoNorm, RMSNorm, build_norm
from rxmrl.model.rope import RotaryEmbedding


@dataclass
class MemoryKV:
    """Per-layer keys/values of the memory the decoder reads, computed once per interaction."""

    keys: list[torch.Tensor]  # L x [B, Hkv, M, hd]
    values: list[torch.Tensor]  # L x [B, Hkv, M, hd]
    mask: torch.Tensor | None  # [B, 1, 1, M] attention mask, None when every slot is real


@dataclass
class DecoderOutput:
    logits: torch.Tensor  # [B, T, V]
    cache: KVCache | None  # the cache passed in, advanced by T slots
    aux_loss: torch.Tensor  # scalar: mean MoE load-balancing loss over MoE layers (0 without MoE)
    hidden: torch.Tensor  # [B, T, D] final-norm hidden states


class Decoder(nn.Module):
    def __init__(self, config: RxTConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.decoder.layers))
        self.norm: RMSNorm | LayerNormWithStep | NoNorm = NoNorm()
        if config.final_norm:
            self.norm = build_norm(config) if config.final_norm_kind == "rms" else LayerNormWithStep(config.dim)
        self.lm_head = nn.Linear(config.dim, config.vocab_size, bias=config.lm_head_bias)  # untied from the embedding
        # Checkpoints trained with a causal cross-attention mask (RxNN before 0.2.60) need it at inference too.
        self.causal_memory = config.causal_memory_cross_attention
        self.rope = RotaryEmbedding(config.dim // config.decoder.heads, config.max_seq_len, config.rope_base)
        self.num_moe_layers = sum(1 for layer in self.layers if layer.is_moe)

    def memory_kv(self, memory: torch.Tensor, memory_mask: torch.Tensor | None = None) -> MemoryKV:
        """memory [B, L, M, D] (STM or per-layer encoder outputs), memory_mask [B, M] or None -> MemoryKV."""
        if memory.shape[1] != len(self.layers):
            raise ValueError(f"memory has {memory.shape[1]} layers, the decoder {len(self.layers)}")
        keys, values = [], []
        for index, layer in enumerate(self.layers):
            k, v = layer.cross_attention.project_memory(memory[:, index])
            keys.append(k)
            values.append(v)
        mask = None
        if memory_mask is not None and not bool(memory_mask.all()):
            mask = padding_mask(memory_mask.to(torch.bool))
        return MemoryKV(keys, values, mask)

    def forward(
        self,
        x: torch.Tensor,
        memory: MemoryKV,
        mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        positions: torch.Tensor | None = None,
        need_aux: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, D] embedded tokens, mask [B, T] (True = real) -> (final-norm hidden [B, T, D], aux scalar).

        Without a cache this is a causal forward over the T tokens. With one, the tokens follow the cached
        ones and their keys/values are appended in place.
        """
        batch, length, _ = x.shape
        if cache is not None and length == 1 and mask is None and positions is None and not need_aux:
            if not torch.is_grad_enabled():
                return self.step(x[:, 0], memory, cache)[:, None], x.new_zeros(())
        if mask is not None:
            mask = mask.to(torch.bool)
        if cache is None:
            start = 0
            if positions is None:
                positions = positions_from_mask(mask) if mask is not None else self._arange(batch, length, x.device)
            padded = mask is not None and not bool(mask.all())
            self_mask = causal_padding_mask(mask, 0, length) if padded else None
            is_causal = not padded and length > 1
        else:
            start, cache_positions = cache.begin(mask, length)
            positions = cache_positions if positions is None else positions
            if cache.has_padding or (start > 0 and length > 1):
                self_mask = causal_padding_mask(cache.slot_valid[:, : start + length], start, length)
                is_causal = False
            else:
                # No padding anywhere: one new token sees every cached slot; a fresh prompt is plain causal.
                self_mask = None
                is_causal = length > 1
        rope = self.rope.lookup(positions, x.dtype)
        memory_mask = causal_memory_mask(positions, memory) if self.causal_memory else memory.mask
        aux_total = x.new_zeros(())
        for index, layer in enumerate(self.layers):
            x, aux = layer(
                x,
                rope,
                self_mask,
                is_causal,
                (memory.keys[index], memory.values[index]),
                memory_mask,
                mask,
                cache,
                index,
                start,
                need_aux,
            )
            if aux is not None:
                aux_total = aux_total + aux
        if cache is not None:
            cache.commit(mask, length)
        if self.num_moe_layers:
            aux_total = aux_total / self.num_moe_layers
        return self.norm(x), aux_total

    def step(self, x: torch.Tensor, memory: MemoryKV, cache: KVCache, *, compiled: bool = False) -> torch.Tensor:
        """x [B, D]: one embedded token per sample (all real), following the cached ones -> final-norm hidden [B, D].

        The same computation as `forward` on [B, 1, D] with this cache (which it advances by one slot).
        Inference only: MoE routing weights become Python numbers, so no gradient reaches the router.
        `compiled=True` runs the layers through torch.compile (see `compiled_layer_steps`).
        """
        if torch.is_grad_enabled():
            raise RuntimeError(
                "Decoder.step is inference only: call it under torch.no_grad() or torch.inference_mode()"
            )
        batch = x.shape[0]
        slot, slot_index, positions = cache.begin_step()
        rotation = self.rope.rotation(positions, x.dtype)  # [B, hd, hd]
        if compiled:
            # One graph for every step: attend over the whole buffer, slots not yet written are invalid.
            end, self_mask = None, cache.slot_valid[:, None, None, :]  # [B, 1, 1, C]
        else:
            # The new token's own slot is valid, so the causal-padding mask of one query is slot validity.
            end = slot + 1
            self_mask = cache.slot_valid[:, None, None, :end] if cache.has_padding else None  # [B, 1, 1, S]
        if self.causal_memory:
            memory = MemoryKV(memory.keys, memory.values, causal_memory_mask(positions[:, None], memory))
        if batch == 1:
            x, rotation = x[0], rotation[0]  # [D], [hd, hd]: a batch of one runs as vectors
        run = compiled_layer_steps() if compiled else layer_steps
        x = run(self, x, rotation, self_mask, memory, cache.keys, cache.values, slot_index, end)
        cache.commit_step()
        return x.view(batch, -1)

    @staticmethod
    def _arange(batch: int, length: int, device: torch.device) -> torch.Tensor:
        return torch.arange(length, device=device)[None, :].expand(batch, length)


def causal_memory_mask(positions: torch.Tensor, memory: MemoryKV) -> torch.Tensor:
    """positions [B, T] of the queries -> mask [B, 1, T, M]: the token at position p reads slots 0..p (and only
    real ones). This is what `is_causal` did to a T x M cross-attention in the checkpoints that need it."""
    slots = memory.keys[0].shape[2]
    mask = torch.arange(slots, device=positions.device)[None, None, :] <= positions[:, :, None]  # [B, T, M]
    mask = mask[:, None]
    return mask if memory.mask is None else mask & memory.mask


def layer_steps(
    decoder: Decoder,
    x: torch.Tensor,
    rotation: torch.Tensor,
    self_mask: torch.Tensor | None,
    memory: MemoryKV,
    cache_keys: list[torch.Tensor],
    cache_values: list[torch.Tensor],
    slot_index: torch.Tensor,
    end: int | None,
) -> torch.Tensor:
    """The layers and final norm of `Decoder.step`: x [B, D] or [D] -> final-norm hidden, same shape."""
    for index, layer in enumerate(decoder.layers):
        x = layer.step(
            x,
            rotation,
            self_mask,
            memory.keys[index],
            memory.values[index],
            memory.mask,
            cache_keys[index],
            cache_values[index],
            slot_index,
            end,
        )
    return decoder.norm.step(x)


@functools.cache
def compiled_layer_steps() -> Callable[..., torch.Tensor]:
    """`layer_steps` through torch.compile (opt-in): one generated program per step instead of hundreds of
    eager kernels. The first call compiles (a minute or more on a small shared CPU); later calls with the
    same batch size, cache capacity, dtype and device reuse it. A second capacity recompiles once, with the
    capacity then a dynamic dimension (torch.compile's automatic dynamic shapes)."""
    return torch.compile(layer_steps, fullgraph=True)
