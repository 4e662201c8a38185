"""Each advantage mode and the normalisation on hand-worked cases."""

import pytest
import torch

from rxmrl.train.advantages import (
    compute_advantages,
    consecutive_groups,
    gae_advantages,
    group_advantages,
    impo_advantages,
    normalize_advantages,
)
from rxmrl.errors import ConfigError
from rxmrl.train.mrl_config import ImpoConfig


def test_impo_is_reward_minus_value_on_rewarded_steps_only():
    rewards = torch.tensor([[1.0, 0.0], [0.5, 2.0]])
    values = torch.tensor([[0.5, 0.5], [1.0, 1.0]])
    rewarded = torch.tensor([[True, False], [True, True]])
    out = impo_advantages(rewards, values, rewarded)
    assert out.advantages.tolist() == [[0.5, 0.0], [-0.5, 1.0]]
    assert out.returns.tolist() == rewards.tolist()
    assert out.active.tolist() == rewarded.tolist()


def test_gae_credits_an_earlier_step_for_a_later_reward():
    # gamma = lambda = 0.5; step 2: delta = 2 - 1 = 1 -> A = 1; step 1: delta = 1 + 0.5*1 - 0.5 = 1,
    # A = 1 + 0.25 * 1 = 1.25
    out = gae_advantages(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, 1.0]]), gamma=0.5, lam=0.5)
    assert out.advantages.tolist() == [[1.25, 1.0]]
    assert out.returns.tolist() == [[1.75, 2.0]]
    assert out.active.all()
    # a zero reward on step 1 still gets credit for the reward at step 2 (the delayed long-range recall)
    delayed = gae_advantages(torch.tensor([[0.0, 4.0]]), torch.zeros(1, 2), gamma=1.0, lam=1.0)
    assert delayed.advantages.tolist() == [[4.0, 4.0]]


def test_group_baseline_is_the_mean_of_the_other_rollouts():
    rewards = torch.tensor([[1.0], [3.0], [5.0], [7.0]])
    rewarded = torch.ones(4, 1, dtype=torch.bool)
    out = group_advantages(rewards, rewarded, torch.tensor([0, 0, 1, 1]))
    assert out.advantages.flatten().tolist() == [-2.0, 2.0, -2.0, 2.0]
    triple = group_advantages(torch.tensor([[1.0], [2.0], [6.0]]), torch.ones(3, 1, dtype=torch.bool),
                              torch.tensor([9, 9, 9]))
    assert triple.advantages.flatten().tolist() == pytest.approx([1 - 4.0, 2 - 3.5, 6 - 1.5])
    # group ids need not be contiguous (the environment may shuffle rows)
    shuffled = group_advantages(torch.tensor([[1.0], [5.0], [3.0], [7.0]]), torch.ones(4, 1, dtype=torch.bool),
                                torch.tensor([0, 1, 0, 1]))
    assert shuffled.advantages.flatten().tolist() == [-2.0, -2.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="at least 2"):
        group_advantages(rewards, rewarded, torch.tensor([0, 0, 0, 1]))


def test_skip_uniform_groups_deactivates_groups_whose_answers_all_score_alike():
    # step 1: group 0 all 4.0 (no signal), group 1 differs; step 2: group 0 differs, group 1 all 0
    rewards = torch.tensor([[4.0, 1.0], [4.0, 3.0], [2.0, 0.0], [6.0, 0.0]])
    rewarded = torch.ones(4, 2, dtype=torch.bool)
    out = group_advantages(rewards, rewarded, torch.tensor([0, 0, 1, 1]), skip_uniform=True)
    assert out.active.tolist() == [[False, True], [False, True], [True, False], [True, False]]
    assert out.advantages.tolist() == [[0.0, -2.0], [0.0, 2.0], [-4.0, 0.0], [4.0, 0.0]]
    assert group_advantages(rewards, rewarded, torch.tensor([0, 0, 1, 1])).active.all()
    config = ImpoConfig(advantage="group", group_size=2, skip_uniform_groups=True)
    assert compute_advantages(config, rewards, rewards, rewarded).active.tolist() == out.active.tolist()
    # an unrewarded step stays inactive whatever its group looks like
    partial = group_advantages(rewards, torch.tensor([[True, False]] * 4), torch.tensor([0, 0, 1, 1]), True)
    assert not partial.active[:, 1].any()
    with pytest.raises(ConfigError, match="group"):
        ImpoConfig(advantage="impo", skip_uniform_groups=True)


def test_compute_advantages_dispatches_and_defaults_to_consecutive_groups():
    rewards, values = torch.tensor([[1.0], [3.0]]), torch.tensor([[1.0], [1.0]])
    rewarded = torch.ones(2, 1, dtype=torch.bool)
    impo = compute_advantages(ImpoConfig(advantage="impo"), rewards, values, rewarded)
    assert impo.advantages.flatten().tolist() == [0.0, 2.0]
    group = compute_advantages(ImpoConfig(advantage="group", group_size=2), rewards, values, rewarded)
    assert group.advantages.flatten().tolist() == [-2.0, 2.0]
    assert consecutive_groups(6, 3).tolist() == [0, 0, 0, 1, 1, 1]


def test_batch_normalisation():
    advantages = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = normalize_advantages(advantages, torch.ones(2, 2, dtype=torch.bool), "batch")
    std = (1.25) ** 0.5  # population variance of 1, 2, 3, 4
    assert out.flatten().tolist() == pytest.approx([(a - 2.5) / std for a in (1, 2, 3, 4)], abs=1e-6)


def test_step_normalisation_and_inactive_entries():
    advantages = torch.tensor([[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]])
    active = torch.tensor([[True, True], [True, True], [False, False]])
    out = normalize_advantages(advantages, active, "step")
    assert out.flatten().tolist() == pytest.approx([-1.0, -1.0, 1.0, 1.0, 0.0, 0.0], abs=1e-6)
    assert normalize_advantages(advantages, active, "none") is advantages


def test_min_std_keeps_near_constant_advantages_small():
    advantages = torch.tensor([[0.001, -0.001]])
    active = torch.ones(1, 2, dtype=torch.bool)
    assert normalize_advantages(advantages, active, "batch").abs().max().item() == pytest.approx(1.0, abs=1e-4)
    assert normalize_advantages(advantages, active, "batch", min_std=0.1).abs().max().item() == pytest.approx(0.01)


def test_normalisation_statistics_go_through_reduce():
    advantages = torch.tensor([[1.0, 3.0]])
    seen = []

    def reduce(stats):  # a stand-in for an all-reduce over two identical processes
        seen.append(stats.clone())
        return stats * 2

    out = normalize_advantages(advantages, torch.ones(1, 2, dtype=torch.bool), "batch", reduce=reduce)
    assert seen[0].tolist() == [2.0, 4.0, 10.0]  # count, sum, sum of squares
    assert out.flatten().tolist() == pytest.approx([-1.0, 1.0], abs=1e-6)
