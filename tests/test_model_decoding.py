"""Decoder behaviour: causality, KV cache, batched generation, memory reads, log-probs, sampling, interact."""

import pytest
import torch

from rxmrl.model import RxT, load_preset
from rxmrl.model.sampling import GREEDY, Sampling, choose_tokens

EOS, PAD = 3, 0


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RxT(load_preset("rxt-tiny")).eval()


@pytest.fixture(scope="module")
def stm(model):
    return model.initial_stm(3, torch.Generator().manual_seed(1)) * 50  # large, so the memory matters


def padded_queries():
    torch.manual_seed(5)
    query = torch.randint(7, 64, (3, 6))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    return query.masked_fill(~mask, PAD), mask


def test_future_tokens_never_change_earlier_logits(model, stm):
    mkv = model.memory_kv(stm[:1])
    tokens = torch.randint(7, 64, (1, 10))
    changed = tokens.clone()
    changed[0, 6:] = torch.randint(7, 64, (4,))
    a = model.decode(tokens, mkv).logits
    b = model.decode(changed, mkv).logits
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_cached_incremental_decoding_equals_full_forward(model, stm):
    query, mask = padded_queries()
    tokens = torch.cat([query, torch.randint(7, 64, (3, 5))], dim=1)
    full_mask = torch.cat([mask, torch.ones(3, 5, dtype=torch.bool)], dim=1)
    mkv = model.memory_kv(stm)
    full = model.decode(tokens, mkv, full_mask).logits
    cache = model.new_cache(3, 11)
    pieces = [model.decode(query, mkv, mask, cache).logits]
    pieces.append(model.decode(tokens[:, 6:9], mkv, None, cache).logits)  # a chunk of 3
    pieces += [model.decode(tokens[:, t : t + 1], mkv, None, cache).logits for t in (9, 10)]
    incremental = torch.cat(pieces, dim=1)
    torch.testing.assert_close(incremental[full_mask], full[full_mask], atol=1e-5, rtol=1e-5)
    assert cache.length == 11


def test_explicit_positions_match_the_default(model, stm):
    tokens = torch.randint(7, 64, (1, 5))
    mkv = model.memory_kv(stm[:1])
    default = model.decode(tokens, mkv).logits
    explicit = model.decode(tokens, mkv, positions=torch.arange(5)[None]).logits
    torch.testing.assert_close(default, explicit)
    shifted = model.decode(tokens, mkv, positions=torch.arange(5)[None] + 3).logits
    assert not torch.allclose(default, shifted)


def test_cached_and_uncached_greedy_generation_are_identical(model, stm):
    query, mask = padded_queries()
    cached = model.generate(query, mask, stm, max_new_tokens=12, eos_id=None, sampling=GREEDY)
    uncached = model.generate(query, mask, stm, max_new_tokens=12, eos_id=None, sampling=GREEDY, use_cache=False)
    assert torch.equal(cached.tokens, uncached.tokens)
    torch.testing.assert_close(cached.logprobs, uncached.logprobs, atol=1e-5, rtol=1e-5)


def test_batched_generation_with_padding_equals_one_by_one(model, stm):
    query, mask = padded_queries()
    batched = model.generate(query, mask, stm, max_new_tokens=10, eos_id=None, sampling=GREEDY)
    for i in range(3):
        length = int(mask[i].sum())
        alone = model.generate(query[i : i + 1, :length], mask[i : i + 1, :length], stm[i : i + 1],
                               max_new_tokens=10, eos_id=None, sampling=GREEDY)
        assert torch.equal(alone.tokens[0], batched.tokens[i])
        torch.testing.assert_close(alone.logprobs[0], batched.logprobs[i], atol=1e-5, rtol=1e-5)


def test_memory_cross_attention_reads_the_stm(model, stm):
    tokens = torch.randint(7, 64, (1, 6))
    a = model.decode(tokens, model.memory_kv(stm[:1])).logits
    b = model.decode(tokens, model.memory_kv(stm[1:2])).logits
    assert (a - b).abs().max() > 1e-3


