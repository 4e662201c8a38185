"""SMAT: gradual unfreezing decides which parts get gradients; the backpropagation depth across writes."""

import pytest
import torch

from rxmrl.data import train_tokenizer
from rxmrl.data.synthetic import synthesize_episodes
from rxmrl.model import RxT, load_preset
from rxmrl.train.warmstart.batches import tokenize_episodes
from rxmrl.train.warmstart.config import WarmStartData
from rxmrl.train.warmstart.data import tokenizer_corpus
from rxmrl.train.warmstart.smat import SmatStage


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(tokenizer_corpus(WarmStartData(), examples=60), 300)


def _model():
    torch.manual_seed(0)
    return RxT(load_preset("rxt-tiny", vocab_size=300, max_seq_len=128))


def _batch(tokenizer, steps, strategy="cumulative"):
    episodes = synthesize_episodes(3, steps=steps, strategy=strategy, seed=1)
    return tokenize_episodes(tokenizer, episodes, max_query_len=32, max_answer_len=64).batch([0, 1, 2])


def _grads(params):
    """None if no parameter got a gradient, else the total gradient norm."""
    grads = [p.grad for p in params if p.grad is not None]
    return None if not grads else float(torch.stack([g.norm() for g in grads]).norm())


@pytest.mark.parametrize("step, memory_attention, encoder", [(0, False, False), (3, True, False), (6, True, True)])
def test_gradients_reach_memory_attention_and_encoder_only_when_unfrozen(tokenizer, step, memory_attention, encoder):
    model = _model()
    stage = SmatStage(model, tokenizer, steps=10, unfreeze_memory_attention_at=0.3, unfreeze_encoder_at=0.6)
    assert stage.unfrozen(step) == {"decoder": True, "memory_attention": memory_attention, "encoder": encoder}
    stage.before_step(step)
    loss, _ = stage.loss(_batch(tokenizer, steps=2), torch.Generator().manual_seed(0))
    loss.backward()
    assert _grads(model.decoder.parameters()) > 0
    assert (_grads(model.memory_attention.parameters()) is not None) == memory_attention
    assert (_grads(model.encoder.parameters()) is not None) == encoder
    assert (_grads(model.embedding.parameters()) is not None) == encoder  # the shared embedding goes with it
    if memory_attention:
        assert _grads(model.memory_attention.parameters()) > 0
    if encoder:
        assert _grads(model.encoder.parameters()) > 0
    stage.finish()
    assert all(p.requires_grad for p in model.parameters())


def test_a_frozen_decoder_leaves_the_answer_loss_to_the_memory_path(tokenizer):
    model = _model()
    stage = SmatStage(model, tokenizer, steps=10, unfreeze_memory_attention_at=0.0, unfreeze_encoder_at=1.0,
                      train_decoder=False)
    assert stage.unfrozen(0) == {"decoder": False, "memory_attention": True, "encoder": False}
    stage.before_step(0)
    loss, _ = stage.loss(_batch(tokenizer, steps=2), torch.Generator().manual_seed(0))
    loss.backward()
    assert _grads(model.memory_attention.parameters()) > 0
    assert _grads(model.decoder.parameters()) is None and _grads(model.encoder.parameters()) is None
    stage.finish()
    assert all(p.requires_grad for p in model.parameters())


def test_only_smat_with_a_learning_memory_may_freeze_its_decoder():
    from rxmrl.errors import ConfigError
    from rxmrl.train.warmstart.config import WarmStartConfig

    assert not WarmStartConfig(stage="smat", steps=1, train_decoder=False, unfreeze_memory_attention_at=0.0).train_decoder
    with pytest.raises(ConfigError, match="only the smat stage"):
        WarmStartConfig(stage="sft", steps=1, train_decoder=False)
    with pytest.raises(ConfigError, match="nothing to learn"):
        WarmStartConfig(stage="smat", steps=1, train_decoder=False, unfreeze_memory_attention_at=1.0,
                        unfreeze_encoder_at=1.0)


def _encoder_grad(tokenizer, depth, steps, strategy):
    model = _model()
    stage = SmatStage(model, tokenizer, steps=1, bptt_depth=depth, unfreeze_memory_attention_at=0.0,
                      unfreeze_encoder_at=0.0)
    stage.before_step(0)
    loss, _ = stage.loss(_batch(tokenizer, steps, strategy), torch.Generator().manual_seed(0))
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.encoder.parameters() if p.grad is not None])


def test_backprop_depth_matters_only_when_an_answer_has_older_writes_behind_it(tokenizer):
    # one follow-up: a single write lies behind its answer, so depth 1 and 2 are the same computation
    assert torch.allclose(_encoder_grad(tokenizer, 1, 1, "single"), _encoder_grad(tokenizer, 2, 1, "single"))
    # two follow-ups: with depth 2 the second answer's loss also reaches the first write's encoder pass
    deep, shallow = _encoder_grad(tokenizer, 2, 2, "cumulative"), _encoder_grad(tokenizer, 1, 2, "cumulative")
    assert not torch.allclose(deep, shallow)


@pytest.mark.parametrize("fact_weight", [1.0, 3.0])
def test_answer_loss_equals_cross_entropy_on_answer_tokens_only(tokenizer, fact_weight):
    """The SMAT loss is the decoder's CE on follow-up answers (+[EOS]) given the written STM; fact-value
    tokens weigh `fact_weight` (a weighted mean)."""
    model = _model()
    stage = SmatStage(model, tokenizer, steps=1, aux_loss_weight=0.0, fact_weight=fact_weight)
    stage.before_step(0)
    batch = _batch(tokenizer, steps=2)
    # a 300-token vocabulary spells no fact value in one token: treat two answer tokens as the fact values
    stage.fact_ids = batch.tokens[0, 1][batch.answer_mask[0, 1]][:2].unique()
    facts = set(stage.fact_ids.tolist())
    loss, metrics = stage.loss(batch, torch.Generator().manual_seed(0))
    # recompute by hand with the model's public API
    stm = model.initial_stm(3, generator=torch.Generator().manual_seed(0))
    nll, count, n_facts = 0.0, 0, 0
    with torch.no_grad():
        for k in (1, 2):
            stm = model.update_memory(stm, batch.tokens[:, k - 1], batch.mask[:, k - 1])
            logits = model.decode(batch.tokens[:, k], model.memory_kv(stm), mask=batch.mask[:, k]).logits
            logp = logits[:, :-1].log_softmax(-1).tolist()
            tokens, answer = batch.tokens[:, k].tolist(), batch.answer_mask[:, k].tolist()
            for b in range(3):
                for t in range(len(tokens[b]) - 1):
                    if answer[b][t + 1]:  # position t predicts token t + 1
                        weight = fact_weight if tokens[b][t + 1] in facts else 1.0
                        nll -= weight * logp[b][t][tokens[b][t + 1]]
                        count += weight
                        n_facts += weight != 1.0
    assert fact_weight == 1.0 or n_facts > 0  # the batch's answers do spell fact values
    assert loss.item() == pytest.approx(nll / count, rel=1e-4)
    assert metrics["lm_loss"] == pytest.approx(nll / count, rel=1e-4)
