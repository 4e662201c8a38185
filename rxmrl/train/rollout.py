"""Collect one batch of MRL episodes, storing what the update needs: the policy is the agent of the shared
episode loop (`rxmrl.env.episode_loop`), the one held-out evaluation and the retention benchmark run too.

An episode is: write the first interaction to memory (never generated, never rewarded), then for each of T
follow-ups: answer from the memory, get the reward, write the interaction (the query with the generated answer,
or with the reference answer under teacher forcing) to memory. Stored per follow-up step: query and answer
tokens, the answer's log-probs under the collecting policy, the critic's value, the reward (and its
components), and the STM *before every write* as detached snapshots, with the interactions written, so the
update can recompute any write with gradients from a snapshot. Everything lives on the policy's device.

Write j (0-based) is the first interaction for j = 0 and follow-up j − 1's interaction afterwards; follow-up k
reads the STM after writes 0..k. That rule is `Rollout`'s alone: the update asks it for what an answer read
(`stm_read_by`, `written_before`, `writes_read_by`) and never indexes the snapshots itself. There are T + 1
writes; the STM after the last one is `final_stm`, the memory a sample carries into its next episode when
resets are random.

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
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from rxmrl.data.episode import Episode
from rxmrl.env.episode_loop import Turn, run_episodes
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
    """B episodes of T follow-ups, on one device. Token tensors are right-padded with the tokenizer's pad id.

    An answer is addressed by (row b, step k), in the reads below as two [M] index tensors `rows`, `steps`;
    token reads drop the columns that are padding in all M rows."""

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

    def locate(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat answer indices b * T + k [M] (as in `rewards.flatten()`) -> (rows [M], steps [M]) on the
        rollout's device."""
        items = items.to(self.rewards.device)
        return items // self.steps, items % self.steps

    @staticmethod
    def writes_read_by(steps: torch.Tensor) -> torch.Tensor:
        """[M] how many writes the STM read by follow-up k holds: the first interaction and follow-ups < k."""
        return steps + 1

    def stm_before(self, rows: torch.Tensor, writes: torch.Tensor) -> torch.Tensor:
        """The STM before write j of each row (= after writes < j), detached: [M, L, S, D]."""
        return self.snapshots[rows, writes]

    def stm_read_by(self, rows: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """The STM each answer was given from at collection, detached: [M, L, S, D]."""
        return self.stm_before(rows, self.writes_read_by(steps))

    def interaction(self, rows: torch.Tensor, writes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What write j wrote: ids, mask [M, Tw]."""
        return trim_padding(self.written[rows, writes], self.written_mask[rows, writes])

    def written_before(self, rows: torch.Tensor, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The interaction written just before each answer (the critic reads it): ids, mask [M, Tw]."""
        return self.interaction(rows, self.writes_read_by(steps) - 1)

    def query(self, rows: torch.Tensor, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids, mask [M, Tq]."""
        return trim_padding(self.queries[rows, steps], self.query_mask[rows, steps])

    def answer(self, rows: torch.Tensor, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The answers as generated: ids, mask [M, N]."""
        return trim_padding(self.answers[rows, steps], self.answer_mask[rows, steps])


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
    """Run one batch of episodes in `env` (from `rxmrl.env.episode_loop.make_env`, its reward from
    `rxmrl.train.guard.tolerant_reward`: a non-finite score arrives as info["nonfinite"] and is stored as NaN)."""
    collector = _Collector(policy, settings, pad_id=pad_id, eos_id=eos_id, start_stm=start_stm, reset=reset,
                           memory_generator=memory_generator, sample_generator=sample_generator,
                           reference_model=reference_model, keep_samples=keep_samples, autocast=autocast)
    run_episodes(env, collector, policy.model.device)
    return collector.rollout()


class _Collector:
    """The rollout's agent in the shared episode loop: the policy answers, every interaction is written to its
    STM, and what the update needs is kept step by step (`rollout()` stacks it)."""

    def __init__(self, policy: RxTPolicy, settings: RolloutSettings, *, pad_id: int, eos_id: int,
                 start_stm: torch.Tensor | None, reset: torch.Tensor | None, memory_generator: torch.Generator | None,
                 sample_generator: torch.Generator | None, reference_model: torch.nn.Module | None,
                 keep_samples: int, autocast: Any) -> None:
        self.policy, self.settings, self.pad_id, self.eos_id = policy, settings, pad_id, eos_id
        self.start_stm, self.start_reset = start_stm, reset
        self.memory_generator, self.sample_generator = memory_generator, sample_generator
        self.reference_model, self.keep_samples = reference_model, keep_samples
        self.autocast = autocast or contextlib.nullcontext
        self.snapshots: list[torch.Tensor] = []
        self.written: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.queries: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.answers: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.references: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.logprobs: list[torch.Tensor] = []
        self.ref_logprobs: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.rewards: list[torch.Tensor] = []
        self.rewarded: list[torch.Tensor] = []
        self.components: dict[str, list[torch.Tensor]] = {}

    def start(self, episodes: list[Episode], remember_ids: torch.Tensor, remember_mask: torch.Tensor) -> None:
        policy, device = self.policy, self.policy.model.device
        self.episodes, self.batch = episodes, len(episodes)
        # Rows holding the same episode object (rollouts of one episode for a group baseline) share the id of
        # its first row; the environment may have shuffled the rows.
        first_row: dict[int, int] = {}
        self.group_ids = torch.tensor([first_row.setdefault(id(e), i) for i, e in enumerate(episodes)],
                                      dtype=torch.long, device=device)
        if self.start_stm is None:
            stm = policy.initial_state(self.batch, generator=self.memory_generator)
            reset = torch.ones(self.batch, dtype=torch.bool, device=device)
        else:
            reset = self.start_reset.to(device)
            stm = policy.reset_state(self.start_stm.to(device), reset, generator=self.memory_generator)
        if self.settings.branch:  # a group id is its first row
            stm, reset = stm[self.group_ids], reset[self.group_ids]
        self.reset = reset
        self.samples = [dict(first=episodes[i].first, steps=[]) for i in range(min(self.keep_samples, self.batch))]
        self.stm = self._write(stm, remember_ids, remember_mask)

    def respond(self, step: int, query: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        settings, policy = self.settings, self.policy
        context, context_mask = self.written[-1]
        read = policy.initial_state(self.batch, generator=self.memory_generator) if settings.forget else self.stm
        with self.autocast():
            out = policy.act(
                query, query_mask, read, max_new_tokens=settings.max_new_tokens,
                eos_id=None if settings.force_length else self.eos_id, pad_id=self.pad_id, sampling=settings.sampling,
                generator=self.sample_generator, context=context, context_mask=context_mask,
                with_values=settings.with_values, compile=settings.compile,
            )
        answer, answer_mask = out.answer, out.answer_mask
        if not settings.force_length:
            answer, answer_mask = end_at_first_pad(answer, answer_mask, self.pad_id)
        if self.reference_model is not None:
            with self.autocast():
                ref = self.reference_model.answer_logprobs(query, query_mask, answer, answer_mask, read)
            self.ref_logprobs.append(ref.logprobs.float())
        self.queries.append((query, query_mask))
        self.answers.append((answer, answer_mask))
        self.logprobs.append(out.logprobs.float().masked_fill(~answer_mask, 0.0))
        self.values.append(out.values.float())
        return answer

    def record(self, turn: Turn) -> None:
        k, settings = turn.step, self.settings
        for name, value in turn.components.items():
            self.components.setdefault(name, [turn.rewards.new_zeros(self.batch)] * k).append(value)
        for name in self.components:
            if len(self.components[name]) < k + 1:  # a component missing at this step (no rewarded sample)
                self.components[name].append(turn.rewards.new_zeros(self.batch))
        self.rewards.append(turn.rewards)
        self.rewarded.append(turn.rewarded)
        self.references.append((turn.references, turn.reference_mask))
        for i, sample in enumerate(self.samples):
            sample["steps"].append(dict(query=self.episodes[i].follow_ups[k].query,
                                        generated=turn.info["generated"][i], reference=turn.info["reference"][i],
                                        reward=float(turn.rewards[i])))
        if settings.teacher_forcing:
            interaction = join_padded(turn.query, turn.query_mask, turn.references, turn.reference_mask,
                                      pad_id=self.pad_id, max_len=settings.max_interaction_len)
        else:
            interaction = turn.interaction, turn.interaction_mask
            if settings.branch:
                if settings.branch_pick == "best":
                    chosen = best_in_group(turn.rewards, self.group_ids)
                else:
                    chosen = branch_choice(self.group_ids, self.sample_generator)
                interaction = interaction[0][chosen], interaction[1][chosen]
        self.stm = self._write(self.stm, *interaction, skip=turn.last and not settings.final_write)

    def _write(self, stm: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
               skip: bool = False) -> torch.Tensor | None:
        ids, mask = trim_padding(ids, mask)
        self.snapshots.append(stm)
        self.written.append((ids, mask))
        if skip:  # recorded for the update, but no answer reads the STM it would produce
            return None
        with self.autocast():
            return self.policy.remember(stm, ids, mask)

    def rollout(self) -> Rollout:
        pad_id = self.pad_id
        query_ids, query_masks = stack_padded(self.queries, pad_id)
        answer_ids, answer_masks = stack_padded(self.answers, pad_id)
        written_ids, written_masks = stack_padded(self.written, pad_id)
        reference_ids, reference_masks = stack_padded(self.references, pad_id)
        width = answer_ids.shape[2]
        pad_cols = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]))  # noqa: E731
        return Rollout(
            snapshots=torch.stack(self.snapshots, dim=1),
            written=written_ids,
            written_mask=written_masks,
            queries=query_ids,
            query_mask=query_masks,
            answers=answer_ids,
            answer_mask=answer_masks,
            logprobs=torch.stack([pad_cols(lp) for lp in self.logprobs], dim=1),
            values=torch.stack(self.values, dim=1),
            rewards=torch.stack(self.rewards, dim=1),
            rewarded=torch.stack(self.rewarded, dim=1),
            components={name: torch.stack(v, dim=1) for name, v in self.components.items()},
            reset=self.reset,
            group_ids=self.group_ids,
            final_stm=self.stm,
            ref_logprobs=torch.stack([pad_cols(lp) for lp in self.ref_logprobs], dim=1) if self.ref_logprobs else None,
            samples=self.samples,
            references=reference_ids,
            reference_mask=reference_masks,
        )
