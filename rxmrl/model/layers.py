"""Transformer layers of the decoder and the memory encoder (pre-norm residual blocks).

Decoder layer:  x += SelfAttn(norm x)  ->  x += MemoryCrossAttn(norm x, STM_l)  ->  x += FFN(norm x)
Encoder layer:  x += SelfAttn(norm x)  -> [x += MemoryCrossAttn(norm x, STM_l)] ->  x += SwiGLU(norm x)

The memory read by cross-attention (an STM layer, or during joint LM pre-training an encoder layer output)
is RMS-normalised before its key/value projection, because the STM's scale drifts as gates write into it
(`memory_read_norm = false` drops that norm, for checkpoints trained without it).
"""

from __future__ import annotations

import torch
from torch import nn

from rxmrl.model.attention import CrossAttention, Rope, SelfAttention
from rxmrl.model.config import AttentionConfig, FeedForwardConfig, RxTConfig
from rxmrl.model.feedforward import SwiGLU
from rxmrl.model.kv_cache import KVCache
from rxmrl.model.moe import MixtureOfExperts
from rxmrl.model.norm import RMSNorm, build_norm


def build_ffn(config: RxTConfig, ffn: FeedForwardConfig) -> nn.Module:
    if ffn.is_moe:
        return MixtureOfExperts(
            config.dim,
            ffn.hidden,
            ffn.experts,
            ffn.top_k,
            shared_experts=ffn.shared_experts,
            bias=config.ffn_bias,
            renormalize=ffn.renormalize,
        )
    return SwiGLU(config.dim, ffn.hidden, bias=config.ffn_bias)


def build_self_attention(config: RxTConfig, heads: int, spec: AttentionConfig) -> SelfAttention:
    return SelfAttention(config.dim, heads, spec, out_bias=config.attention_out_bias,
                         use_flash=config.use_flash_attention)


class MemoryCrossAttention(CrossAttention):
    """Read the memory: queries from the token stream (RoPE on q only), keys/values from normalised memory."""

    def __init__(self, config: RxTConfig, heads: int, spec: AttentionConfig) -> None:
        super().__init__(
            config.dim,
            heads,
            spec,
            out_bias=config.attention_out_bias,
            use_flash=config.use_flash_attention,
            rope_on_query=True,
            rope_on_key=False,
        )
        self.memory_norm: RMSNorm | None = build_norm(config) if config.memory_read_norm else None

    def project_memory(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """memory [B, M, D] -> keys, values [B, Hkv, M, hd]"""
        return self.project_kv(memory if self.memory_norm is None else self.memory_norm(memory))


class DecoderLayer(nn.Module):
    def __init__(self, config: RxTConfig) -> None:
        super().__init__()
        spec = config.decoder
        self.self_norm = build_norm(config)
        self.self_attention = build_self_attention(config, spec.heads, spec.self_attention)
        self.cross_norm = build_norm(config)
        self.cross_attention = MemoryCrossAttention(config, spec.heads, spec.cross_attention)
        self.ffn_norm = build_norm(config)
        self.ffn = build_ffn(config, spec.ffn)
        self.is_moe = spec.ffn.is_moe

    def forward(
        self,
        x: torch.Tensor,
        rope: Rope,
        self_mask: torch.Tensor | None,
        is_causal: bool,
        memory_kv: tuple[torch.Tensor, torch.Tensor],
        memory_mask: torch.Tensor | None,
        token_mask: torch.Tensor | None,
        cache: KVCache | None,
        layer: int,
        start: int,
        need_aux: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [B, T, D] -> (x [B, T, D], MoE aux loss or None)"""
        x = x + self.self_attention(self.self_norm(x), rope, self_mask, is_causal, cache, layer, start)
        x = x + self.cross_attention(self.cross_norm(x), memory_kv, memory_mask, rope)
        if self.is_moe:
            y, aux = self.ffn(self.ffn_norm(x), token_mask, need_aux)
            return x + y, aux
        return x + self.ffn(self.ffn_norm(x)), None

    def step(
        self,
        x: torch.Tensor,
        rotation: torch.Tensor,
        self_mask: torch.Tensor | None,
        memory_keys: torch.Tensor,
        memory_values: torch.Tensor,
        memory_mask: torch.Tensor | None,
        cache_keys: torch.Tensor,
        cache_values: torch.Tensor,
        slot_index: torch.Tensor,
        end: int | None,
    ) -> torch.Tensor:
        """One-token inference step (see `Decoder.step`): x [B, D] or [D] -> the same shape."""
        normed = self.self_norm.step(x)
        x = x + self.self_attention.step(normed, rotation, self_mask, cache_keys, cache_values, slot_index, end)
        x = x + self.cross_attention.step(self.cross_norm.step(x), memory_keys, memory_values, memory_mask, rotation)
        if self.is_moe:
            return self.ffn.step(self.ffn_norm.step(x), x)
        return x + self.ffn(self.ffn_norm.step(x))


class EncoderLayer(nn.Module):
    def __init__(self, config: RxTConfig) -> None:
        super().__init__()
        spec = config.encoder
        self.self_norm = build_norm(config)
        self.self_attention = build_self_attention(config, spec.heads, spec.self_attention)
        self.cross_norm: RMSNorm | None = None
        self.cross_attention: MemoryCrossAttention | None = None
        if spec.cross_attention is not None:
            self.cross_norm = build_norm(config)
            self.cross_attention = MemoryCrossAttention(config, spec.heads, spec.cross_attention)
        self.ffn_norm = build_norm(config)
        self.ffn = build_ffn(config, spec.ffn)  # dense: the config refuses an MoE encoder

    def forward(
        self, x: torch.Tensor, rope: Rope, mask: torch.Tensor | None, memory: torch.Tensor | None
    ) -> torch.Tensor:
        """x [B, T, D], mask [B, 1, 1, T] or None, memory [B, S, D] (this layer's STM) -> [B, T, D]"""
        x = x + self.self_attention(self.self_norm(x), rope, mask, False)
        if self.cross_attention is not None:
            if memory is None:
                raise ValueError("this encoder reads the STM through memory cross-attention: pass stm")
            kv = self.cross_attention.project_memory(memory)
            x = x + self.cross_attention(self.cross_norm(x), kv, None, rope)
        return x + self.ffn(self.ffn_norm(x))
