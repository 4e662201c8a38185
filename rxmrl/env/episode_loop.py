"""The one episode loop: training collection, held-out evaluation and the retention benchmark all run a batch
of episodes through `run_episodes`, so an episode means the same thing in all three.

    agent.start(episodes, remember_ids, remember_mask)  # the first interaction: never answered, never rewarded
    for each follow-up k:
        answer = agent.respond(k, query_ids, query_mask)  # [N, W] ids
        env.step(answer)                                 # rewarded per strategy (rxmrl.env.routing)
        agent.record(turn)                               # the env's verdict and the interaction to remember

What an agent does with it is its own: the rollout (`rxmrl.train.rollout`) answers with the policy and keeps
what the update needs; the benchmark (`rxmrl.bench.retention`) asks a `System` and scores the answers.

Ids reach the agent as right-padded [N, T] tensors with a [N, T] bool mask on the loop's device, without
all-padding columns at the right. The interaction to remember is the env's own `info["interaction_ids"]`: the
query followed by the answer *as the env kept it* (cut at its first EOS or pad, at most max_answer_len − 1
tokens, then EOS: what the reward saw).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from rxmrl.data.episode import Episode
from rxmrl.tokens import trim_padding


@dataclass
class Turn:
    """Follow-up `step` of N episodes, answered and rewarded. Tensors are on the loop's device."""

    step: int  # 0-based
    last: bool  # the episodes' last follow-up
    query: torch.Tensor  # [N, Tq] `[BOS][Q] q [A]`
    query_mask: torch.Tensor  # [N, Tq]
    interaction: torch.Tensor  # [N, Ti] the query and the answer as the env kept it, `[BOS][Q] q [A] a [EOS]`
    interaction_mask: torch.Tensor  # [N, Ti]
    rewards: torch.Tensor  # [N] float32 on the 0–10 scale; 0 where not rewarded, NaN where the score was not finite
    rewarded: torch.Tensor  # [N] bool
    components: dict[str, torch.Tensor]  # name -> [N] float32, 0 where not rewarded
    references: torch.Tensor  # [N, Ta] the dataset's answers `a [EOS]`
    reference_mask: torch.Tensor  # [N, Ta]
    info: dict[str, Any]  # the env's step info as it came (texts for logs and reports)


class Agent(Protocol):
    """Who answers in `run_episodes`; one agent per batch of episodes."""

    def start(self, episodes: list[Episode], remember_ids: torch.Tensor, remember_mask: torch.Tensor) -> None:
        """Take in the first interactions of the N episodes (row i is `episodes[i]`)."""

    def respond(self, step: int, query: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        """Answer follow-up `step` -> answer ids [N, W], right-padded (each ends at its first EOS or pad)."""

    def record(self, turn: Turn) -> None:
        """Take in how the answers just given were rewarded and what to remember of them."""


def make_env(episodes: list[Episode], tokenizer: Any, reward: Any, *, steps: int, seed: int, max_query_len: int,
             max_answer_len: int, max_interaction_len: int, reward_intermediate: bool = True) -> Any:
    """A vectorised environment holding exactly these episodes (one per row, in an order drawn from `seed`);
    `reward_intermediate=False` leaves the unrelated follow-ups of long-range episodes unrewarded."""
    from rxmrl.env.vector_env import VectorMemoryEnv

    return VectorMemoryEnv(
        episodes=episodes, num_envs=len(episodes), tokenizer=tokenizer, reward=reward, steps=steps, strategy="mixed",
        max_query_len=max_query_len, max_answer_len=max_answer_len, seed=seed, max_interaction_len=max_interaction_len,
        reward_intermediate=reward_intermediate,
    )


def run_episodes(env: Any, agent: Agent, device: torch.device | str, options: dict[str, Any] | None = None) -> None:
    """Run the batch that `env.reset(options=options)` starts (a `VectorMemoryEnv`) with `agent`, from the
    first interaction to the last follow-up."""
    obs, _ = env.reset(options=options)
    agent.start(env.episodes, *_ids(obs["remember_ids"], obs["remember_mask"], device))
    for k in range(env.steps):
        query, query_mask = _ids(obs["query_ids"], obs["query_mask"], device)
        answer = agent.respond(k, query, query_mask)
        obs, rewards, _, _, info = env.step(answer)
        agent.record(_turn(k, k == env.steps - 1, query, query_mask, rewards, info, device))


def _turn(step: int, last: bool, query: torch.Tensor, query_mask: torch.Tensor, rewards: np.ndarray,
          info: dict[str, Any], device: torch.device | str) -> Turn:
    interaction, interaction_mask = _ids(info["interaction_ids"], info["interaction_mask"], device)
    references, reference_mask = _ids(info["reference_ids"], info["reference_mask"], device)
    rewards = torch.from_numpy(rewards).float().masked_fill(torch.from_numpy(info["nonfinite"]), math.nan)
    return Turn(
        step=step, last=last, query=query, query_mask=query_mask, interaction=interaction,
        interaction_mask=interaction_mask, rewards=rewards.to(device), rewarded=_tensor(info["rewarded"], device),
        components={name: _tensor(v, device).float() for name, v in info["reward_components"].items()},
        references=references, reference_mask=reference_mask, info=info,
    )


def _ids(ids: np.ndarray, mask: np.ndarray, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    return trim_padding(_tensor(ids, device), _tensor(mask, device))


def _tensor(array: np.ndarray, device: torch.device | str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)
