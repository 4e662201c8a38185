"""Non-finite handling pieces: the guard's counting and the reward filter that turns NaN into a flag."""

import math

import pytest
import torch

from rxmrl.errors import TrainingError
from rxmrl.reward.base import RewardBatch, RewardOutput
from rxmrl.reward.registry import NamedReward
from rxmrl.train.guard import NonFiniteGuard, NonFiniteRewardFilter, all_finite, tolerant_reward


def batch_of(n):
    return RewardBatch(query=["q"] * n, generated=["a"] * n, reference=["r"] * n, remember=[[]] * n)


def test_guard_counts_consecutive_and_total_failures():
    guard = NonFiniteGuard(max_consecutive=2)
    for ok in (False, True, False):
        guard.record(ok)
    assert (guard.total, guard.consecutive, guard.exhausted) == (2, 1, False)
    guard.record(False)
    assert guard.exhausted
    error = guard.error("runs/x", "runs/x/checkpoints/step-00000004")
    assert isinstance(error, TrainingError) and "step-00000004" in str(error)
    restored = NonFiniteGuard(2)
    restored.load_state_dict(guard.state_dict())
    assert (restored.total, restored.consecutive) == (3, 2)


def test_all_finite():
    assert all_finite([torch.ones(2), None])
    assert not all_finite([torch.tensor([1.0, math.nan])])
    assert not all_finite([torch.tensor(math.inf)])


def test_reward_filter_replaces_nan_and_flags_the_samples():
    def nan_reward(batch):
        return RewardOutput(total=torch.tensor([1.0, math.nan, 3.0]),
                            components={"part": torch.tensor([0.5, 0.5, math.inf])})

    filtered = NonFiniteRewardFilter(nan_reward, "nan_reward")
    out = filtered(batch_of(3))
    assert out.total.tolist() == [1.0, 0.0, 3.0]
    assert out.components["part"].tolist() == [0.5, 0.5, 0.0]
    assert out.nonfinite.tolist() == [False, True, True]
    plain = NonFiniteRewardFilter(lambda b: [2.0, 4.0], "plain")(batch_of(2))
    assert plain.total.tolist() == [2.0, 4.0] and plain.nonfinite.tolist() == [False, False]


def test_tolerant_reward_keeps_the_named_wrapper_for_errors():
    def broken(batch):
        raise ZeroDivisionError("boom")

    env_reward, inner = tolerant_reward(NamedReward("broken", broken, user_code=True))
    assert isinstance(env_reward, NamedReward) and inner.__name__ == "broken"
    from rxmrl.errors import RewardError

    with pytest.raises(RewardError, match="broken"):
        env_reward(batch_of(1))
    env_reward, _ = tolerant_reward(NamedReward("nan", lambda b: [math.nan], user_code=True))
    out = env_reward(batch_of(1))  # the named wrapper's checks pass the flag on
    assert out.total.tolist() == [0.0] and out.nonfinite.tolist() == [True]
