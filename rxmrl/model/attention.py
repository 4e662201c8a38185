"""One attention implementation for MHA, GQA, MQA and Sparse Query Attention (SQA).

A stack fixes the head dim `hd = dim / heads` (heads = nominal head count). Each attention then uses
`query_heads` query heads and `kv_heads` key/value heads of that width:

    MHA  q = kv = heads            GQA  kv < q = heads        MQA  kv = 1
    SQA  q < heads (symmetric: q = kv = heads/2; extreme: q = heads/4), output projection q*hd -> dim

Query head i reads key/value head i // (q / kv). The kernel is `F.scaled_dot_product_attention`; on CUDA
with fp16/bf16 and no padding mask, flash-attn is used when installed (it is optional; see `_flash_fn`).

`SelfAttention` rotates q and k (RoPE), optionally through a KV cache. `CrossAttention` reads another
sequence and rotates q only (decoder/encoder memory cross-attention: memory slots have no position) or
k only (memory attention: STM slots are unordered queries, the encoded interaction is the ordered source).

Both have a `step` for one-token decoding (inference only): the same maths on x [B, D] (or [D] for a
batch of one, so projections are gemv), RoPE as one matmul with the step's rotation matrix, and the new
key and value written into the cache buffers with one kernel each.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from rxmrl.model.config import AttentionConfig, RxTConfig
from rxmrl.model.gemv import linear
from rxmrl.model.kv_cache import KVCache
from rxmrl.model.rope import apply_rotary

Rope = tuple[torch.Tensor, torch.Tensor]  # cos, sin [B, 1, T, hd]


@functools.cache
def _flash_fn():
    """flash_attn.flash_attn_func, or None when flash-attn is not installed."""
    try:
        from flash_attn import flash_attn_func
    except ImportError:
        return None
    return flash_attn_func


def scaled_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    is_causal: bool,
    use_flash: bool = False,
) -> torch.Tensor:
    """q [B, Hq, T, hd], k/v [B, Hkv, S, hd], mask bool [B, 1, T, S] or None -> [B, Hq, T, hd].

    `is_causal` (only with mask=None) means query i sees keys 0..i, and requires T == S.
    """
    if use_flash and mask is None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
        flash = _flash_fn()
        if flash is not None:
            # flash-attn takes [B, T, H, hd] and handles Hq a multiple of Hkv itself.
            out = flash(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=is_causal)
            return out.transpose(1, 2)
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, is_causal=is_causal and mask is None, enable_gqa=q.shape[1] != k.shape[1]
    )


def single_query_attention(
    q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """One query token per sample: q [B, Hq, hd] (or [Hq, hd]), keys/values [B, Hkv, S, hd], mask [B, 1, 1, S]
    or None -> [B, Hq * hd].

    The Hq / Hkv query heads that share a key/value head become that head's "query rows" ([B, Hkv, G, hd]),
    so every head reads its keys in place. `enable_gqa` would instead repeat each key/value head G times
    (a copy of the whole cache or memory per layer and step: 3x slower for MQA over 256 slots at batch 16).
    Rows of one attention are independent, so this is the same attention as head by head.
    """
    batch, kv_heads = keys.shape[0], keys.shape[1]
    grouped = q.reshape(batch, kv_heads, -1, q.shape[-1])  # [B, Hkv, G, hd]: query head i -> kv head i // G
    return F.scaled_dot_product_attention(grouped, keys, values, attn_mask=mask).view(batch, -1)


class SelfAttention(nn.Module):
    """Self-attention with RoPE on q and k; q, k and v come from one fused projection (one matmul per step)."""

    def __init__(self, dim: int, heads: int, spec: AttentionConfig, *, out_bias: bool, use_flash: bool) -> None:
        super().__init__()
        self.head_dim = dim // heads
        self.query_heads = spec.query_heads
        self.kv_heads = spec.kv_heads
        self.use_flash = use_flash
        self.qkv = nn.Linear(dim, (spec.query_heads + 2 * spec.kv_heads) * self.head_dim, bias=False)
        self.out = nn.Linear(spec.query_heads * self.head_dim, dim, bias=out_bias)

    def forward(
        self,
        x: torch.Tensor,
        rope: Rope,
        mask: torch.Tensor | None,
        is_causal: bool,
        cache: KVCache | None = None,
        layer: int = 0,
        start: int = 0,
    ) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]. With a cache, new keys/values go to slots [start, start+T)."""
        batch, length, _ = x.shape
        hq, hkv, hd = self.query_heads, self.kv_heads, self.head_dim
        qkv = self.qkv(x)  # [B, T, (Hq + 2 Hkv) hd]
        # q and k share positions: rotate them together, half the elementwise ops of rotating each.
        qk = qkv[..., : (hq + hkv) * hd].view(batch, length, hq + hkv, hd).transpose(1, 2)  # [B, Hq+Hkv, T, hd]
        qk = apply_rotary(qk, *rope)
        q, k = qk.split([hq, hkv], dim=1)
        v = qkv[..., (hq + hkv) * hd :].view(batch, length, hkv, hd).transpose(1, 2)  # [B, Hkv, T, hd]
        if cache is not None:
            k, v = cache.write(layer, k, v, start)
        out = scaled_attention(q, k, v, mask, is_causal, self.use_flash)  # [B, Hq, T, hd]
        return self.out(out.transpose(1, 2).reshape(batch, length, hq * hd))

    def step(
        self,
        x: torch.Tensor,
        rotation: torch.Tensor,
        mask: torch.Tensor | None,
        keys: torch.Tensor,
        values: torch.Tensor,
        slot_index: torch.Tensor,
        end: int | None,
    ) -> torch.Tensor:
        """One new token per sample: x [B, D] or [D] -> [B, D] or [D].

        rotation [B, hd, hd] or [hd, hd] (`RotaryEmbedding.rotation`); keys/values [B, Hkv, C, hd]: this
        layer's cache buffers, whose slot `slot_index` ([1] long) receives the new key/value. Attention then
        reads slots [0, end), or all C slots when end is None; mask [B, 1, 1, end or C] marks valid slots
        (None: all valid).
        """
        hq, hkv, hd = self.query_heads, self.kv_heads, self.head_dim
        heads = linear(x, self.qkv.weight).view(*x.shape[:-1], hq + 2 * hkv, hd)  # [B, Hq + 2 Hkv, hd]
        qk = heads[..., : hq + hkv, :] @ rotation  # [B, Hq + Hkv, hd]
        # .to: under autocast the projections are in the low precision, the cache keeps the model's dtype.
        keys.index_copy_(2, slot_index, qk[..., hq:, :].view(-1, hkv, 1, hd).to(keys.dtype))
        values.index_copy_(2, slot_index, heads[..., hq + hkv :, :].view(-1, hkv, 1, hd).to(values.dtype))
        if end is not None:
            keys, values = keys.narrow(2, 0, end), values.narrow(2, 0, end)  # [B, Hkv, end, hd]
        out = single_query_attention(qk[..., :hq, :], keys, values, mask)  # [B, Hq * hd]
        return linear(out.view(*x.shape[:-1], hq * hd), self.out.weight, self.out.bias)


