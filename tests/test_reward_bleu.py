"""TensorBLEU: parity with sacreBLEU on random ragged id batches, and hand-computed cases."""

import math
import random

import pytest
import torch
from sacrebleu.metrics.bleu import BLEU

from rxmrl.reward import tensor_bleu, tensor_corpus_bleu
from rxmrl.reward.bleu import ngram_statistics, sequence_lengths
from rxmrl.reward.text import bleu_tokens, tokens_to_ids

SMOOTHINGS = ("none", "floor", "add-k", "exp")


def pad(rows, pad_id=0):
    width = max([len(r) for r in rows] + [0])
    return torch.tensor([r + [pad_id] * (width - len(r)) for r in rows], dtype=torch.long).reshape(len(rows), width)


def random_rows(rng, count, vocab, max_len):
    return [[rng.randint(1, vocab) for _ in range(rng.randint(0, max_len))] for _ in range(count)]


def as_words(ids):
    return " ".join(str(i) for i in ids)


def sacre_sentence(cands, refs, smoothing, max_n=4, effective_order=True):
    metric = BLEU(tokenize="none", smooth_method=smoothing, max_ngram_order=max_n, effective_order=effective_order)
    return torch.tensor(
        [metric.sentence_score(as_words(c), [as_words(r)]).score / 100 for c, r in zip(cands, refs)],
        dtype=torch.float64,
    )


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_sentence_bleu_matches_sacrebleu_on_random_ragged_batches(smoothing):
    rng = random.Random(1234)
    for vocab, max_len in [(3, 6), (6, 12), (20, 30), (500, 40)]:  # small vocabularies make many matches
        cands = random_rows(rng, 60, vocab, max_len)
        refs = random_rows(rng, 60, vocab, max_len)
        # Some candidates are noisy copies of their reference, so high orders match too.
        for i in range(0, 60, 3):
            cands[i] = [t if rng.random() < 0.8 else rng.randint(1, vocab) for t in refs[i]]
        ours = tensor_bleu(pad(cands), pad(refs), smoothing=smoothing).double()
        theirs = sacre_sentence(cands, refs, smoothing)
        assert torch.allclose(ours, theirs, atol=1e-6, rtol=0), (ours - theirs).abs().max()
        assert ((ours >= 0) & (ours <= 1)).all()


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("max_n", [1, 2, 3])
@pytest.mark.parametrize("effective_order", [True, False])
def test_orders_and_effective_order_match_sacrebleu(smoothing, max_n, effective_order):
    rng = random.Random(max_n * 10 + effective_order)
    cands = random_rows(rng, 40, 5, 8)
    refs = random_rows(rng, 40, 5, 8)
    ours = tensor_bleu(pad(cands), pad(refs), smoothing=smoothing, max_n=max_n,
                       effective_order=effective_order).double()
    theirs = sacre_sentence(cands, refs, smoothing, max_n=max_n, effective_order=effective_order)
    assert torch.allclose(ours, theirs, atol=1e-6, rtol=0)


def test_sacrebleu_sentence_bleu_function_defaults_agree():
    import sacrebleu

    hyp, ref = [5, 6, 7, 8, 9, 5, 6], [5, 6, 7, 9, 9, 5]
    for smoothing in SMOOTHINGS:
        expected = sacrebleu.sentence_bleu(as_words(hyp), [as_words(ref)], smooth_method=smoothing,
                                           tokenize="none").score / 100
        got = tensor_bleu(pad([hyp]), pad([ref]), smoothing=smoothing)
        assert got.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_corpus_bleu_matches_sacrebleu(smoothing):
    rng = random.Random(7)
    cands = random_rows(rng, 30, 6, 15)
    refs = random_rows(rng, 30, 6, 15)
    metric = BLEU(tokenize="none", smooth_method=smoothing)
    expected = metric.corpus_score([as_words(c) for c in cands], [[as_words(r) for r in refs]]).score / 100
    got = tensor_corpus_bleu(pad(cands), pad(refs), smoothing=smoothing)
    assert got.shape == ()
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_identical_sentences_score_one_and_disjoint_score_zero():
    same = pad([[1, 2, 3, 4, 5], [7, 7, 7], [9]])
    for smoothing in SMOOTHINGS:
        assert torch.allclose(tensor_bleu(same, same, smoothing=smoothing), torch.ones(3))
        disjoint = tensor_bleu(pad([[1, 2, 3, 4]]), pad([[5, 6, 7, 8]]), smoothing=smoothing)
        assert disjoint.item() == 0.0


