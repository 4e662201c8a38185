"""MLM corruption: rates (15% chosen; 80/10/10 mask/random/keep), and what is never touched."""

import torch

from rxmrl.train.warmstart.masking import mask_tokens

PAD, MASK, SPECIALS, VOCAB = 0, 4, (0, 1, 2, 3, 4, 5, 6), 100


def _tokens(rows=400, length=250, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(7, VOCAB, (rows, length), generator=g)
    tokens[:, 0] = 2  # [BOS]
    tokens[:, 10] = 5  # a [Q] marker mid-sequence
    lengths = torch.randint(length // 2, length + 1, (rows,), generator=g)
    mask = torch.arange(length)[None, :] < lengths[:, None]
    tokens[~mask] = PAD
    return tokens, mask


def test_rates_match_15_percent_and_80_10_10():
    tokens, mask = _tokens()
    inputs, chosen = mask_tokens(tokens, mask, mask_id=MASK, special_ids=SPECIALS, vocab_size=VOCAB,
                                 generator=torch.Generator().manual_seed(1))
    eligible = mask & (tokens >= 7)
    n_eligible, n_chosen = int(eligible.sum()), int(chosen.sum())
    # ~75k eligible tokens: the binomial std of the rate is ~0.0013, so 0.01 is a wide margin
    assert abs(n_chosen / n_eligible - 0.15) < 0.01
    masked = chosen & (inputs == MASK)
    changed = chosen & (inputs != MASK) & (inputs != tokens)
    kept = chosen & (inputs == tokens)
    assert abs(int(masked.sum()) / n_chosen - 0.8) < 0.015
    # a random replacement can draw the original token (1 in 93): counted as "kept", as a model would see it
    assert abs(int(changed.sum()) / n_chosen - 0.1 * 92 / 93) < 0.012
    assert abs(int(kept.sum()) / n_chosen - (0.1 + 0.1 / 93)) < 0.012


def test_never_touches_padding_or_special_tokens_and_keeps_the_rest():
    tokens, mask = _tokens(rows=50)
    inputs, chosen = mask_tokens(tokens, mask, mask_id=MASK, special_ids=SPECIALS, vocab_size=VOCAB,
                                 generator=torch.Generator().manual_seed(2), probability=0.5)
    special = tokens < 7
    assert not chosen[~mask].any() and not chosen[special].any()
    assert torch.equal(inputs[~chosen], tokens[~chosen])
    replaced = chosen & (inputs != MASK)
    assert (inputs[replaced] >= 7).all()  # random replacements are ordinary tokens


def test_same_generator_state_gives_the_same_masks():
    tokens, mask = _tokens(rows=8)
    a = mask_tokens(tokens, mask, mask_id=MASK, special_ids=SPECIALS, vocab_size=VOCAB,
                    generator=torch.Generator().manual_seed(3))
    b = mask_tokens(tokens, mask, mask_id=MASK, special_ids=SPECIALS, vocab_size=VOCAB,
                    generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
