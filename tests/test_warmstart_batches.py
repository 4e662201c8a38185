"""Token batches: the SFT loss mask (answer and [EOS] in; [BOS], [Q], query, [A] and padding out), stories,
episodes, and that the joint-LM/SFT decoder loss reads exactly those positions."""

import pytest
import torch

from rxmrl.data import Interaction, train_tokenizer
from rxmrl.data.episode import Episode
from rxmrl.model import RxT, load_preset
from rxmrl.train.warmstart.batches import tokenize_episodes, tokenize_pairs, tokenize_stories
from rxmrl.train.warmstart.joint_lm import JointLMStage
from rxmrl.train.warmstart.losses import masked_token_loss
from rxmrl.train.warmstart.mlm_head import MLMHead

TEXTS = ["the cat sat on the mat", "a dog ran to the park", "what did the cat do", "it sat on the mat"] * 20


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, 300, min_frequency=1)


def test_sft_target_mask_is_the_answer_and_eos_only(tokenizer):
    pairs = [Interaction("what did the cat do", "it sat on the mat"), Interaction("the dog", "ran")]
    batch = tokenize_pairs(tokenizer, pairs, max_len=64).batch([0, 1])
    q0, a0 = tokenizer.encode_text(pairs[0].query), tokenizer.encode_text(pairs[0].answer)
    q1, a1 = tokenizer.encode_text(pairs[1].query), tokenizer.encode_text(pairs[1].answer)
    t = tokenizer
    assert batch.tokens[0].tolist() == [t.bos_id, t.q_id, *q0, t.a_id, *a0, t.eos_id]
    expected0 = [False] * (3 + len(q0)) + [True] * (len(a0) + 1)
    assert batch.target_mask[0].tolist() == expected0
    row1 = [False] * (3 + len(q1)) + [True] * (len(a1) + 1)
    padding = batch.tokens.shape[1] - len(row1)
    assert padding > 0
    assert batch.target_mask[1].tolist() == row1 + [False] * padding
    assert batch.mask[1].tolist() == [True] * len(row1) + [False] * padding


def test_typed_marker_text_does_not_move_the_answer_boundary(tokenizer):
    batch = tokenize_pairs(tokenizer, [Interaction("is [A] a marker", "no")], max_len=64).batch([0])
    n_answer = len(tokenizer.encode_text("no")) + 1
    assert int(batch.target_mask.sum()) == n_answer
    assert batch.target_mask[0, -n_answer:].all()


def test_decoder_loss_of_sft_ignores_query_and_padding_positions(tokenizer):
    torch.manual_seed(0)
    model = RxT(load_preset("rxt-tiny", vocab_size=300, max_seq_len=64))
    stage = JointLMStage(model, MLMHead(32, 300), tokenizer, name="sft")
    pairs = [Interaction("what did the cat do", "it sat"), Interaction("the dog", "ran")]
    batch = tokenize_pairs(tokenizer, pairs, max_len=64).batch([0, 1])
    out = stage.forward(batch, torch.Generator().manual_seed(0), noise=False)
    # position t predicts token t+1: the first scored prediction is made at [A] and predicts the answer's first token
    a_pos = (batch.tokens[0] == tokenizer.a_id).nonzero().item()
    assert out["lm_selected"][0].nonzero().flatten().tolist()[0] == a_pos
    assert out["lm_targets"][0, a_pos].item() == tokenizer.encode_text("it sat")[0]
    # the loss does not change when the logits at unscored positions change
    logits = out["lm_logits"].detach().clone()
    base = masked_token_loss(logits, out["lm_targets"], out["lm_selected"])
    logits[~out["lm_selected"]] = torch.randn(int((~out["lm_selected"]).sum()), 300) * 10
    assert masked_token_loss(logits, out["lm_targets"], out["lm_selected"]) == pytest.approx(base.item())
    logits[out["lm_selected"]] += torch.randn(int(out["lm_selected"].sum()), 300)
    assert masked_token_loss(logits, out["lm_targets"], out["lm_selected"]) != pytest.approx(base.item())


def test_masked_token_loss_is_the_mean_over_selected_tokens():
    logits = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]]))  # [1, 3, 2]
    targets = torch.tensor([[0, 0, 1]])
    selected = torch.tensor([[True, False, True]])
    expected = -(torch.log(torch.tensor(0.5)) + torch.log(torch.tensor(0.8))) / 2
    assert masked_token_loss(logits, targets, selected).item() == pytest.approx(expected.item(), rel=1e-6)
    assert masked_token_loss(logits, targets, torch.zeros_like(selected)).item() == 0.0


def test_stories_are_bos_text_eos_and_scored_on_every_real_token(tokenizer):
    batch = tokenize_stories(tokenizer, ["the cat sat on the mat", "a dog"], max_len=6).batch([0, 1])
    ids = tokenizer.encode_text("the cat sat on the mat")
    assert batch.tokens[0].tolist() == [tokenizer.bos_id, *ids[:4], tokenizer.eos_id]  # cut to max_len
    assert torch.equal(batch.target_mask, batch.mask)


def test_episode_batch_pads_missing_interactions_as_invalid(tokenizer):
    long = Episode(Interaction("the cat", "sat"), (Interaction("what did the cat do", "it sat"),
                                                    Interaction("the dog", "ran")))
    short = Episode(Interaction("a dog", "ran"), (Interaction("the dog", "ran to the park"),))
    batch = tokenize_episodes(tokenizer, [long, short], max_query_len=16, max_answer_len=16).batch([0, 1])
    assert batch.tokens.shape[:2] == (2, 3)
    assert batch.valid.tolist() == [[True, True, True], [True, True, False]]
    assert batch.tokens[1, 2, 0].item() == tokenizer.bos_id and batch.mask[1, 2].sum() == 1
    assert not batch.answer_mask[1, 2].any()
    q = tokenizer.encode_query("the dog")
    a = tokenizer.encode_answer("ran to the park")
    assert batch.tokens[1, 1, : len(q) + len(a)].tolist() == q + a
    assert batch.answer_mask[1, 1].nonzero().flatten().tolist() == list(range(len(q), len(q) + len(a)))
