"""Optional GRPO fine-tuning of the baseline: rows routed like MRL training, prompts rendered to the benchmark's
ids, the reward fed the right columns, and the weights updated."""

import pytest
import torch
from safetensors.torch import load_file

from rxmrl.baseline.grpo import BaselineGrpo, grpo_finetune, grpo_rows, interaction_text, prompt_text_ids_match
from rxmrl.baseline.model import build_stateless_model, save_baseline, stateless_config
from rxmrl.baseline.tokenizer import to_hf_tokenizer
from rxmrl.data import Episode, Interaction, synthesize_episodes, train_tokenizer
from rxmrl.model import load_preset
from rxmrl.reward.base import RewardOutput


@pytest.fixture(scope="module")
def tokenizer():
    episodes = synthesize_episodes(30, steps=4, strategy="cumulative") + synthesize_episodes(30, steps=4,
                                                                                            strategy="long_range")
    return train_tokenizer([t for e in episodes for i in e.interactions for t in (i.query, i.answer)], vocab_size=300)


def test_rows_follow_the_mrl_routing():
    episode = synthesize_episodes(1, steps=3, strategy="long_range")[0]
    rows = grpo_rows([episode])
    assert [r["mode"] for r in rows] == ["negative", "negative", "long_range"]
    assert all(r["remember"] == [{"query": episode.first.query, "answer": episode.first.answer}] for r in rows)
    assert rows[2]["prompt"] == "".join(interaction_text(i.query, i.answer) for i in episode.interactions[:3]) + \
        f"[BOS][Q]{episode.follow_ups[2].query}[A]"
    assert [r["step"] for r in grpo_rows([episode], reward_intermediate=False)] == [3]
    cumulative = synthesize_episodes(1, steps=2, strategy="cumulative")[0]
    second = grpo_rows([cumulative])[1]
    assert len(second["remember"]) == 2 and second["facts"] == cumulative.facts and second["mode"] == "standard"


def test_prompt_text_encodes_to_the_benchmark_ids(tokenizer):
    hf = to_hf_tokenizer(tokenizer)
    assert all(prompt_text_ids_match(hf, tokenizer, e) for e in synthesize_episodes(5, steps=2, strategy="cumulative"))
    spelled = Episode(Interaction("What does [Q] mean?", "A question."), (Interaction("And?", "Nothing."),))
    assert not prompt_text_ids_match(hf, tokenizer, spelled)


def test_grpo_scores_with_the_episode_columns_and_updates_the_weights(tokenizer, tmp_path):
    config = stateless_config(load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size))
    save_baseline(build_stateless_model(config, seed=0), to_hf_tokenizer(tokenizer), tmp_path / "base", {})
    episodes = synthesize_episodes(2, steps=2, strategy="cumulative")
    rows = {r["query"]: r for r in grpo_rows(episodes)}
    seen = []

    def letter_e(batch):
        """Varied scores within a group (the count of 'e's), so GRPO has advantages to follow."""
        seen.append(batch)
        return RewardOutput(total=torch.tensor([float(g.count("e")) for g in batch.generated]))

    summary = grpo_finetune(tmp_path / "base", episodes, letter_e, tmp_path / "tuned",
                            BaselineGrpo(steps=2, prompts_per_step=2, num_generations=2, max_completion_length=8,
                                         learning_rate=1e-2))
    assert summary["grpo"]["rows"] == 4 and summary["grpo"]["steps"] == 2
    assert seen and sum(len(b) for b in seen) == 2 * 2 * 2  # steps x prompts x generations
    for batch in seen:
        for i in range(len(batch)):
            row = rows[batch.query[i]]
            assert batch.reference[i] == row["reference"] and batch.mode_at(i) == row["mode"]
            remembered = [{"query": m.query, "answer": m.answer} for m in batch.remember[i]]
            assert remembered == row["remember"]
            assert batch.facts_at(i) == row["facts"] and batch.step[i] == row["step"]
    before = load_file(str(tmp_path / "base" / "model.safetensors"))
    after = load_file(str(tmp_path / "tuned" / "model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_grpo_command(tokenizer, tmp_path, capsys):
    from rxmrl.cli import main

    config = stateless_config(load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size))
    save_baseline(build_stateless_model(config, seed=0), to_hf_tokenizer(tokenizer), tmp_path / "base", {})
    code = main(["baseline", "grpo", "--baseline", str(tmp_path / "base"), "--out", str(tmp_path / "tuned"),
                 "--reward", "fact-recall", "--strategy", "single", "--episode-steps", "1", "--episodes", "2",
                 "--steps", "1", "--generations", "2", "--max-new-tokens", "4"])
    assert code == 0 and (tmp_path / "tuned" / "rxmrl_baseline.json").is_file()
    assert "GRPO 1 steps on 2 prompts" in capsys.readouterr().out
