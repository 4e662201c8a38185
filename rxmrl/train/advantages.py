"""Advantage estimation over the interaction steps of a batch of episodes, and its normalisation.

Everything is `[B, T]`: B episodes (rows) of T follow-up steps. `rewarded [B, T]` marks the steps whose
reward is a real judgement of the answer (a long-range episode rewards only some steps); a zero reward on an
unrewarded step is "no signal", not "bad answer".

- `impo`: A_t = r_t − V_t on rewarded steps only; the value target is r_t. The RxT recipe: each answer is
  judged on its own, the critic's memory-aware value is the baseline.
- `gae`: δ_t = r_t + γ V_{t+1} − V_t (V_{T+1} = 0, the episode ends), A_t = δ_t + γλ A_{t+1}; every step takes
  part, so a step whose answer is not rewarded (and the memory write after it) still earns credit for rewards
  that come later. The value target is A_t + V_t.
- `group`: rows that share a group id are rollouts of the same episode; the baseline of a rollout is the
  mean reward of the *other* rollouts of its group at the same step (leave-one-out, RLOO),
  which needs no critic. The value target is r_t (the critic still learns, for logging and later modes).
  With `skip_uniform_groups`, a group whose rewards at a step are all equal is inactive there (no signal).

Normalisation is built from sums and counts, so a distributed run can all-reduce them (`reduce`) before the
division and every process normalises with the same global statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from rxmrl.train.mrl_config import ImpoConfig


@dataclass
class Advantages:
    advantages: torch.Tensor  # [B, T]
    returns: torch.Tensor  # [B, T] value targets
    active: torch.Tensor  # [B, T] bool: steps that take part in the policy and value losses


def impo_advantages(rewards: torch.Tensor, values: torch.Tensor, rewarded: torch.Tensor) -> Advantages:
    """A = r − V on rewarded steps. rewards/values/rewarded [B, T]."""
    advantages = torch.where(rewarded, rewards - values, torch.zeros_like(rewards))
    return Advantages(advantages=advantages, returns=rewards.clone(), active=rewarded.clone())


def gae_advantages(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float) -> Advantages:
    """Generalised advantage estimation along the step axis; the episode ends after step T. [B, T] each."""
    steps = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(steps)):
        next_value = values[:, t + 1] if t + 1 < steps else torch.zeros_like(values[:, t])
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    active = torch.ones_like(rewards, dtype=torch.bool)
    return Advantages(advantages=advantages, returns=advantages + values, active=active)


def group_advantages(rewards: torch.Tensor, rewarded: torch.Tensor, group_ids: torch.Tensor,
                     skip_uniform: bool = False) -> Advantages:
    """Leave-one-out baseline among the rows that share a group id. rewards/rewarded [B, T], group_ids [B]."""
    groups, index = torch.unique(group_ids, return_inverse=True)
    counts = torch.zeros(len(groups), dtype=rewards.dtype, device=rewards.device).index_add_(
        0, index, torch.ones_like(index, dtype=rewards.dtype))
    if bool((counts < 2).any()):
        raise ValueError("every group needs at least 2 rollouts of its episode for a leave-one-out baseline")
    sums = torch.zeros((len(groups), rewards.shape[1]), dtype=rewards.dtype, device=rewards.device).index_add_(
        0, index, rewards)
    others_mean = (sums[index] - rewards) / (counts[index, None] - 1)
    advantages = torch.where(rewarded, rewards - others_mean, torch.zeros_like(rewards))
    active = rewarded.clone()
    if skip_uniform:
        shape = (len(groups), rewards.shape[1])
        index_2d = index[:, None].expand_as(rewards)
        high = rewards.new_full(shape, -torch.inf).scatter_reduce(0, index_2d, rewards, "amax")
        low = rewards.new_full(shape, torch.inf).scatter_reduce(0, index_2d, rewards, "amin")
        active &= (high > low)[index]
    return Advantages(advantages=advantages, returns=rewards.clone(), active=active)


def consecutive_groups(batch: int, group_size: int) -> torch.Tensor:
    """Group ids [B] for rows laid out as consecutive blocks of `group_size` rollouts: 0,0,..,1,1,.."""
    if batch % group_size != 0:
        raise ValueError(f"batch of {batch} rollouts is not a whole number of groups of {group_size}")
    return torch.arange(batch) // group_size


def compute_advantages(
    config: ImpoConfig,
    rewards: torch.Tensor,
    values: torch.Tensor,
    rewarded: torch.Tensor,
    group_ids: torch.Tensor | None = None,
) -> Advantages:
    """Dispatch on `config.advantage`. rewards (already scaled), values, rewarded: [B, T]; group_ids [B]
    (default: consecutive blocks of `config.group_size`)."""
    if config.advantage == "impo":
        return impo_advantages(rewards, values, rewarded)
    if config.advantage == "gae":
        return gae_advantages(rewards, values, config.gamma, config.lam)
    if config.advantage == "group":
        if group_ids is None:
            group_ids = consecutive_groups(rewards.shape[0], config.group_size)
        return group_advantages(rewards, rewarded, group_ids.to(rewards.device), config.skip_uniform_groups)
    raise ValueError(f"unknown advantage mode {config.advantage!r}")


Reduce = Callable[[torch.Tensor], torch.Tensor]


def normalize_advantages(
    advantages: torch.Tensor,  # [B, T]
    active: torch.Tensor,  # [B, T] bool
    mode: str,
    min_std: float = 0.0,
    eps: float = 1e-8,
    reduce: Reduce | None = None,
) -> torch.Tensor:
    """Zero mean, unit variance over the active entries: all at once (`batch`) or per step column (`step`).

    The divisor is max(std, min_std) + eps, so near-constant advantages stay small instead of becoming noise.
    `reduce` (e.g. an all-reduce sum across processes) is applied to the stacked [count, sum, sum of squares]
    statistics. Inactive entries stay 0. The variance is the population variance.
    """
    if mode == "none":
        return advantages
    weights = active.to(advantages.dtype)
    dims = (0, 1) if mode == "batch" else (0,)
    if mode not in ("batch", "step"):
        raise ValueError(f"unknown normalisation {mode!r}")
    stats = torch.stack([weights.sum(dims), (advantages * weights).sum(dims), (advantages.pow(2) * weights).sum(dims)])
    if reduce is not None:
        stats = reduce(stats)
    count, total, total_sq = stats[0].clamp(min=1.0), stats[1], stats[2]
    mean = total / count
    var = (total_sq / count - mean.pow(2)).clamp(min=0.0)
    normalized = (advantages - mean) / (var.sqrt().clamp(min=min_std) + eps)
    return torch.where(active, normalized, torch.zeros_like(normalized))
