"""Attention variants against a naive reference, RoPE's relative-position property, and masks."""

import math

import pytest
import torch
import torch.nn.functional as F

from rxmrl.model.attention import CrossAttention, SelfAttention, single_query_attention
from rxmrl.model.config import AttentionConfig
from rxmrl.model.masks import causal_padding_mask, padding_mask, positions_from_mask
from rxmrl.model.rope import RotaryEmbedding, apply_rotary, rotate_half

DIM, HEADS = 32, 8  # head dim 4

VARIANTS = {
    "MHA": AttentionConfig(query_heads=8, kv_heads=8),
    "GQA": AttentionConfig(query_heads=8, kv_heads=2),
    "MQA": AttentionConfig(query_heads=8, kv_heads=1),
    "SQA-symmetric": AttentionConfig(query_heads=4, kv_heads=4),
    "SQA-extreme": AttentionConfig(query_heads=2, kv_heads=1),
}


def textbook_rope(x, positions, base=10000.0):
    """x [B, H, T, d], positions [B, T]: rotate pair (i, i + d/2) by position * base^(-2i/d)."""
    d = x.shape[-1]
    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions[..., None].double() * inv_freq  # [B, T, d/2]
    cos = torch.cat([angles.cos(), angles.cos()], -1)[:, None].float()
    sin = torch.cat([angles.sin(), angles.sin()], -1)[:, None].float()
    return x * cos + rotate_half(x) * sin


def naive_attention(q, k, v, allowed):
    """q [B, Hq, T, d], k/v [B, Hkv, S, d], allowed [B, 1, T, S]: explicit softmax, kv heads repeated."""
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.softmax(-1) @ v