def test_hand_computed_bleu_with_brevity_penalty():
    # cand 1 2 3 4 (4 tokens), ref 1 2 3 5 6 (5 tokens): matches 3/4, 2/3, 1/2, 0/1.
    # exp smoothing: p4 = 1 / (2 * 1). BP = exp(1 - 5/4).
    expected = math.exp(1 - 5 / 4) * (0.75 * (2 / 3) * 0.5 * 0.5) ** 0.25
    got = tensor_bleu(pad([[1, 2, 3, 4]]), pad([[1, 2, 3, 5, 6]]), smoothing="exp").item()
    assert got == pytest.approx(expected, abs=1e-7)
    # none: the 4-gram precision is 0, so BLEU is 0; floor: p4 = 0.1 / 1.
    assert tensor_bleu(pad([[1, 2, 3, 4]]), pad([[1, 2, 3, 5, 6]]), smoothing="none").item() == 0.0
    floor = math.exp(1 - 5 / 4) * (0.75 * (2 / 3) * 0.5 * 0.1) ** 0.25
    got_floor = tensor_bleu(pad([[1, 2, 3, 4]]), pad([[1, 2, 3, 5, 6]]), smoothing="floor").item()
    assert got_floor == pytest.approx(floor, abs=1e-7)


def test_clipping_counts_each_reference_ngram_once():
    matches, totals, cand_len, ref_len = ngram_statistics(pad([[4, 4, 4, 4]]), pad([[4, 4, 5]]), max_n=2)
    assert matches.tolist() == [[2, 1]]  # unigram "4": min(4, 2); bigram "4 4": min(3, 1)
    assert totals.tolist() == [[4, 3]]
    assert cand_len.tolist() == [4] and ref_len.tolist() == [3]


def test_equal_ngrams_in_other_sentences_do_not_count():
    # Row 0's candidate shares nothing with its own reference but everything with row 1's.
    cands = pad([[1, 2, 3], [1, 2, 3]])
    refs = pad([[7, 8, 9], [1, 2, 3]])
    assert tensor_bleu(cands, refs).tolist() == [0.0, 1.0]


def test_padding_rules_and_empty_sequences():
    assert sequence_lengths(torch.tensor([[5, 6, 0, 7], [1, 2, 3, 4]]), 0).tolist() == [2, 4]
    # Everything after the first pad is ignored, even non-pad ids.
    a = tensor_bleu(torch.tensor([[5, 6, 0, 9, 9]]), torch.tensor([[5, 6]]))
    assert a.item() == pytest.approx(1.0)
    # A custom pad id (e.g. -100) and a real token 0.
    b = tensor_bleu(torch.tensor([[0, 3, 4, -100]]), torch.tensor([[0, 3, 4]]), pad_id=-100)
    assert b.item() == pytest.approx(1.0)
    # Empty candidate or reference: 0, like sacreBLEU.
    empty = tensor_bleu(pad([[], [1, 2]]), pad([[1, 2], []]))
    assert empty.tolist() == [0.0, 0.0]
    assert tensor_bleu(torch.zeros(0, 5, dtype=torch.long), torch.zeros(0, 3, dtype=torch.long)).shape == (0,)


def test_long_vocabulary_ids_and_invalid_inputs():
    big = 2_000_000_000  # ids near int32's limit still make int64 keys
    assert tensor_bleu(torch.tensor([[big, big - 1, 3]]), torch.tensor([[big, big - 1, 3]])).item() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        tensor_bleu(torch.tensor([[1, 2]]), torch.tensor([[1, 2], [3, 4]]))
    with pytest.raises(ValueError):
        tensor_bleu(torch.tensor([[1, 2]]), torch.tensor([[1, 2]]), smoothing="laplace")


def test_word_level_fallback_tokenises_and_shares_ids():
    assert bleu_tokens("Lily's kite was RED.") == ["lily's", "kite", "was", "red", "."]
    cand, ref = tokens_to_ids([["a", "b"], ["c"]], [["b", "a", "c"]])
    assert cand.tolist() == [[1, 2], [3, 0]]
    assert ref.tolist() == [[2, 1, 3]]
