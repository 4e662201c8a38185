"""`MemoryRetentionEnv`: Gymnasium's checker, steps and reward routing per strategy, seeding, sources, presets."""

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import rxmrl  # noqa: F401  (registers rxmrl/MemoryRetention-v0)
from rxmrl.data import Episode, Interaction
from rxmrl.data.synthetic_dataset import write_synthetic_dataset
from rxmrl.env import ENV_ID, MemoryRetentionEnv, rewards, token_f1_reward
from rxmrl.errors import ConfigError, DataError, RewardError
from rxmrl.reward.base import RewardBatch, RewardOutput

FIRST = Interaction("Tell me a story.", "Lily found a red kite in the park.")
F1 = Interaction("What did the child find?", "Lily found a red kite.")
F2 = Interaction("Then a friend named Bella came. What colour was it?", "The kite was red.")
F3 = Interaction("Who came to play?", "Bella came to play with Lily.")
FACTS = {"name": "lily", "colour": "red", "object": "kite", "place": "park", "friend": "bella"}


def episode(strategy, follow_ups):
    return Episode(FIRST, tuple(follow_ups), strategy=strategy, facts=FACTS)


class Recorder:
    """A reward that returns the number of words in each answer and keeps every batch it was given."""

    def __init__(self):
        self.batches = []

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        self.batches.append(batch)
        words = [float(len(g.split())) for g in batch.generated]
        import torch

        return RewardOutput(total=torch.tensor(words), components={"words": torch.tensor(words) / 10})


def play(env, answers):
    """reset, then answer each follow-up; returns (rewards, terminated flags, infos)."""
    env.reset(seed=0)
    rewards, dones, infos = [], [], []
    for answer in answers:
        _, reward, terminated, truncated, info = env.step(answer)
        assert truncated is False
        rewards.append(reward)
        dones.append(terminated)
        infos.append(info)
    return rewards, dones, infos


def test_check_env_passes_raw_and_through_gymnasium_make():
    check_env(MemoryRetentionEnv(reward=token_f1_reward, synthetic_episodes=4, seed=0), skip_render_check=True)
    env = gym.make(ENV_ID, reward=token_f1_reward, synthetic_episodes=4, steps=[1, 2, 4], seed=0)
    check_env(env.unwrapped)
    assert isinstance(env.unwrapped, MemoryRetentionEnv)


def test_single_has_one_rewarded_step_recalling_the_first_interaction():
    recorder = Recorder()
    env = MemoryRetentionEnv(episodes=[episode("single", [F1])], reward=recorder)
    obs, info = env.reset(seed=0)
    assert obs == {"query": FIRST.query, "answer": FIRST.answer} and info["steps"] == 1
    rewards, dones, infos = play(env, ["Lily found a kite."])
    assert rewards == [4.0] and dones == [True]
    (batch,) = recorder.batches
    assert batch.mode == ["standard"] and batch.remember == [[FIRST]] and batch.step == [1]
    assert batch.query == [F1.query] and batch.reference == [F1.answer] and batch.facts == [FACTS]
    assert infos[0]["reference"] == F1.answer and infos[0]["reward_components"] == {"words": pytest.approx(0.4)}


def test_cumulative_rewards_every_step_for_the_first_and_earlier_follow_ups():
    recorder = Recorder()
    env = MemoryRetentionEnv(episodes=[episode("cumulative", [F1, F2, F3])], reward=recorder)
    rewards, dones, infos = play(env, ["a", "a b", "a b c"])
    assert rewards == [1.0, 2.0, 3.0] and dones == [False, False, True]
    assert [b.remember[0] for b in recorder.batches] == [[FIRST], [FIRST, F1], [FIRST, F1, F2]]
    assert [b.mode for b in recorder.batches] == [["standard"]] * 3
    assert [i["step"] for i in infos] == [1, 2, 3] and all(i["rewarded"] for i in infos)


def test_long_range_rewards_staying_on_topic_then_delayed_recall():
    recorder = Recorder()
    env = MemoryRetentionEnv(episodes=[episode("long_range", [F1, F2, F3])], reward=recorder)
    rewards, dones, infos = play(env, ["a", "a b", "a b c"])
    assert rewards == [1.0, 2.0, 3.0] and dones == [False, False, True]
    assert [b.mode[0] for b in recorder.batches] == ["negative", "negative", "long_range"]
    assert all(b.remember == [[FIRST]] for b in recorder.batches)


def test_long_range_without_intermediate_rewards_gives_zero_and_skips_the_reward():
    recorder = Recorder()
    env = MemoryRetentionEnv(episodes=[episode("long_range", [F1, F2, F3])], reward=recorder, reward_intermediate=False)
    rewards, dones, infos = play(env, ["a", "a b", "a b c"])
    assert rewards == [0.0, 0.0, 3.0]
    assert [i["rewarded"] for i in infos] == [False, False, True] and infos[0]["reward_components"] == {}
    assert len(recorder.batches) == 1 and recorder.batches[0].mode == ["long_range"]