def split_heads(x, heads, d):
    return x.view(x.shape[0], x.shape[1], heads, d).transpose(1, 2)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_self_attention_matches_naive_reference_with_padding(name):
    spec = VARIANTS[name]
    attention = SelfAttention(DIM, HEADS, spec, out_bias=True, use_flash=False)
    torch.nn.init.normal_(attention.out.bias)
    x = torch.randn(2, 6, DIM)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    positions = positions_from_mask(mask)
    rope = RotaryEmbedding(DIM // HEADS, 64)
    allowed = causal_padding_mask(mask, 0, 6)
    out = attention(x, rope.lookup(positions, x.dtype), allowed, False)

    d, hq, hkv = DIM // HEADS, spec.query_heads, spec.kv_heads
    qkv = x @ attention.qkv.weight.T
    q = split_heads(qkv[..., : hq * d], hq, d)
    k = split_heads(qkv[..., hq * d : (hq + hkv) * d], hkv, d)
    v = split_heads(qkv[..., (hq + hkv) * d :], hkv, d)
    q, k = textbook_rope(q, positions), textbook_rope(k, positions)
    heads = naive_attention(q, k, v, allowed)
    expected = heads.transpose(1, 2).reshape(2, 6, hq * d) @ attention.out.weight.T + attention.out.bias
    assert attention.out.weight.shape == (DIM, hq * d)  # SQA: the output projection maps q*hd -> dim
    real = mask[:, :, None].expand_as(out)
    torch.testing.assert_close(out[real], expected[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("rope_on", ["query", "key"])
def test_cross_attention_matches_naive_reference(name, rope_on):
    spec = VARIANTS[name]
    attention = CrossAttention(
        DIM, HEADS, spec, out_bias=False, use_flash=False, rope_on_query=rope_on == "query", rope_on_key=rope_on == "key"
    )
    x, source = torch.randn(2, 3, DIM), torch.randn(2, 5, DIM)
    source_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    rope = RotaryEmbedding(DIM // HEADS, 64)
    query_pos = torch.arange(3)[None].expand(2, 3)
    source_pos = positions_from_mask(source_mask)
    kv = attention.project_kv(source, rope.lookup(source_pos, x.dtype) if rope_on == "key" else None)
    allowed = padding_mask(source_mask)
    out = attention(x, kv, allowed, rope.lookup(query_pos, x.dtype) if rope_on == "query" else None)

    d, hq, hkv = DIM // HEADS, spec.query_heads, spec.kv_heads
    q = split_heads(x @ attention.q.weight.T, hq, d)
    kv_flat = source @ attention.kv.weight.T
    k, v = split_heads(kv_flat[..., : hkv * d], hkv, d), split_heads(kv_flat[..., hkv * d :], hkv, d)
    if rope_on == "query":
        q = textbook_rope(q, query_pos)
    else:
        k = textbook_rope(k, source_pos)
    expected = naive_attention(q, k, v, allowed.expand(2, 1, 3, 5)).transpose(1, 2).reshape(2, 3, hq * d)
    torch.testing.assert_close(out, expected @ attention.out.weight.T, atol=1e-5, rtol=1e-5)


def test_rope_dot_product_depends_only_on_position_difference():
    rope = RotaryEmbedding(16, 128)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(m, n):
        qm = apply_rotary(q, *rope.lookup(torch.tensor([[m]]), q.dtype))
        kn = apply_rotary(k, *rope.lookup(torch.tensor([[n]]), k.dtype))
        return (qm * kn).sum().item()

    for m, n, shift in [(3, 1, 10), (0, 7, 50), (20, 20, 33)]:
        assert score(m, n) == pytest.approx(score(m + shift, n + shift), abs=1e-4)
    assert score(5, 0) != pytest.approx(score(0, 5), abs=1e-3)  # it does depend on the difference's sign
    # Position 0 is the identity rotation.
    torch.testing.assert_close(apply_rotary(q, *rope.lookup(torch.tensor([[0]]), q.dtype)), q)


def test_rotation_matches_textbook_form_and_preserves_norm():
    rope = RotaryEmbedding(8, 32)
    x = torch.randn(2, 3, 5, 8)
    positions = torch.randint(0, 32, (2, 5))
    rotated = apply_rotary(x, *rope.lookup(positions, x.dtype))
    torch.testing.assert_close(rotated, textbook_rope(x, positions), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)


def test_positions_skip_padding_in_the_middle():
    mask = torch.tensor([[1, 1, 0, 0, 1, 1], [1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    assert positions_from_mask(mask)[0, [0, 1, 4, 5]].tolist() == [0, 1, 2, 3]
    assert positions_from_mask(mask)[1, :5].tolist() == [0, 1, 2, 3, 4]


def test_masks_never_leave_a_row_without_keys():
    empty = torch.zeros(1, 4, dtype=torch.bool)
    assert causal_padding_mask(empty, 0, 4).any(-1).all()
    assert padding_mask(empty).any(-1).all()
    # A real query sees exactly the real keys at or before it.
    mask = torch.tensor([[1, 0, 1, 1]], dtype=torch.bool)
    allowed = causal_padding_mask(mask, 0, 4)[0, 0]
    assert allowed[3].tolist() == [True, False, True, True]
    assert allowed[2].tolist() == [True, False, True, False]


@pytest.mark.gpu
def test_flash_attention_path_matches_sdpa():
    pytest.importorskip("flash_attn")
    from rxmrl.model.attention import scaled_attention

    q = torch.randn(2, 8, 5, 16, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(2, 2, 5, 16, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(2, 2, 5, 16, device="cuda", dtype=torch.bfloat16)
    for causal in (False, True):
        flash = scaled_attention(q, k, v, None, causal, use_flash=True)
        sdpa = scaled_attention(q, k, v, None, causal, use_flash=False)
        torch.testing.assert_close(flash, sdpa, atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_single_query_attention_equals_repeated_kv_heads(kv_heads):
    """Query heads folded onto their shared key/value head = sdpa with the kv heads repeated (GQA, MQA, MHA)."""
    torch.manual_seed(3)
    q = torch.randn(3, 4, 8)  # [B, Hq, hd]
    keys, values = torch.randn(3, kv_heads, 10, 8), torch.randn(3, kv_heads, 10, 8)
    mask = torch.ones(3, 1, 1, 10, dtype=torch.bool)
    mask[1, ..., 6:] = False
    for m in (None, mask):
        repeat = 4 // kv_heads
        expected = F.scaled_dot_product_attention(
            q[:, :, None], keys.repeat_interleave(repeat, dim=1), values.repeat_interleave(repeat, dim=1), attn_mask=m
        )  # [B, Hq, 1, hd]
        torch.testing.assert_close(single_query_attention(q, keys, values, m), expected.reshape(3, 32))
    one = single_query_attention(q[0], keys[:1], values[:1], None)  # a batch of one as [Hq, hd]
    torch.testing.assert_close(one, single_query_attention(q[:1], keys[:1], values[:1], None))