def test_padded_memory_slots_are_ignored(model):
    """Joint LM pre-training reads encoder outputs with a padding mask instead of the STM."""
    memory = torch.randn(1, 2, 7, 32)
    memory_mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    other = memory.clone()
    other[:, :, 4:] = torch.randn(1, 2, 3, 32)
    tokens = torch.randint(7, 64, (1, 5))
    a = model.decode(tokens, model.memory_kv(memory, memory_mask)).logits
    b = model.decode(tokens, model.memory_kv(other, memory_mask)).logits
    torch.testing.assert_close(a, b)


def test_eos_ends_each_sample_and_pads_after_it(model, stm):
    query, mask = padded_queries()
    gen = model.generate(query, mask, stm, max_new_tokens=30, eos_id=EOS, pad_id=PAD,
                         generator=torch.Generator().manual_seed(0), sampling=Sampling(temperature=3.0))
    for i in range(3):
        ids = gen.tokens[i].tolist()
        if EOS in ids:
            end = ids.index(EOS)
            assert gen.mask[i, : end + 1].all() and not gen.mask[i, end + 1 :].any()
            assert all(t == PAD for t in ids[end + 1 :])
            assert (gen.logprobs[i, end + 1 :] == 0).all()
        else:
            assert gen.mask[i].all()
    assert (gen.logprobs[gen.mask] < 0).all()
    # generation stops as soon as every sample has ended
    ended = [EOS in row for row in gen.tokens.tolist()]
    if all(ended):
        assert gen.tokens.shape[1] == max(row.index(EOS) for row in gen.tokens.tolist()) + 1


def forced_eos_model():
    """A tiny model whose LM head strongly prefers EOS after a few tokens on average."""
    torch.manual_seed(3)
    model = RxT(load_preset("rxt-tiny")).eval()
    with torch.no_grad():
        model.decoder.lm_head.weight[EOS] += 0.3 * torch.randn(32)
    return model


@pytest.mark.parametrize("greedy", [True, False])
def test_answer_logprobs_equal_generation_logprobs(model, stm, greedy):
    query, mask = padded_queries()
    sampling = Sampling(greedy=greedy, temperature=1.5, top_k=20, top_p=0.9)
    gen = model.generate(query, mask, stm, max_new_tokens=14, eos_id=EOS, pad_id=PAD, sampling=sampling,
                         generator=torch.Generator().manual_seed(2))
    scores = model.answer_logprobs(query, mask, gen.tokens, gen.mask, stm, return_logits=True)
    torch.testing.assert_close(scores.logprobs, gen.logprobs, atol=1e-5, rtol=1e-5)
    assert scores.logits.shape == (3, gen.tokens.shape[1], 64)
    assert (scores.entropy[gen.mask] > 0).all() and (scores.entropy[~gen.mask] == 0).all()
    assert scores.aux_loss.ndim == 0 and scores.aux_loss.item() > 0
    assert scores.logprobs.requires_grad  # scoring is differentiable, generation is not


def test_answer_logprobs_with_early_eos_and_short_answers():
    model = forced_eos_model()
    stm = model.initial_stm(3, torch.Generator().manual_seed(4))
    query, mask = padded_queries()
    gen = model.generate(query, mask, stm, max_new_tokens=20, eos_id=EOS, pad_id=PAD,
                         generator=torch.Generator().manual_seed(9))
    scores = model.answer_logprobs(query, mask, gen.tokens, gen.mask, stm)
    torch.testing.assert_close(scores.logprobs, gen.logprobs, atol=1e-5, rtol=1e-5)


