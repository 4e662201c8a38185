"""The stateless baseline's decoding loop: equal to transformers' own greedy `generate`, padding-invariant,
stopping at EOS like the RxT's generator."""

import pytest
import torch

from rxmrl.baseline.generation import decode_step, generate_stateless, left_pad, prefill
from rxmrl.baseline.model import build_stateless_model, stateless_config
from rxmrl.model import load_preset
from rxmrl.model.sampling import Sampling


@pytest.fixture(scope="module")
def model():
    return build_stateless_model(stateless_config(load_preset("rxt-tiny", vocab_size=300)), seed=0)


def prompts(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(7, 300, (n,), generator=g).tolist() for n in lengths]


def test_left_pad():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[True, True, True], [False, False, True]]


def test_greedy_answers_equal_transformers_generate_row_by_row(model):
    batch = prompts([5, 12, 9])
    out = generate_stateless(model, batch, max_new_tokens=8, eos_id=None)
    assert out.tokens.shape == (3, 8) and bool(out.mask.all())
    for row, prompt in enumerate(batch):
        reference = model.generate(torch.tensor([prompt]), max_new_tokens=8, min_new_tokens=8, do_sample=False,
                                   eos_token_id=None, pad_token_id=0)
        assert out.tokens[row].tolist() == reference[0, len(prompt):].tolist()


def test_cached_decoding_gives_the_logits_of_a_full_forward(model):
    prompt = prompts([6])[0]
    ids, mask = left_pad([prompt], 0)
    logits, state = prefill(model, ids, mask)
    token = logits.argmax(-1)
    next_logits = decode_step(model, token, state)
    with torch.no_grad():
        full = model(input_ids=torch.tensor([prompt + [int(token)]])).logits[0, -1]
    assert torch.allclose(next_logits[0], full, atol=1e-5)
    assert state.mask.shape == (1, 7) and int(state.next_position) == 7


def test_eos_ends_a_row_with_padding_and_logprobs_are_the_models(model):
    batch = prompts([4, 7], seed=1)
    free = generate_stateless(model, batch, max_new_tokens=6, eos_id=None)
    eos = int(free.tokens[0, 2])  # make row 0's third token its EOS
    out = generate_stateless(model, batch, max_new_tokens=6, eos_id=eos, pad_id=0)
    for row in range(2):
        tokens = free.tokens[row].tolist()
        stop = tokens.index(eos) + 1 if eos in tokens else len(tokens)  # up to and including the first EOS
        assert out.tokens[row, :stop].tolist() == tokens[:stop]
        assert out.mask[row].tolist()[: out.tokens.shape[1]] == [i < stop for i in range(out.tokens.shape[1])]
        assert out.tokens[row, stop:].eq(0).all() and out.logprobs[row, stop:].eq(0).all()
    # log-prob of the first token = log_softmax of the model's logits at the prompt's end
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([batch[1]])).logits[0, -1]
    expected = torch.log_softmax(logits, -1)[out.tokens[1, 0]]
    assert float(out.logprobs[1, 0]) == pytest.approx(float(expected), abs=1e-5)


def test_sampling_follows_its_generator(model):
    batch = prompts([5, 5])
    runs = [generate_stateless(model, batch, max_new_tokens=6, eos_id=None, sampling=Sampling(),
                               generator=torch.Generator().manual_seed(s)).tokens for s in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
