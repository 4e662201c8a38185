"""Collect one batch of MRL episodes through the vectorised environment, storing what the update needs.

An episode is: write the first interaction to memory (never generated, never rewarded), then for each of T
follow-ups: answer from the memory, get the reward, write the interaction (the query with the generated answer,
or with the reference answer under teacher forcing) to memory. Stored per follow-up step: query and answer
tokens, the answer's log-probs under the collecting policy, the critic's value, the reward (and its
components), and the STM *before every write* as detached snapshots, with the interactions written, so the
update can recompute any write with gradients from a snapshot.

Write j (0-based) is the first interaction for j = 0 and follow-up j − 1's interaction afterwards; follow-up k
reads the STM after write k, i.e. `snapshots[:, k + 1]`. There are T + 1 writes; the STM after the last one is
`final_stm`, the memory a sample carries into its next episode when resets are random.

Branching (`RolloutSettings.branch`): the rollouts of one episode (rows that share a group id) start from one
STM and, after every follow-up, all write the interaction of one of them, drawn at random; so at every step
the group's answers are G samples from the *same* memory state, and a group baseline compares answers, not
memories that diverged after the first answer (the Memory-R2 argument). Without it each rollout writes its
own answer and the rollouts of an episode read different memories from the second follow-up on.
With `branch_pick = "best"` (DMPO's sampled pairs) the group writes its best-rewarded answer instead of a
random one (`best_in_group`), so the memory holds only accepted interactions.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from rxmrl.data.episode import Episode
from rxmrl.model.sampling import Sampling
from rxmrl.policy.rxt_policy import RxTPolicy
from rxmrl.tokens import join_padded, stack_padded, trim_padding


@dataclass
class RolloutSettings:
    """How answers are produced while collecting (a stage's generation settings, or greedy for evaluation)."""

    max_new_tokens: int
    sampling: Sampling = Sampling()
    teacher_forcing: bool = False
    with_values: bool = True
    forget: bool = False  # answer every follow-up from a fresh STM (the memory ablation of evaluation)
    force_length: bool = False  # never stop at EOS: every answer has max_new_tokens tokens (benchmarks)
    final_write: bool = True  # also write the last interaction (only needed to carry the STM on)
    max_interaction_len: int | None = None  # longest interaction written to memory (None = no cut)
    branch: bool = False  # the rollouts of an episode share one memory (see the module docstring)
    branch_pick: Literal["random", "best"] = "random"  # whose interaction a branching group writes
    # Decode through torch.compile (`Decoder.step(compiled=True)`). Off: on a CPU the first rollout compiles
    # for about a minute, and at batch 16 the compiled step was not faster than the eager one (BENCHMARKS.md).
    compile: bool = False


@dataclass
class Rollout:
    """B episodes of T follow-ups. Token tensors are right-padded with the tokenizer's pad id."""

    snapshots: torch.Tensor  # [B, T+1, L, S, D] STM before write j (detached)
    written: torch.Tensor  # [B, T+1, Tw] interaction of write j
    written_mask: torch.Tensor  # [B, T+1, Tw]
    queries: torch.Tensor  # [B, T, Tq]
    query_mask: torch.Tensor  # [B, T, Tq]
    answers: torch.Tensor  # [B, T, N]
    answer_mask: torch.Tensor  # [B, T, N]
    logprobs: torch.Tensor  # [B, T, N] under the collecting policy; 0 on padding
    values: torch.Tensor  # [B, T] critic at collection
    rewards: torch.Tensor  # [B, T] on the 0–10 scale; NaN where the reward was non-finite
    rewarded: torch.Tensor  # [B, T] bool
    components: dict[str, torch.Tensor]  # name -> [B, T]
    reset: torch.Tensor  # [B] bool: the sample started from a fresh STM
    group_ids: torch.Tensor  # [B] rows with the same id are rollouts of the same episode
    final_stm: torch.Tensor | None  # [B, L, S, D] after the last write (None without `final_write`)
    ref_logprobs: torch.Tensor | None = None  # [B, T, N] of a frozen reference model
    references: torch.Tensor | None = None  # [B, T, Na] the dataset's answers `a [EOS]`
    reference_mask: torch.Tensor | None = None  # [B, T, Na]
    samples: list[dict[str, Any]] = field(default_factory=list)  # readable text of the first episodes

    @property
    def batch_size(self) -> int:
        return self.answers.shape[0]

    @property
    def steps(self) -> int:
        return self.answers.shape[1]

    @property
    def nonfinite(self) -> bool:
        return not bool(torch.isfinite(self.rewards).all())


def end_at_first_pad(answer: torch.Tensor, mask: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A sampled pad token ends the answer like EOS (the environment reads it so): keep it, drop what follows.

    answer/mask [B, N] -> the same shapes.
    """
    is_pad = (answer == pad_id) & mask
    after_pad = (torch.cumsum(is_pad.long(), dim=1) - is_pad.long()) > 0
    mask = mask & ~after_pad
    return torch.where(mask, answer, torch.full_like(answer, pad_id)), mask


def branch_choice(group_ids: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """For each row, the row of its group whose interaction the whole group writes: one drawn uniformly per
    group. group_ids [B] -> row indices [B]."""
    draws = torch.rand(group_ids.shape[0], generator=generator, device=group_ids.device)
    same_group = group_ids[:, None] == group_ids[None, :]  # [B, B]
    return torch.where(same_group, draws[None, :], torch.full_like(same_group, -1.0, dtype=draws.dtype)).argmax(1)


def best_in_group(scores: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """For each row, the row of its group with the highest score; the first such row among ties (the rows of a
    group are exchangeable samples, so that is an unbiased pick). NaN scores lose to every number.
    scores [B], group_ids [B] -> row indices [B]. `best_in_group(-scores, ...)` gives the lowest."""
    keys = torch.nan_to_num(scores.double(), nan=-1e300, posinf=1e300, neginf=-1e300)
    same_group = group_ids[:, None] == group_ids[None, :]  # [B, B]
    # rows of other groups sit below any score, so a row always picks within its own group
    return torch.where(same_group, keys[None, :], torch.full_like(keys, -torch.inf)[None, :]).argmax(1)


def make_env(episodes: list[Episode], tokenizer: Any, reward: Any, *, steps: int, seed: int,
             max_query_len: int, max_answer_len: int, max_interaction_len: int, reward_intermediate: bool = True) -> Any:
    """A vectorised environment holding exactly these episodes (one per row, in an order drawn from `seed`);
    `reward_intermediate=False` leaves the unrelated follow-ups of long-range episodes unrewarded."""
    from rxmrl.env.vector_env import VectorMemoryEnv

    return VectorMemoryEnv(
        episodes=episodes, num_envs=len(episodes), tokenizer=tokenizer, reward=reward, steps=steps, strategy="mixed",
        max_query_len=max_query_len, max_answer_len=max_answer_len, seed=seed, max_interaction_len=max_interaction_len,
        reward_intermediate=reward_intermediate,
    )


def _tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


@torch.no_grad()
def collect_rollout(
    policy: RxTPolicy,
    env: Any,
    settings: RolloutSettings,
    *,
    pad_id: int,
    eos_id: int,
    start_stm: torch.Tensor | None = None,  # [B, L, S, D] carried from the previous episodes, or None
    reset: torch.Tensor | None = None,  # [B] bool: rows of start_stm to re-initialise
    memory_generator: torch.Generator | None = None,
    sample_generator: torch.Generator | None = None,
    reference_model: torch.nn.Module | None = None,
    keep_samples: int = 0,
    autocast: Any = None,
) -> Rollout:
    """Run one batch of episodes in `env` (from `make_env`, with a reward from `rxmrl.train.guard.tolerant_reward`
    so that a non-finite score arrives as the env's info["nonfinite"] and is stored as NaN)."""
    device = policy.model.device
    obs, _ = env.reset()
    batch, steps = env.num_envs, env.steps
    # Rows holding the same episode object (rollouts of one episode for a group baseline) share the id of
    # its first row; the environment may have shuffled the rows.
    first_row: dict[int, int] = {}
    group_ids = torch.tensor([first_row.setdefault(id(e), i) for i, e in enumerate(env.episodes)], dtype=torch.long)

    if start_stm is None:
        stm = policy.initial_state(batch, generator=memory_generator)
        reset = torch.ones(batch, dtype=torch.bool, device=device)
    else:
        reset = reset.to(device)
        stm = policy.reset_state(start_stm.to(device), reset, generator=memory_generator)
    if settings.branch:
        stm, reset = stm[group_ids.to(device)], reset[group_ids.to(device)]  # a group id is its first row
    autocast = autocast or contextlib.nullcontext

    snapshots, written = [], []

    def write(stm: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, skip: bool = False) -> torch.Tensor | None:
        ids, mask = trim_padding(ids, mask)
        snapshots.append(stm)
        written.append((ids, mask))
        if skip:  # recorded for the update, but no answer reads the STM it would produce
            return None
        with autocast():
            return policy.remember(stm, ids, mask)

    stm = write(stm, _tensor(obs["remember_ids"], device), _tensor(obs["remember_mask"], device))
    queries, answers, logprobs, values, rewards, rewarded = [], [], [], [], [], []
    ref_logprobs, components, references = [], {}, []
    samples = [dict(first=env.episodes[i].first, steps=[]) for i in range(min(keep_samples, batch))]
    for k in range(steps):
        query, query_mask = trim_padding(_tensor(obs["query_ids"], device), _tensor(obs["query_mask"], device))
        context, context_mask = written[-1]
        read = policy.initial_state(batch, generator=memory_generator) if settings.forget else stm
        with autocast():
            step = policy.act(
                query, query_mask, read, max_new_tokens=settings.max_new_tokens,
                eos_id=None if settings.force_length else eos_id, pad_id=pad_id, sampling=settings.sampling,
                generator=sample_generator, context=context, context_mask=context_mask,
                with_values=settings.with_values, compile=settings.compile,
            )
        answer, answer_mask = step.answer, step.answer_mask
        if not settings.force_length:
            answer, answer_mask = end_at_first_pad(answer, answer_mask, pad_id)
        if reference_model is not None:
            with autocast():
                ref = reference_model.answer_logprobs(query, query_mask, answer, answer_mask, read)
            ref_logprobs.append(ref.logprobs.float())
        obs, step_rewards, _, _, info = env.step(answer)
        step_rewards = torch.from_numpy(step_rewards).float().masked_fill(torch.from_numpy(info["nonfinite"]), math.nan)
        step_rewarded = torch.from_numpy(info["rewarded"]).bool()
        for name, value in info["reward_components"].items():
            components.setdefault(name, [torch.zeros(batch)] * k).append(torch.from_numpy(value).float())
        for name in components:
            if len(components[name]) < k + 1:  # a component missing at this step (no rewarded sample)
                components[name].append(torch.zeros(batch))
        queries.append((query, query_mask))
        answers.append((answer, answer_mask))
        logprobs.append(step.logprobs.float().masked_fill(~answer_mask, 0.0))
        values.append(step.values.float())
        rewards.append(step_rewards)
        rewarded.append(step_rewarded)
        references.append(trim_padding(_tensor(info["reference_ids"], device), _tensor(info["reference_mask"], device)))
        for i, sample in enumerate(samples):
            sample["steps"].append(dict(query=env.episodes[i].follow_ups[k].query, generated=info["generated"][i],
                                        reference=info["reference"][i], reward=float(step_rewards[i])))
        if settings.teacher_forcing:
            reference = _tensor(info["reference_ids"], device), _tensor(info["reference_mask"], device)
            interaction = join_padded(query, query_mask, *reference, pad_id=pad_id, max_len=settings.max_interaction_len)
        else:
            interaction = _tensor(info["interaction_ids"], device), _tensor(info["interaction_mask"], device)
            if settings.branch:
                if settings.branch_pick == "best":
                    chosen = best_in_group(step_rewards, group_ids).to(device)
                else:
                    chosen = branch_choice(group_ids.to(device), sample_generator)
                interaction = interaction[0][chosen], interaction[1][chosen]
        stm = write(stm, *interaction, skip=k == steps - 1 and not settings.final_write)

    query_ids, query_masks = stack_padded(queries, pad_id)
    answer_ids, answer_masks = stack_padded(answers, pad_id)
    written_ids, written_masks = stack_padded(written, pad_id)
    reference_ids, reference_masks = stack_padded(references, pad_id)
    width = answer_ids.shape[2]
    pad_cols = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]))  # noqa: E731
    return Rollout(
        snapshots=torch.stack(snapshots, dim=1),
        written=written_ids,
        written_mask=written_masks,
        queries=query_ids,
        query_mask=query_masks,
        answers=answer_ids,
        answer_mask=answer_masks,
        logprobs=torch.stack([pad_cols(lp) for lp in logprobs], dim=1),
        values=torch.stack(values, dim=1).cpu(),
        rewards=torch.stack(rewards, dim=1),
        rewarded=torch.stack(rewarded, dim=1),
        components={name: torch.stack(v, dim=1) for name, v in components.items()},
        reset=reset.cpu(),
        group_ids=group_ids,
        final_stm=stm,
        ref_logprobs=torch.stack([pad_cols(lp) for lp in ref_logprobs], dim=1) if ref_logprobs else None,
        samples=samples,
        references=reference_ids,
        reference_mask=reference_masks,
    )