class CrossAttention(nn.Module):
    """Queries from `x`, keys/values from a source sequence projected once (`project_kv`) and reused."""

    def __init__(
        self,
        dim: int,
        heads: int,
        spec: AttentionConfig,
        *,
        out_bias: bool,
        use_flash: bool,
        rope_on_query: bool,
        rope_on_key: bool,
    ) -> None:
        super().__init__()
        self.head_dim = dim // heads
        self.query_heads = spec.query_heads
        self.kv_heads = spec.kv_heads
        self.use_flash = use_flash
        self.rope_on_query = rope_on_query
        self.rope_on_key = rope_on_key
        self.q = nn.Linear(dim, spec.query_heads * self.head_dim, bias=False)
        self.kv = nn.Linear(dim, 2 * spec.kv_heads * self.head_dim, bias=False)
        self.out = nn.Linear(spec.query_heads * self.head_dim, dim, bias=out_bias)

    def project_kv(self, source: torch.Tensor, rope: Rope | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """source [B, S, D] -> keys, values [B, Hkv, S, hd] (keys rotated when this attention rotates k)."""
        batch, length, _ = source.shape
        kv = self.kv(source).view(batch, length, 2 * self.kv_heads, self.head_dim).transpose(1, 2)
        k, v = kv.split([self.kv_heads, self.kv_heads], dim=1)
        if self.rope_on_key:
            if rope is None:
                raise ValueError("this attention rotates keys: pass the source's rope")
            k = apply_rotary(k, *rope)
        return k, v

    def forward(
        self,
        x: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None,
        rope: Rope | None = None,
    ) -> torch.Tensor:
        """x [B, T, D], kv from `project_kv`, mask [B, 1, 1|T, S] or None -> [B, T, D]."""
        batch, length, _ = x.shape
        q = self.q(x).view(batch, length, self.query_heads, self.head_dim).transpose(1, 2)  # [B, Hq, T, hd]
        if self.rope_on_query:
            if rope is None:
                raise ValueError("this attention rotates queries: pass the queries' rope")
            q = apply_rotary(q, *rope)
        out = scaled_attention(q, kv[0], kv[1], mask, False, self.use_flash)
        return self.out(out.transpose(1, 2).reshape(batch, length, self.query_heads * self.head_dim))

    def step(
        self,
        x: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor | None,
        rotation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One query per sample: x [B, D] or [D], keys/values [B, Hkv, S, hd] from `project_kv`, mask
        [B, 1, 1, S] or None, rotation [B, hd, hd] or [hd, hd] when this attention rotates queries -> [B, D] or [D].
        """
        hq, hd = self.query_heads, self.head_dim
        q = linear(x, self.q.weight).view(*x.shape[:-1], hq, hd)  # [B, Hq, hd]
        if self.rope_on_query:
            if rotation is None:
                raise ValueError("this attention rotates queries: pass the step's rotation")
            q = q @ rotation
        out = single_query_attention(q, keys, values, mask)  # [B, Hq * hd]
        return linear(out.view(*x.shape[:-1], hq * hd), self.out.weight, self.out.bias)


def build_slot_attention(config: RxTConfig, spec: AttentionConfig, *, rope_on_key: bool) -> CrossAttention:
    """An attention of memory attention: STM slots are the queries (no positions); keys are rotated when
    they are tokens of the encoded interaction."""
    return CrossAttention(
        config.dim,
        config.memory_attention.heads,
        spec,
        out_bias=config.attention_out_bias,
        use_flash=config.use_flash_attention,
        rope_on_query=False,
        rope_on_key=rope_on_key,
    )
