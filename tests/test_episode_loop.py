"""The one episode loop (`rxmrl.env.episode_loop`): what an agent is handed, in which order, and that training's
evaluation and the retention benchmark, both driven by it, score the same model alike."""

import math

import pytest
import torch

from rxmrl.bench.retention import rxt_systems, run_retention
from rxmrl.data import Episode, Interaction, synthesize_episodes, train_tokenizer
from rxmrl.env.episode_loop import make_env, run_episodes
from rxmrl.model import RxT, load_preset
from rxmrl.policy import CriticConfig, RxTPolicy
from rxmrl.train.evaluation import evaluate_heldout
from rxmrl.train.guard import tolerant_reward

FIRST = Interaction("Tell me a story.", "Lily found a red kite in the park.")
F1 = Interaction("What did Lily find?", "Lily found a red kite.")
F2 = Interaction("Where was the kite?", "The kite was in the park.")


@pytest.fixture(scope="module")
def tokenizer():
    episodes = synthesize_episodes(40, steps=3, strategy="cumulative")
    texts = [t for e in episodes for i in e.interactions for t in (i.query, i.answer)]
    return train_tokenizer(texts + [t for i in (FIRST, F1, F2) for t in (i.query, i.answer)], vocab_size=320)


class Scripted:
    """Answers each follow-up with fixed ids and logs every call."""

    def __init__(self, answers):
        self.answers, self.calls, self.turns = answers, [], []

    def start(self, episodes, remember_ids, remember_mask):
        self.calls.append("start")
        self.episodes, self.remember = episodes, (remember_ids, remember_mask)

    def respond(self, step, query, query_mask):
        self.calls.append(f"respond {step}")
        return self.answers[step]

    def record(self, turn):
        self.calls.append(f"record {turn.step}")
        self.turns.append(turn)


def test_an_agent_writes_the_query_and_the_answer_as_the_env_kept_it(tokenizer):
    episode = Episode(FIRST, (F1, F2), strategy="cumulative")
    env = make_env([episode, episode], tokenizer, lambda b: [5.0] * len(b), steps=2, seed=0, max_query_len=16,
                   max_answer_len=5, max_interaction_len=64)
    red, kite, park = (tokenizer.encode_text(w)[0] for w in ("red", "kite", "park"))
    eos, pad = tokenizer.eos_id, tokenizer.pad_id
    answers = [torch.tensor([[red, kite, eos, park], [red, kite, park, kite]]),  # EOS ends the first
               torch.tensor([[park, park, park, park, park, park], [pad, red, pad, pad, pad, pad]])]
    agent = Scripted(answers)
    run_episodes(env, agent, "cpu")
    assert agent.calls == ["start", "respond 0", "record 0", "respond 1", "record 1"]
    remember_ids, remember_mask = agent.remember
    assert remember_ids[0][remember_mask[0]].tolist() == tokenizer.encode_interaction(FIRST.query, FIRST.answer)
    assert remember_mask[:, -1].any()  # no all-padding columns at the right
    kept = [[[red, kite, eos], [red, kite, park, kite, eos]],  # no EOS: the env ends it
            [[park, park, park, park, eos], [eos]]]  # cut to max_answer_len - 1 tokens; a pad ends it at once
    for turn, query, answers_kept in zip(agent.turns, (F1, F2), kept):
        ids = tokenizer.encode_query(query.query)
        assert turn.query[0][turn.query_mask[0]].tolist() == ids
        for row in range(2):
            assert turn.interaction[row][turn.interaction_mask[row]].tolist() == ids + answers_kept[row]
        assert turn.rewards.tolist() == [5.0, 5.0] and turn.rewarded.all()
        assert turn.references[0][turn.reference_mask[0]].tolist() == tokenizer.encode_answer(query.answer, 5)
    assert [t.last for t in agent.turns] == [False, True]


def test_a_nonfinite_score_reaches_the_agent_as_nan_in_its_row(tokenizer):
    episodes = synthesize_episodes(4, steps=2, strategy="cumulative", seed=3)
    env_reward, _ = tolerant_reward(lambda b: [1.0, math.nan, 2.0, 3.0], "nan_second")
    env = make_env(episodes, tokenizer, env_reward, steps=2, seed=0, max_query_len=40, max_answer_len=8,
                   max_interaction_len=64)
    agent = Scripted([torch.full((4, 3), tokenizer.eos_id)] * 2)
    run_episodes(env, agent, "cpu")
    for turn in agent.turns:
        assert torch.isnan(turn.rewards).tolist() == [False, True, False, False]
        assert turn.rewards[[0, 2, 3]].tolist() == [1.0, 2.0, 3.0]


def words_answered(batch):
    """The number of words in the answer (at most 10): cheap, and a random model's answers differ in it."""
    return [min(10.0, float(len(generated.split()))) for generated in batch.generated]


def test_evaluation_and_the_benchmark_score_one_model_alike(tokenizer):
    """Both run the same episodes through the same loop: with the same limits and a fresh STM that is zero
    (nothing random), the held-out evaluation's per-step rewards, with and without memory, are the benchmark's
    `rxt` and `rxt_memory_reset` curves, although the evaluation shuffles the rows and the benchmark does not."""
    torch.manual_seed(0)
    model = RxT(load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size, max_seq_len=96,
                            stm={"init": "zeros"})).eval()
    policy = RxTPolicy(model, CriticConfig(dim=16, layers=1, heads=2, ffn_dim=32), pad_id=tokenizer.pad_id).eval()
    episodes = synthesize_episodes(6, steps=3, strategy="cumulative", split="test", seed=5)
    limits = dict(max_query_len=40, max_answer_len=24)
    bench = run_retention(rxt_systems(model, tokenizer), episodes, words_answered, batch_size=6, seed=0, **limits)
    metrics, _ = evaluate_heldout(policy, episodes, tokenizer, words_answered, steps=3, max_new_tokens=23,
                                  max_interaction_len=64, batch_size=6, seed=0, **limits)
    for k in range(3):
        assert metrics[f"eval/reward/step_{k + 1}/mean"] == pytest.approx(bench["rxt"]["per_step"][k], abs=1e-5)
        assert metrics[f"eval/no_memory/reward/step_{k + 1}/mean"] == pytest.approx(
            bench["rxt_memory_reset"]["per_step"][k], abs=1e-5)
    assert metrics["eval/reward/mean"] == pytest.approx(bench["rxt"]["mean"], abs=1e-5)
    assert metrics["eval/memory_gain"] != 0.0  # the memory changes the answers: the check has teeth
