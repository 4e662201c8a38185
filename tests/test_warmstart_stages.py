"""Each stage's loss goes down in a few steps on a tiny fixed batch; memory-attention trains only the write."""

import pytest
import torch

from rxmrl.config import from_dict
from rxmrl.data import train_tokenizer
from rxmrl.model import RxT, load_preset
from rxmrl.train.warmstart import WarmStartConfig, WarmStartData, build_stage
from rxmrl.train.warmstart.data import tokenized_examples, tokenizer_corpus


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(tokenizer_corpus(WarmStartData(), examples=60), 300)


def _setup(tokenizer, stage_name):
    torch.manual_seed(0)
    model = RxT(load_preset("rxt-tiny", vocab_size=300, max_seq_len=128))
    cfg = from_dict(WarmStartConfig, {
        "stage": stage_name, "steps": 10, "unfreeze_memory_attention_at": 0.0, "unfreeze_encoder_at": 0.0,
        "weight_jitter": 0.0, "data": {"examples": 4, "eval_examples": 4, "steps": 2},
    })
    stage = build_stage(cfg, model, tokenizer)
    batch = tokenized_examples(stage_name, cfg.data, tokenizer, 128, held_out=False).batch([0, 1, 2, 3])
    return model, stage, batch


def _loss(stage, batch):
    with torch.no_grad():  # the same masks / initial STM every time: only the weights differ
        return stage.loss(batch, torch.Generator().manual_seed(0))[0].item()


@pytest.mark.parametrize("stage_name", ["joint-lm", "sft", "memory-attention", "smat"])
def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(tokenizer, stage_name):
    model, stage, batch = _setup(tokenizer, stage_name)
    optimizer = torch.optim.AdamW(stage.trainable_parameters(), lr=1e-2 if stage_name == "memory-attention" else 3e-3)
    before = _loss(stage, batch)
    for step in range(12):
        stage.before_step(step)
        optimizer.zero_grad(set_to_none=True)
        loss, _ = stage.loss(batch, torch.Generator().manual_seed(step))
        loss.backward()
        optimizer.step()
    after = _loss(stage, batch)
    stage.finish()
    if stage_name == "memory-attention":  # -cos: bounded below by -1, so measure the distance to -1
        assert 1 + after < 0.85 * (1 + before), (before, after)
    else:  # token cross-entropies start near ln(300) = 5.7
        assert after < 0.95 * before - 0.02, (before, after)


def test_memory_attention_stage_trains_only_the_write(tokenizer):
    model, stage, batch = _setup(tokenizer, "memory-attention")
    stage.before_step(0)
    loss, metrics = stage.loss(batch, torch.Generator().manual_seed(0))
    loss.backward()
    assert -1.0 <= loss.item() <= 1.0 and "memory/stm_delta" in metrics
    assert all(p.grad is not None for p in model.memory_attention.parameters())
    for module in (model.encoder, model.embedding, model.decoder):
        assert all(p.grad is None for p in module.parameters())
    stage.finish()
    assert all(p.requires_grad for p in model.parameters())


def test_memory_stage_eval_reports_real_and_reset_stm(tokenizer):
    model, stage, batch = _setup(tokenizer, "memory-attention")
    stats = stage.eval(batch, torch.Generator().manual_seed(0))
    for key in ("loss", "accuracy_real_stm", "accuracy_reset_stm", "loss_real_stm", "loss_reset_stm"):
        total, count = stats[key]
        assert count > 0
    # scored tokens: every follow-up answer token and its [EOS], once per follow-up
    n_answer = int(batch.answer_mask[:, 1:].sum())
    assert stats["accuracy_real_stm"][1] == n_answer
    means = stage.summarize({k: t / c for k, (t, c) in stats.items() if c})
    assert means["accuracy_gap"] == pytest.approx(means["accuracy_real_stm"] - means["accuracy_reset_stm"])
