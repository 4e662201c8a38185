"""RxNN's memory attention variants with a consultation step ("rxnn-self", "rxnn-interlayer",
"rxnn-self-interlayer"), reproduced to load RxT-Alpha checkpoints (function checked against RxNN 0.2.171,
memory/attention.py).

Where rxmrl's own variants only *shape the queries* and write once, RxNN writes twice per layer. With
S = STM_{t-1}^l and M = norm_mean(mean over layers of STM_{t-1}) (one norm shared by all layers):

    P  = norm_inter(S)
    K  = P                                      "rxnn-self": the slots consult each other
    K  = M                                      "rxnn-interlayer": the slots consult the layer mean
    K  = MixGate(P, M)                          "rxnn-self-interlayer": a gated mix of the two
    S* = InterGate(S, Attn_inter(P, K))         first write
    STM_t^l = Gate(S*, Attn(norm_q S*, norm_src ED_t^l))     second write, from the interaction

All gates are of the configured kind (RxNN builds them from the same arguments), except that
`consult_gate = false` makes InterGate the plain residual (RxNN's self variant does so by default).
Attn_inter has no positions; Attn rotates keys by token position, as in rxmrl's variants.
"""

from __future__ import annotations

import torch
from torch import nn

from rxmrl.model.attention import CrossAttention, Rope, build_slot_attention
from rxmrl.model.config import RxTConfig
from rxmrl.model.gates import build_gate
from rxmrl.model.norm import build_norm


class RxnnMemoryLayer(nn.Module):
    """Writes one STM layer the way RxNN's self, interlayer and self-interlayer memory attentions do."""

    def __init__(self, config: RxTConfig) -> None:
        super().__init__()
        spec = config.memory_attention
        self.inter_norm = build_norm(config)
        self.inter_attention: CrossAttention = build_slot_attention(config, spec.inter_attention or spec.attention,
                                                                    rope_on_key=False)
        self.inter_gate = build_gate(config, plain=not spec.consult_gate)
        self.mix_gate = build_gate(config) if spec.variant == "rxnn-self-interlayer" else None
        self.consults_itself = spec.variant == "rxnn-self"
        self.query_norm = build_norm(config)
        self.source_norm = build_norm(config)
        self.attention: CrossAttention = build_slot_attention(config, spec.attention, rope_on_key=True)
        self.gate = build_gate(config)

    def forward(
        self,
        stm: torch.Tensor,
        stm_mean: torch.Tensor,
        encoded: torch.Tensor,
        mask: torch.Tensor | None,
        rope: Rope,
    ) -> torch.Tensor:
        """stm [B, S, D] (this layer), stm_mean [B, S, D] (normalised; unused by "rxnn-self"), encoded [B, T, D],
        mask [B, 1, 1, T] -> [B, S, D]"""
        prepared = self.inter_norm(stm)
        if self.consults_itself:
            source = prepared
        elif self.mix_gate is not None:
            source = self.mix_gate(prepared, stm_mean)
        else:
            source = stm_mean
        consulted = self.inter_attention(prepared, self.inter_attention.project_kv(source), None)
        stm = self.inter_gate(stm, consulted)
        kv = self.attention.project_kv(self.source_norm(encoded), rope)
        return self.gate(stm, self.attention(self.query_norm(stm), kv, mask))
