"""The memory encoder stack: bidirectional self-attention over a whole interaction (query + answer).

Its output is kept per layer, [B, L, T, D]: memory attention writes STM layer l from encoder layer l.
"""

from __future__ import annotations

import torch
from torch import nn

from rxmrl.model.config import RxTConfig
from rxmrl.model.layers import EncoderLayer
from rxmrl.model.masks import padding_mask, positions_from_mask
from rxmrl.model.rope import RotaryEmbedding


class Encoder(nn.Module):
    def __init__(self, config: RxTConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder.layers))
        self.rope = RotaryEmbedding(config.dim // config.encoder.heads, config.max_seq_len, config.rope_base)
        self.reads_memory = config.encoder.cross_attention is not None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, stm: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, D] embedded tokens, mask [B, T] (True = real), stm [B, L, S, D] -> per-layer outputs [B, L, T, D]."""
        batch, length, _ = x.shape
        if mask is None:
            positions = torch.arange(length, device=x.device)[None, :].expand(batch, length)
            attention_mask = None
        else:
            mask = mask.to(torch.bool)
            positions = positions_from_mask(mask)
            attention_mask = None if bool(mask.all()) else padding_mask(mask)
        rope = self.rope.lookup(positions, x.dtype)
        outputs = []
        for index, layer in enumerate(self.layers):
            x = layer(x, rope, attention_mask, stm[:, index] if stm is not None else None)
            outputs.append(x)
        return torch.stack(outputs, dim=1)
