"""`VectorMemoryEnv`: equals N single envs, builds answer/interaction arrays exactly, rewards only rewarded rows."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import rxmrl  # noqa: F401  (registers the vector entry point)
from rxmrl.data import Episode, Interaction, synthesize_episodes, synthesize_stories, train_tokenizer
from rxmrl.env import ENV_ID, MemoryRetentionEnv, VectorMemoryEnv, token_f1_reward
from rxmrl.reward.base import RewardOutput

FIRST = Interaction("Tell me a story.", "Lily found a red kite in the park.")
F1 = Interaction("What is snow made of?", "Snow is made of tiny pieces of frozen water.")
F2 = Interaction("What did the child find?", "Lily found a red kite.")


@pytest.fixture(scope="module")
def tok():
    episodes = synthesize_episodes(100, steps=4, strategy="cumulative") + synthesize_episodes(100, steps=4,
                                                                                            strategy="long_range")
    texts = synthesize_stories(100) + [t for e in episodes for i in e.interactions for t in (i.query, i.answer)]
    return train_tokenizer(texts, vocab_size=1000)


class Recorder:
    def __init__(self):
        self.batches = []

    def __call__(self, batch):
        self.batches.append(batch)
        return token_f1_reward(batch)


def test_vector_env_equals_n_single_envs(tok):
    venv = VectorMemoryEnv(num_envs=6, tokenizer=tok, reward=token_f1_reward, steps=4, strategy="mixed", seed=3,
                           synthetic_episodes=5, max_query_len=48, max_answer_len=32)
    obs, info = venv.reset()
    assert obs in venv.observation_space and info["steps"] == 4
    assert {e.strategy for e in venv.episodes} == {"cumulative", "long_range"}  # strategies mix in one batch
    singles = [MemoryRetentionEnv(episodes=[e], reward=token_f1_reward) for e in venv.episodes]
    for env, e, row in zip(singles, venv.episodes, range(6)):
        single_obs, _ = env.reset(seed=0)
        assert single_obs["answer"] == e.first.answer
        assert tok.decode(obs["remember_ids"][row]) == f"{e.first.query} {e.first.answer}"
    for k in range(4):
        # even rows answer with the reference, odd rows with the story: different rewards per row
        texts = [e.follow_ups[k].answer if i % 2 == 0 else e.first.answer for i, e in enumerate(venv.episodes)]
        assert [tok.decode(q) for q in obs["query_ids"]] == [e.follow_ups[k].query for e in venv.episodes]
        actions, _ = tok.batch_encode_answers(texts, max_len=32)
        obs, rewards, terminated, truncated, info = venv.step(actions)
        assert rewards.dtype == np.float32 and info["step"] == k + 1
        for i, env in enumerate(singles):
            s_obs, s_reward, s_terminated, s_truncated, s_info = env.step(info["generated"][i])
            assert rewards[i] == pytest.approx(s_reward)
            assert terminated[i] == s_terminated and truncated[i] == s_truncated
            assert info["rewarded"][i] == s_info["rewarded"] and info["mode"][i] == s_info["mode"]
            assert info["reward_components"]["token_f1"][i] == pytest.approx(s_info["reward_components"]["token_f1"])
            assert info["reference"][i] == s_info["reference"]
            if not s_terminated:
                assert tok.decode(obs["query_ids"][i]) == s_obs["query"]
    assert terminated.all() and not obs["query_mask"].any()
    with pytest.raises(RuntimeError, match="call reset"):
        venv.step(actions)


def test_answer_and_interaction_arrays_by_hand(tok):
    episode = Episode(FIRST, (F1, F2), strategy="cumulative")
    venv = VectorMemoryEnv([episode], num_envs=3, tokenizer=tok, reward=token_f1_reward, max_query_len=16,
                           max_answer_len=5)
    obs, _ = venv.reset(seed=0)
    query = tok.encode_query(F1.query)
    assert obs["query_ids"][0, : len(query)].tolist() == query and obs["query_mask"][0].sum() == len(query)
    pad, eos = tok.pad_id, tok.eos_id
    red, kite, park = (tok.encode_text(w)[0] for w in ("red", "kite", "park"))
    actions = torch.tensor([
        [red, kite, eos, park, park, park, park],  # stops at EOS; what follows is ignored
        [red, kite, park, park, park, park, park],  # no EOS: cut to Ta - 1 = 4 tokens, then EOS
        [pad, red, kite, eos, pad, pad, pad],  # starts with padding: an empty answer
    ])
    _, _, _, _, info = venv.step(actions)
    assert info["generated_ids"].tolist() == [[red, kite, eos, pad, pad], [red, kite, park, park, eos],
                                              [eos, pad, pad, pad, pad]]
    assert info["generated_mask"].sum(1).tolist() == [3, 5, 1]
    assert info["generated"] == ["red kite", "red kite park park", ""]
    width = 16 + 5
    expected = [query + [red, kite, eos], query + [red, kite, park, park, eos], query + [eos]]
    for row, ids in enumerate(expected):
        assert info["interaction_ids"][row].tolist() == ids + [pad] * (width - len(ids))
        assert info["interaction_mask"][row].sum() == len(ids)
    reference = tok.encode_answer(F1.answer, max_len=5)
    assert info["reference_ids"][0].tolist() == reference and info["reference_mask"][0].all()


def test_only_rewarded_rows_reach_the_reward(tok):
    cumulative = Episode(FIRST, (F1, F2), strategy="cumulative")
    long_range = Episode(FIRST, (F1, F2), strategy="long_range")
    recorder = Recorder()
    venv = VectorMemoryEnv([cumulative, long_range], num_envs=8, tokenizer=tok, reward=recorder,
                           reward_intermediate=False, seed=0)
    venv.reset()
    is_lr = np.array([e.strategy == "long_range" for e in venv.episodes])
    assert 0 < is_lr.sum() < 8
    actions, _ = tok.batch_encode_answers([F1.answer] * 8, max_len=64)
    _, rewards, _, _, info = venv.step(actions)
    assert len(recorder.batches[0]) == (~is_lr).sum() and recorder.batches[0].step == [1] * (~is_lr).sum()
    assert (info["rewarded"] == ~is_lr).all()
    assert (rewards[is_lr] == 0).all() and rewards[~is_lr] == pytest.approx(10.0)
    assert (info["reward_components"]["token_f1"][is_lr] == 0).all()
    ids = recorder.batches[0].generated_ids
    assert isinstance(ids, torch.Tensor) and ids.shape == ((~is_lr).sum(), 64)
    _, rewards, terminated, _, info = venv.step(actions)  # the last step rewards everyone
    assert len(recorder.batches[1]) == 8 and info["rewarded"].all() and terminated.all()
    assert sorted(set(recorder.batches[1].mode)) == ["long_range", "standard"]
    assert recorder.batches[1].remember[int(np.flatnonzero(~is_lr)[0])] == [FIRST, F1]


def test_nonfinite_scores_of_a_tolerant_reward_arrive_in_the_info_of_their_rows(tok):
    from rxmrl.train.guard import tolerant_reward

    def nan_for_the_last_rewarded(batch):
        return [1.0] * (len(batch) - 1) + [float("nan")]

    cumulative = Episode(FIRST, (F1, F2), strategy="cumulative")
    long_range = Episode(FIRST, (F1, F2), strategy="long_range")
    env_reward, _ = tolerant_reward(nan_for_the_last_rewarded, "nan_last")
    venv = VectorMemoryEnv([cumulative, long_range], num_envs=8, tokenizer=tok, reward=env_reward,
                           reward_intermediate=False, seed=0)
    venv.reset()
    actions, _ = tok.batch_encode_answers([F1.answer] * 8, max_len=64)
    _, rewards, _, _, info = venv.step(actions)  # only the cumulative rows are rewarded at step 1
    last_rewarded = np.flatnonzero(info["rewarded"])[-1]
    assert info["nonfinite"].tolist() == [row == last_rewarded for row in range(8)]
    assert rewards[last_rewarded] == 0.0 and (rewards[info["rewarded"] & ~info["nonfinite"]] == 1.0).all()
    plain = VectorMemoryEnv([cumulative], num_envs=2, tokenizer=tok, reward=token_f1_reward, seed=0)
    plain.reset()
    assert plain.step(actions[:2])[4]["nonfinite"].tolist() == [False, False]  # a plain reward sets no flag


def test_reset_picks_lengths_and_is_reproducible(tok):
    make = lambda: VectorMemoryEnv(num_envs=4, tokenizer=tok, reward=token_f1_reward, steps=[2, 4],  # noqa: E731
                                   synthetic_episodes=6, seed=9)
    a, b = make(), make()
    a.reset(options={"steps": 2})
    b.reset(options={"steps": 2})
    assert a.episodes == b.episodes and all(e.steps == 2 for e in a.episodes)
    a.reset(seed=1, options={"steps": 4})
    assert a.steps == 4 and all(e.steps == 4 for e in a.episodes)
    with pytest.raises(ValueError, match="no episodes with 3 follow-ups"):
        a.reset(options={"steps": 3})
    lengths = {a.reset()[1]["steps"] for _ in range(20)}
    assert lengths == {2, 4}
    a.reset(options={"steps": 4, "indices": [5, 0, 5, 11]})
    group = a.groups[4].episodes
    assert a.episodes == [group[5], group[0], group[5], group[11]]
    with pytest.raises(ValueError, match="4 indices into the 12 episodes"):
        a.reset(options={"steps": 4, "indices": [0, 1, 2, 12]})


def test_make_vec_uses_the_registered_vector_entry_point(tok, tmp_path):
    path = tok.save(tmp_path / "tokenizer.json")
    envs = gym.make_vec(ENV_ID, num_envs=2, tokenizer=str(path), reward=token_f1_reward, steps=2,
                        synthetic_episodes=2, seed=0)
    assert isinstance(envs, VectorMemoryEnv) and envs.num_envs == 2
    obs, info = envs.reset()
    assert obs["query_ids"].shape == (2, 64) and info["steps"] == 2


def test_reward_components_are_rows_of_the_batch(tok):
    def constant(batch):
        n = len(batch)
        return RewardOutput(total=torch.full((n,), 2.5), components={"a": torch.arange(n, dtype=torch.float32)})

    venv = VectorMemoryEnv(num_envs=3, tokenizer=tok, reward=constant, steps=1, synthetic_episodes=3, seed=0)
    venv.reset()
    _, rewards, terminated, _, info = venv.step(np.full((3, 4), tok.eos_id))
    assert rewards.tolist() == [2.5] * 3 and terminated.all()
    assert info["reward_components"]["a"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match=r"shape \[3, T\]"):
        venv.reset()
        venv.step(np.zeros((2, 4)))
