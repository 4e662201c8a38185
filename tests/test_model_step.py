"""The one-token decode step (`Decoder.step`) and its pieces against the full-sequence path and by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from rxmrl.model import RxT, load_preset
from rxmrl.model.gemv import linear
from rxmrl.model.kv_cache import KVCache
from rxmrl.model.moe import _DENSE_STEP_MAX_TOKENS, MixtureOfExperts
from rxmrl.model.norm import RMSNorm
from rxmrl.model.rope import RotaryEmbedding, apply_rotary
from rxmrl.model.sampling import GREEDY, Sampling

PAD = 0


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RxT(load_preset("rxt-tiny")).eval()  # GQA self-attention, MQA cross-attention, MoE with a shared expert


@pytest.fixture(scope="module")
def stm(model):
    return model.initial_stm(3, torch.Generator().manual_seed(1)) * 50  # large, so the memory matters


def padded_queries():
    torch.manual_seed(5)
    query = torch.randint(7, 64, (3, 6))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    return query.masked_fill(~mask, PAD), mask


def test_rotation_matrix_by_hand():
    rope = RotaryEmbedding(4, 16, base=10000.0)
    # d = 4: pairs (0, 2) and (1, 3) turn by p and p / 100 (= p * 10000^(-2/4)).
    p = 3
    c0, s0, c1, s1 = math.cos(p), math.sin(p), math.cos(p / 100), math.sin(p / 100)
    expected = torch.tensor([
        [c0, 0.0, s0, 0.0],
        [0.0, c1, 0.0, s1],
        [-s0, 0.0, c0, 0.0],
        [0.0, -s1, 0.0, c1],
    ])
    rotation = rope.rotation(torch.tensor([p]), torch.float32)
    assert rotation.shape == (1, 4, 4)
    torch.testing.assert_close(rotation[0], expected, atol=1e-6, rtol=0)


def test_rotation_matrix_equals_apply_rotary_per_sample():
    rope = RotaryEmbedding(8, 64)
    positions = torch.tensor([0, 5, 63])
    x = torch.randn(3, 5, 8)  # [B, H, hd]
    expected = apply_rotary(x[:, :, None], *rope.lookup(positions[:, None], x.dtype))[:, :, 0]
    torch.testing.assert_close(x @ rope.rotation(positions, x.dtype), expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(rope.rotation(torch.tensor([0]), x.dtype)[0], torch.eye(8))


def test_rms_norm_step_by_hand_and_against_forward():
    norm = RMSNorm(2, eps=0.0)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0]))
        # rms([3, 4]) = sqrt((9 + 16) / 2) = sqrt(12.5)
        expected = torch.tensor([3.0, 8.0]) / math.sqrt(12.5)
        torch.testing.assert_close(norm.step(torch.tensor([3.0, 4.0])), expected)
        wide = RMSNorm(32, eps=1e-6)
        wide.weight.normal_()
        x = torch.randn(32) * 5
        torch.testing.assert_close(wide.step(x), wide(x), atol=1e-6, rtol=1e-5)
        batch = torch.randn(3, 32)
        assert torch.equal(wide.step(batch), wide(batch))  # anything but one vector goes to forward


def test_gemv_linear_equals_f_linear():
    weight, bias = torch.randn(6, 4), torch.randn(6)
    x, rows = torch.randn(4), torch.randn(3, 4)
    torch.testing.assert_close(linear(x, weight), F.linear(x, weight))
    torch.testing.assert_close(linear(x, weight, bias), F.linear(x, weight, bias))
    torch.testing.assert_close(linear(rows, weight, bias), F.linear(rows, weight, bias))
    assert linear(x, weight).shape == (6,) and linear(rows, weight).shape == (3, 6)


def test_kv_cache_step_bookkeeping():
    cache = KVCache(layers=1, batch=2, kv_heads=1, head_dim=2, capacity=4)
    _, positions = cache.begin(torch.tensor([[1, 1], [1, 0]], dtype=torch.bool), 2)
    cache.commit(torch.tensor([[1, 1], [1, 0]], dtype=torch.bool), 2)
    assert positions.tolist() == [[0, 1], [0, 0]]
    slot, slot_index, positions = cache.begin_step()
    assert slot == 2 and slot_index.tolist() == [2]
    assert positions.tolist() == [2, 1]  # each sample's own next position: the padded one is one behind
    assert cache.slot_valid[:, 2].all() and cache.has_padding
    cache.commit_step()
    assert positions.tolist() == [2, 1]  # a copy, not the counters themselves
    assert cache.length == 3 and cache.next_position.tolist() == [3, 2]
    cache.begin_step()
    cache.commit_step()
    with pytest.raises(ValueError, match="KV cache full"):
        cache.begin_step()


@pytest.mark.parametrize("bias, shared, renormalize", [(True, 1, True), (False, 0, True), (True, 0, False)])
def test_moe_step_equals_forward(bias, shared, renormalize):
    torch.manual_seed(6)
    moe = MixtureOfExperts(8, 16, 5, 2, shared_experts=shared, bias=bias, renormalize=renormalize)
    if bias:
        with torch.no_grad():
            moe.gate_up_bias.normal_()
            moe.down_bias.normal_()
    x, residual = torch.randn(8), torch.randn(8)
    rows, residuals = torch.randn(3, 8), torch.randn(3, 8)
    with torch.no_grad():
        expected = residual + moe(x[None, None])[0][0, 0]
        torch.testing.assert_close(moe.step(x, residual), expected, atol=1e-6, rtol=1e-5)
        expected_rows = residuals + moe(rows[:, None])[0][:, 0]
        torch.testing.assert_close(moe.step(rows, residuals), expected_rows, atol=1e-6, rtol=1e-5)
        # Small batches run every expert with zero weights for the unchosen ones (`_step_dense`); a batch above
        # its limit is routed: both must give the routed mixture.
        many, many_residuals = torch.randn(_DENSE_STEP_MAX_TOKENS + 8, 8), torch.randn(_DENSE_STEP_MAX_TOKENS + 8, 8)
        expected_many = many_residuals + moe(many[:, None])[0][:, 0]
        torch.testing.assert_close(moe.step(many, many_residuals), expected_many, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(moe._step_dense(many, many_residuals), expected_many, atol=1e-6, rtol=1e-5)
        # The tensor-indexed form (used under torch.compile and on accelerators) computes the same.
        torch.testing.assert_close(moe._step_gathered(x, residual), expected, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(moe._step_gathered(rows, residuals), expected_rows, atol=1e-6, rtol=1e-5)


def test_step_leaves_the_residual_input_untouched():
    moe = MixtureOfExperts(8, 16, 4, 2, bias=False)
    for shape in ((8,), (3, 8)):  # the one-vector path and the small-batch (dense) path
        residual = torch.randn(shape)
        before = residual.clone()
        with torch.no_grad():
            moe.step(torch.randn(shape), residual)
        assert torch.equal(residual, before)


@pytest.mark.parametrize("batch", [1, 3])
def test_decoder_step_equals_the_cached_forward(model, stm, batch):
    query, mask = padded_queries()
    query, mask, memory_slots = query[:batch], mask[:batch], stm[:batch]
    if batch == 1:
        mask = mask.clone()
        mask[0, 4:] = False  # a right-padded prompt of one: the step must mask the padding slots
    steps = torch.randint(7, 64, (batch, 5))
    with torch.no_grad():
        mkv = model.memory_kv(memory_slots)
        reference_cache, step_cache = model.new_cache(batch, 11), model.new_cache(batch, 11)
        model.decode(query, mkv, mask, reference_cache)
        model.decode(query, mkv, mask, step_cache)
        for t in range(steps.shape[1]):
            token = steps[:, t]
            expected = model.decode(token[:, None], mkv, None, reference_cache).hidden[:, 0]  # need_aux: full path
            hidden = model.decoder.step(model.embedding(token), mkv, step_cache)
            torch.testing.assert_close(hidden, expected, atol=1e-5, rtol=1e-5)
        assert step_cache.length == reference_cache.length == 11
        assert torch.equal(step_cache.next_position, reference_cache.next_position)
        for layer in range(len(model.decoder.layers)):
            torch.testing.assert_close(step_cache.keys[layer], reference_cache.keys[layer], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(step_cache.values[layer], reference_cache.values[layer], atol=1e-5, rtol=1e-5)


def test_decoder_forward_sends_one_inference_token_to_step(model, stm):
    query, mask = padded_queries()
    with torch.no_grad():
        mkv = model.memory_kv(stm)
        fast, slow = model.new_cache(3, 8), model.new_cache(3, 8)
        for cache in (fast, slow):
            model.decoder(model.embedding(query), mkv, mask, cache, need_aux=False)
        token = torch.randint(7, 64, (3, 1))
        hidden, aux = model.decoder(model.embedding(token), mkv, None, fast, need_aux=False)
        expected, _ = model.decoder(model.embedding(token), mkv, None, slow, need_aux=True)
    torch.testing.assert_close(hidden, expected, atol=1e-5, rtol=1e-5)
    assert aux.item() == 0 and fast.length == slow.length == 7


def test_step_refuses_to_run_with_autograd(model, stm):
    cache = model.new_cache(1, 4)
    with pytest.raises(RuntimeError, match="inference only"):
        model.decoder.step(torch.randn(1, 32), model.memory_kv(stm[:1]), cache)


def test_long_batch_one_generation_matches_uncached_and_scoring(model, stm):
    """Batch 1 and >= 16 new tokens: the loop uses the transposed LM-head copy."""
    query = torch.randint(7, 64, (1, 5))
    mask = torch.ones_like(query, dtype=torch.bool)
    cached = model.generate(query, mask, stm[:1], max_new_tokens=24, eos_id=None, sampling=GREEDY)
    uncached = model.generate(query, mask, stm[:1], max_new_tokens=24, eos_id=None, sampling=GREEDY, use_cache=False)
    assert torch.equal(cached.tokens, uncached.tokens)
    torch.testing.assert_close(cached.logprobs, uncached.logprobs, atol=1e-5, rtol=1e-5)
    sampled = model.generate(query, mask, stm[:1], max_new_tokens=24, eos_id=3, pad_id=PAD,
                             sampling=Sampling(temperature=1.5),
                             generator=torch.Generator().manual_seed(3))
    scores = model.answer_logprobs(query, mask, sampled.tokens, sampled.mask, stm[:1])
    torch.testing.assert_close(scores.logprobs, sampled.logprobs, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_compiled_step_generates_what_eager_does(model, stm):
    query, mask = padded_queries()
    for batch in (1, 3):
        q, m, s = query[:batch], mask[:batch], stm[:batch]
        eager = model.generate(q, m, s, max_new_tokens=20, eos_id=None, sampling=GREEDY)
        compiled = model.generate(q, m, s, max_new_tokens=20, eos_id=None, sampling=GREEDY, compile=True)
        assert torch.equal(compiled.tokens, eager.tokens)
        torch.testing.assert_close(compiled.logprobs, eager.logprobs, atol=1e-5, rtol=1e-5)
