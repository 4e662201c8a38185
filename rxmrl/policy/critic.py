"""The memory-aware critic: a small Transformer encoder over the current query that cross-attends to the STM.

Its value V(query, STM) estimates the reward an answer to `query` will get with the memory as it is. Because
it reads the STM, the baseline is state-dependent: an STM that holds the asked-for fact should predict a high
value, so A = r − V credits what the *policy* did with the memory, not whether the memory happened to be good.

Every STM slot becomes one key/value of the cross-attention (all layers together, each tagged with a learned
layer embedding). The critic has its own embeddings and never shares weights with the policy, so its loss
cannot disturb the actor. It is a training-only module: the checkpoint saves it beside the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rxmrl.errors import ConfigError


@dataclass
class CriticConfig:
    """
    Configuration of the memory-aware critic (the `[critic]` table of a curriculum).

    Parameters:
        dim (`int`, *optional*, defaults to `128`):
            Width of the critic's encoder.
        layers (`int`, *optional*, defaults to `2`):
            Encoder layers; each is self-attention over the input, cross-attention to the STM, feed-forward.
        heads (`int`, *optional*, defaults to `4`):
            Attention heads; must divide `dim`.
        ffn_dim (`int`, *optional*, defaults to `256`):
            Hidden width of the feed-forward layers.
        max_len (`int`, *optional*, defaults to `256`):
            Longest input in tokens; longer inputs keep their first `max_len` tokens (the query comes first).
        with_interaction (`bool`, *optional*, defaults to `False`):
            Also read the interaction written to memory just before the query (appended after the query), so the
            value can compare what was to be remembered with what the STM holds.
    """

    dim: int = 128
    layers: int = 2
    heads: int = 4
    ffn_dim: int = 256
    max_len: int = 256
    with_interaction: bool = False

    def __post_init__(self) -> None:
        for key in ("dim", "layers", "heads", "ffn_dim", "max_len"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")
        if self.dim % self.heads != 0:
            raise ConfigError(f"heads: {self.heads} heads do not divide dim {self.dim}")


class _Attention(nn.Module):
    """Multi-head attention on `scaled_dot_product_attention` with a key padding mask."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None) -> torch.Tensor:
        # x [B, T, D], context [B, M, D], context_mask [B, M] bool (True = attend) -> [B, T, D]
        batch, length, dim = x.shape
        head_dim = dim // self.heads
        q = self.query(x).view(batch, length, self.heads, head_dim).transpose(1, 2)
        k, v = self.key_value(context).view(batch, context.shape[1], 2, self.heads, head_dim).unbind(2)
        k, v = k.transpose(1, 2), v.transpose(1, 2)
        attn_mask = None if context_mask is None else context_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(y.transpose(1, 2).reshape(batch, length, dim))


class _CriticLayer(nn.Module):
    def __init__(self, config: CriticConfig) -> None:
        super().__init__()
        self.self_norm = nn.LayerNorm(config.dim)
        self.self_attention = _Attention(config.dim, config.heads)
        self.memory_norm = nn.LayerNorm(config.dim)
        self.memory_attention = _Attention(config.dim, config.heads)
        self.ffn_norm = nn.LayerNorm(config.dim)
        self.ffn = nn.Sequential(nn.Linear(config.dim, config.ffn_dim), nn.GELU(), nn.Linear(config.ffn_dim, config.dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        # x [B, T, D], mask [B, T], memory [B, M, D] -> [B, T, D]
        h = self.self_norm(x)
        x = x + self.self_attention(h, h, mask)
        x = x + self.memory_attention(self.memory_norm(x), memory, None)
        return x + self.ffn(self.ffn_norm(x))


class MemoryAwareCritic(nn.Module):
    """V(tokens, STM): tokens/mask [B, T], stm [B, L, S, D_stm] -> values [B]."""

    def __init__(self, config: CriticConfig, *, vocab_size: int, stm_layers: int, stm_dim: int) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(vocab_size, config.dim)
        self.position_embedding = nn.Embedding(config.max_len, config.dim)
        self.memory_projection = nn.Linear(stm_dim, config.dim)
        self.memory_layer_embedding = nn.Embedding(stm_layers, config.dim)
        self.layers = nn.ModuleList(_CriticLayer(config) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.dim)
        self.value_head = nn.Linear(config.dim, 1)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        # A zero head predicts 0 for everything at first: advantages start as the (scaled) rewards.
        nn.init.zeros_(self.value_head.weight)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, stm: torch.Tensor) -> torch.Tensor:
        tokens, mask = tokens[:, : self.config.max_len], mask[:, : self.config.max_len]
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.token_embedding(tokens) + self.position_embedding(positions)[None]
        layer_ids = torch.arange(stm.shape[1], device=stm.device)
        memory = self.memory_projection(stm) + self.memory_layer_embedding(layer_ids)[None, :, None, :]
        memory = memory.flatten(1, 2)  # [B, L*S, D]
        for layer in self.layers:
            x = layer(x, mask, memory)
        x = self.final_norm(x)
        weights = mask.to(x.dtype)[..., None]
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # mean over real tokens [B, D]
        return self.value_head(pooled).squeeze(-1)
