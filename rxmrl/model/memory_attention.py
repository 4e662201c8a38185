"""Memory attention: the write step that turns (STM_{t-1}, encoded interaction ED_t) into STM_t.

For each STM layer l, the slots of STM_{t-1}^l are the queries (no positions: no RoPE on q) and the
encoder's layer-l output ED_t^l the keys/values (RoPE on k, by token position):

    Q      = queries(STM_{t-1})                              depends on the variant, below
    U      = Attn(norm Q, norm ED_t^l)                       the update read from the interaction
    STM_t^l = Gate(STM_{t-1}^l, U)                           e.g. (1 - G) * STM_{t-1}^l + G * U

Variants differ in how the slots prepare their queries before reading:

    "simple"           Q = S                                                   (S = STM_{t-1}^l)
    "self"             Q = S + Attn(norm S, norm S)                            slots consult each other
    "interlayer"       Q = S + Attn(norm S, norm mean_l' STM_{t-1}^l')         slots consult all layers
    "self-interlayer"  Q = S + Attn_self(norm S, norm S) + Attn_inter(norm S, norm mean)

The self/interlayer attentions only shape the queries; the memory changes solely through the gate, so a
gate that is closed (G = 0) leaves STM_{t-1} exactly as it was. The layer-mean is taken over all L layers
of STM_{t-1}, the layer itself included. None of these attentions use positions among slots.

"rxnn-self", "rxnn-interlayer" and "rxnn-self-interlayer" are RxNN's variants, which write twice per layer;
they live in `memory_attention_rxnn.py`. The "slot-*" gates (RxNN's, one value per slot) are in `slot_gates.py`.
"""

from __future__ import annotations

import torch
from torch import nn

from rxmrl.model.attention import Rope, build_slot_attention
from rxmrl.model.config import RxTConfig
from rxmrl.model.gates import build_gate
from rxmrl.model.masks import padding_mask, positions_from_mask
from rxmrl.model.memory_attention_rxnn import RxnnMemoryLayer
from rxmrl.model.norm import build_norm
from rxmrl.model.rope import RotaryEmbedding

RXNN_VARIANTS = ("rxnn-self", "rxnn-interlayer", "rxnn-self-interlayer")


class MemoryAttentionLayer(nn.Module):
    """Writes one STM layer."""

    def __init__(self, config: RxTConfig) -> None:
        super().__init__()
        spec = config.memory_attention
        inter_spec = spec.inter_attention or spec.attention
        self.self_norm = self.self_attention = None
        self.inter_norm = self.mean_norm = self.inter_attention = None
        if spec.variant in ("self", "self-interlayer"):
            self.self_norm = build_norm(config)
            self.self_attention = build_slot_attention(config, inter_spec, rope_on_key=False)
        if spec.variant in ("interlayer", "self-interlayer"):
            self.inter_norm = build_norm(config)
            self.mean_norm = build_norm(config)
            self.inter_attention = build_slot_attention(config, inter_spec, rope_on_key=False)
        self.query_norm = build_norm(config)
        self.source_norm = build_norm(config)
        self.attention = build_slot_attention(config, spec.attention, rope_on_key=True)
        self.gate = build_gate(config)

    def queries(self, stm: torch.Tensor, stm_mean: torch.Tensor) -> torch.Tensor:
        """stm, stm_mean [B, S, D] -> the slots' queries [B, S, D] (before the query norm)."""
        queries = stm
        if self.self_attention is not None:
            normed = self.self_norm(stm)
            queries = queries + self.self_attention(normed, self.self_attention.project_kv(normed), None)
        if self.inter_attention is not None:
            kv = self.inter_attention.project_kv(self.mean_norm(stm_mean))
            queries = queries + self.inter_attention(self.inter_norm(stm), kv, None)
        return queries

    def forward(
        self,
        stm: torch.Tensor,
        stm_mean: torch.Tensor,
        encoded: torch.Tensor,
        mask: torch.Tensor | None,
        rope: Rope,
    ) -> torch.Tensor:
        """stm [B, S, D] (this layer), stm_mean [B, S, D], encoded [B, T, D], mask [B, 1, 1, T] -> [B, S, D]"""
        kv = self.attention.project_kv(self.source_norm(encoded), rope)
        update = self.attention(self.query_norm(self.queries(stm, stm_mean)), kv, mask)
        return self.gate(stm, update)


class MemoryAttention(nn.Module):
    def __init__(self, config: RxTConfig) -> None:
        super().__init__()
        if config.memory_attention.variant in RXNN_VARIANTS:
            self.layers = nn.ModuleList(RxnnMemoryLayer(config) for _ in range(config.stm.layers))
            # RxNN normalises the layer mean once, for all layers (its self variant reads no mean)
            self.mean_norm = build_norm(config) if config.memory_attention.variant != "rxnn-self" else None
        else:
            self.layers = nn.ModuleList(MemoryAttentionLayer(config) for _ in range(config.stm.layers))
            self.mean_norm = None
        head_dim = config.dim // config.memory_attention.heads
        self.rope = RotaryEmbedding(head_dim, config.max_seq_len, config.rope_base)

    def forward(self, stm: torch.Tensor, encoded: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """stm [B, L, S, D], encoded [B, L, T, D] per-layer encoder outputs, mask [B, T] -> new stm [B, L, S, D]"""
        if stm.shape[1] != len(self.layers) or encoded.shape[1] != len(self.layers):
            raise ValueError(
                f"memory attention has {len(self.layers)} layers; got stm {tuple(stm.shape)}, "
                f"encoded {tuple(encoded.shape)}"
            )
        batch, _, length, _ = encoded.shape
        if mask is None:
            positions = torch.arange(length, device=encoded.device)[None, :].expand(batch, length)
            attention_mask = None
        else:
            mask = mask.to(torch.bool)
            positions = positions_from_mask(mask)
            attention_mask = None if bool(mask.all()) else padding_mask(mask)
        rope = self.rope.lookup(positions, encoded.dtype)
        stm_mean = stm.mean(dim=1)  # [B, S, D] the interlayer summary, from the memory before this write
        if self.mean_norm is not None:
            stm_mean = self.mean_norm(stm_mean)
        new_layers = [
            layer(stm[:, index], stm_mean, encoded[:, index], attention_mask, rope)
            for index, layer in enumerate(self.layers)
        ]
        return torch.stack(new_layers, dim=1)