def test_top_k_one_and_tiny_top_p_are_greedy():
    logits = torch.randn(5, 50)
    greedy = logits.argmax(-1)
    assert torch.equal(choose_tokens(logits, Sampling(top_k=1), torch.Generator().manual_seed(0)), greedy)
    assert torch.equal(choose_tokens(logits, Sampling(top_p=1e-6), torch.Generator().manual_seed(0)), greedy)
    assert torch.equal(choose_tokens(logits, Sampling(temperature=0.0)), greedy)
    assert torch.equal(choose_tokens(logits, GREEDY), greedy)


def test_sampling_frequencies_follow_the_filtered_distribution():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log().expand(40000, 4)
    gen = torch.Generator().manual_seed(0)
    plain = torch.bincount(choose_tokens(logits, Sampling(), gen), minlength=4) / 40000
    torch.testing.assert_close(plain, probs, atol=0.01, rtol=0)
    # top-p 0.7: tokens 0 and 1 (the mass above token 2 is already 0.8 >= 0.7), renormalised.
    nucleus = torch.bincount(choose_tokens(logits, Sampling(top_p=0.7), gen), minlength=4) / 40000
    torch.testing.assert_close(nucleus, torch.tensor([0.625, 0.375, 0.0, 0.0]), atol=0.01, rtol=0)
    # top-k 3 at temperature 2: softmax(log p / 2) over the three best.
    hot = torch.bincount(choose_tokens(logits, Sampling(top_k=3, temperature=2.0), gen), minlength=4) / 40000
    expected = probs[:3].sqrt() / probs[:3].sqrt().sum()
    torch.testing.assert_close(hot, torch.cat([expected, torch.zeros(1)]), atol=0.01, rtol=0)


def test_generation_refuses_to_run_past_max_seq_len(model, stm):
    query, mask = padded_queries()
    with pytest.raises(ValueError, match="max_seq_len"):
        model.generate(query, mask, stm, max_new_tokens=64, eos_id=None)


def test_encoder_reads_the_stm_when_configured(model, stm):
    tokens = torch.randint(7, 64, (1, 6))
    a = model.encode(tokens, None, stm[:1])
    b = model.encode(tokens, None, stm[1:2])
    assert a.shape == (1, 2, 6, 32) and not torch.allclose(a, b)
    plain = RxT(load_preset("rxt-tiny", encoder={"cross_attention": None})).eval()
    assert not plain.encoder.reads_memory


def test_memory_cross_attention_parameter_group(model):
    group = list(model.decoder_memory_cross_attention_parameters())
    decoder_ids = {id(p) for p in model.decoder.parameters()}
    assert group and all(id(p) in decoder_ids for p in group)
    named = {id(p): n for n, p in model.decoder.named_parameters()}
    assert all("cross" in named[id(p)] for p in group)
    assert sum(p.numel() for p in group) < sum(p.numel() for p in model.decoder.parameters())


class CharTokenizer:
    """The tokenizer duck type over characters: id = 7 + letter index."""

    pad_id, unk_id, bos_id, eos_id, q_id, a_id = 0, 1, 2, 3, 5, 6

    def _ids(self, text):
        return [7 + (ord(c) - 97) % 26 for c in text if c.isalpha()]

    def encode_query(self, q, max_len=None):
        return [self.bos_id, self.q_id, *self._ids(q), self.a_id]

    def encode_interaction(self, q, a, max_len=None):
        ids = [self.bos_id, self.q_id, *self._ids(q), self.a_id, *self._ids(a), self.eos_id]
        return ids[:max_len] if max_len else ids

    def decode(self, ids, skip_special=True):
        return "".join(chr(97 + i - 7) for i in ids if 7 <= i < 33)


def test_interact_streams_the_answer_and_updates_memory(model):
    stm = model.initial_stm(1, torch.Generator().manual_seed(0))
    pieces = []
    text, new_stm = model.interact(CharTokenizer(), "where is the ball", stm, stream=pieces.append,
                                   max_new_tokens=12, generator=torch.Generator().manual_seed(1))
    assert "".join(pieces) == text
    assert new_stm.shape == stm.shape and not torch.allclose(new_stm, stm)