@pytest.mark.parametrize("strategy, steps", [("single", 1), ("cumulative", 4), ("long_range", 3)])
def test_synthetic_episode_of_each_strategy_has_its_steps(strategy, steps):
    env = MemoryRetentionEnv(strategy=strategy, steps=steps, reward=token_f1_reward, synthetic_episodes=3, seed=1)
    _, info = env.reset()
    assert info["strategy"] == strategy and info["steps"] == steps
    terminated, count = False, 0
    while not terminated:
        obs, _, terminated, _, info = env.step(env.episode.follow_ups[count].answer)  # the perfect answer
        count += 1
        assert info["reward_components"]["token_f1"] == pytest.approx(1.0)
    assert count == steps and obs == {"query": "", "answer": ""}
    with pytest.raises(RuntimeError, match="call reset"):
        env.step("more")


def test_seeding_makes_episodes_reproducible():
    def firsts(env, n=8):
        return [env.reset()[0]["answer"] for _ in range(n)]

    make = lambda seed: MemoryRetentionEnv(reward=token_f1_reward, synthetic_episodes=8, seed=seed)  # noqa: E731
    assert firsts(make(3)) == firsts(make(3))
    assert firsts(make(3)) != firsts(make(4))
    env = make(None)
    assert env.reset(seed=11)[0] == env.reset(seed=11)[0]
    chosen = [env.reset(options={"episode": i})[0]["answer"] for i in (3, 0)]
    assert chosen == [env.pool[i].first.answer for i in (3, 0)]
    with pytest.raises(IndexError, match="outside the pool"):
        env.reset(options={"episode": len(env.pool)})


def test_observations_are_folded_into_the_printable_charset():
    odd = Episode(Interaction("“Hi” — tell me…", "Zoë’s café\r\nwas open"), (F1,), strategy="single")
    env = MemoryRetentionEnv(episodes=[odd], reward=token_f1_reward)
    obs, _ = env.reset(seed=0)
    assert obs == {"query": '"Hi" - tell me...', "answer": "Zoe's cafe\nwas open"}
    assert obs in env.observation_space
    with pytest.raises(TypeError, match="answer text"):
        env.step(42)


def test_render_ansi_shows_the_last_interaction():
    env = MemoryRetentionEnv(episodes=[episode("single", [F1])], reward=token_f1_reward, render_mode="ansi")
    env.reset(seed=0)
    env.step("A red kite.")
    assert env.render() == f"[step 1] Q: {F1.query}\nA: A red kite.\n"


def test_token_f1_reward_by_hand():
    batch = RewardBatch(query=["q", "q"], generated=["The red kite!", ""], reference=["a red kite", "x"],
                        remember=[[FIRST], [FIRST]])
    out = token_f1_reward(batch)
    # "the red kite" vs "a red kite": 2 common words, precision = recall = 2/3, F1 = 2/3
    assert out.total.tolist() == pytest.approx([20 / 3, 0.0])
    assert out.components["token_f1"].tolist() == pytest.approx([2 / 3, 0.0])


def test_reward_names_and_the_default_go_through_get_reward(monkeypatch):
    asked = []

    def fake_get_reward(spec):
        asked.append(spec)
        return token_f1_reward

    monkeypatch.setattr(rewards, "get_reward", fake_get_reward)
    assert rewards.resolve_reward("fact-recall") == (token_f1_reward, "fact-recall")
    assert rewards.resolve_reward(None) == (token_f1_reward, "mrl-composite")
    assert asked == ["fact-recall", "mrl-composite"]
    with pytest.raises(RewardError, match="a name or a callable"):
        rewards.resolve_reward(3.5)


def test_a_reward_returning_the_wrong_shape_is_an_error_naming_it():
    def broken(batch):
        return [1.0, 2.0]

    env = MemoryRetentionEnv(episodes=[episode("single", [F1])], reward=broken)
    env.reset(seed=0)
    with pytest.raises(RewardError, match="reward 'broken' returned"):
        env.step("hello")


def test_episodes_from_a_snapshot_by_subset_naming(tmp_path):
    root = write_synthetic_dataset(tmp_path / "snap", steps=[1, 3], episodes=5, seed=2)
    env = MemoryRetentionEnv(source=str(root), steps=3, strategy="long_range", reward=token_f1_reward)
    assert len(env.pool) == 5 and all(e.strategy == "long_range" and e.steps == 3 for e in env.pool)
    mixed = MemoryRetentionEnv(source=str(root), split="validation", reward=token_f1_reward)
    assert sorted({(e.strategy, e.steps) for e in mixed.pool}) == [("cumulative", 3), ("long_range", 3), ("single", 1)]
    with pytest.raises(DataError, match="no subset named steps-N"):
        MemoryRetentionEnv(source=str(root), steps=2, reward=token_f1_reward)
    with pytest.raises(DataError, match=r"strategy single and steps any \(available: 5 cumulative with 3 steps\)"):
        MemoryRetentionEnv(source=str(root), subset="steps-3", strategy="single", reward=token_f1_reward)


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="strategy must be one of"):
        MemoryRetentionEnv(strategy="sometimes", reward=token_f1_reward)
    with pytest.raises(ConfigError, match="steps must be a positive integer"):
        MemoryRetentionEnv(steps=0, reward=token_f1_reward)
    with pytest.raises(ConfigError, match="strategy 'single' has no episodes of \\[4\\] steps"):
        MemoryRetentionEnv(strategy="single", steps=4, reward=token_f1_reward)
    with pytest.raises(ConfigError, match="splits train, validation, test"):
        MemoryRetentionEnv(split="dev", reward=token_f1_reward)
