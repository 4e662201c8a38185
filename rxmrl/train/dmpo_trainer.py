"""The DMPO update of one collected rollout: build preference pairs, score them from one STM, step the optimizer.

Pairs (`preference_pairs`) come from a rollout collected as `dmpo_rollout_settings` says:
- `sampled`: the G rollouts of an episode branch from one memory (`RolloutSettings.branch`) and after every
  follow-up all write the best-rewarded answer (`branch_pick = "best"`); the pair of a step is that answer
  (accepted) and the group's lowest-rewarded one (rejected).
- `reset`: one rollout per episode, every answer given from a reset STM (`forget`) and the reference answer
  written (`teacher_forcing`); the pair of a step is the reference answer (accepted) and the reset answer.

Memory contract: follow-up k reads the STM after write k, which holds the first interaction and the accepted
interactions of follow-ups 0..k−1 only: the pair being scored is never in it (it is written after the step).
The STM is recomputed with gradients from the snapshot `bptt_depth` writes earlier (`replay_memory`), so the
loss trains the memory system through the writes of earlier accepted interactions. The frozen reference model
reads an STM it wrote itself from the same accepted interactions, replayed from the episode's starting STM
(`reference_memory = "own"`), or the policy's STM, detached (`"policy"`). The critic is not used.

The loop keeps `MrlTrainer`'s distributed hooks (`grad_hook`, `agree`, `split`) and its non-finite guard.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from rxmrl.policy.rxt_policy import RxTPolicy
from rxmrl.tokens import pad_to_width, trim_padding
from rxmrl.train.dmpo import DmpoTerms, dmpo_loss
from rxmrl.train.dmpo_config import DmpoConfig
from rxmrl.train.guard import NonFiniteGuard
from rxmrl.train.memory_replay import replay_memory
from rxmrl.train.mrl_trainer import guarded_step
from rxmrl.train.rollout import Rollout, RolloutSettings, best_in_group


def dmpo_rollout_settings(config: DmpoConfig, settings: RolloutSettings) -> RolloutSettings:
    """A stage's collection settings turned into what DMPO's pairs need (see the module docstring)."""
    import dataclasses

    if config.pairs == "sampled":
        return dataclasses.replace(settings, branch=True, branch_pick="best", teacher_forcing=False, with_values=False)
    return dataclasses.replace(settings, branch=False, forget=True, teacher_forcing=True, with_values=False)


@dataclass
class PreferencePairs:
    """P pairs; the accepted and rejected answers are padded to one width N."""

    rows: torch.Tensor  # [P] rollout row whose memory (snapshots, written) the pair is scored from
    steps: torch.Tensor  # [P] 0-based follow-up
    accepted: torch.Tensor  # [P, N]
    accepted_mask: torch.Tensor  # [P, N]
    rejected: torch.Tensor  # [P, N]
    rejected_mask: torch.Tensor  # [P, N]

    def __len__(self) -> int:
        return len(self.rows)


def preference_pairs(rollout: Rollout, pairs: str, pad_id: int) -> PreferencePairs:
    """The pairs of a rollout (`pairs` = "sampled" or "reset"), on rewarded steps only. A sampled group gives a
    pair at a step when its best reward is above its worst; a group with a non-finite reward gives none."""
    batch, steps = rollout.rewards.shape
    if pairs == "reset":
        rows, step_ids = rollout.rewarded.nonzero(as_tuple=True)
        accepted, accepted_mask = rollout.references[rows, step_ids], rollout.reference_mask[rows, step_ids]
        rejected_rows = rows
    else:
        groups = rollout.group_ids
        same = groups[:, None] == groups[None, :]
        leader = same.int().argmax(1) == torch.arange(batch, device=groups.device)  # [B] each group's first row
        bad = ~torch.isfinite(rollout.rewards).all(1)  # [B]
        bad_group = (same & bad[None, :]).any(1)  # [B] some row of my group is non-finite
        best = torch.stack([best_in_group(rollout.rewards[:, k], groups) for k in range(steps)], 1)  # [B, T]
        worst = torch.stack([best_in_group(-rollout.rewards[:, k], groups) for k in range(steps)], 1)
        gap = rollout.rewards.gather(0, best) > rollout.rewards.gather(0, worst)  # [B, T]
        usable = leader[:, None] & ~bad_group[:, None] & rollout.rewarded & gap
        leaders, step_ids = usable.nonzero(as_tuple=True)
        rows, rejected_rows = best[leaders, step_ids], worst[leaders, step_ids]
        accepted, accepted_mask = rollout.answers[rows, step_ids], rollout.answer_mask[rows, step_ids]
    rejected, rejected_mask = rollout.answers[rejected_rows, step_ids], rollout.answer_mask[rejected_rows, step_ids]
    width = max(accepted.shape[1], rejected.shape[1])
    accepted, accepted_mask = pad_to_width(accepted, accepted_mask, width, pad_id)
    rejected, rejected_mask = pad_to_width(rejected, rejected_mask, width, pad_id)
    return PreferencePairs(rows, step_ids, accepted, accepted_mask, rejected, rejected_mask)


class DmpoTrainer:
    """DMPO's update rule; `update(rollout, optimizer, generator)` returns averaged metrics, as `MrlTrainer`'s."""

    def __init__(
        self,
        policy: RxTPolicy,
        reference: torch.nn.Module,
        config: DmpoConfig,
        *,
        pad_id: int,
        guard: NonFiniteGuard,
        grad_hook: Callable[[list[torch.nn.Parameter]], None] | None = None,
        agree: Callable[[bool], bool] | None = None,
        split: Callable[[torch.Tensor, int], list[torch.Tensor]] | None = None,
        autocast: Callable[[], Any] | None = None,
    ) -> None:
        self.policy, self.reference, self.config, self.pad_id = policy, reference, config, pad_id
        self.guard = guard  # shared with the IMPO trainer: one count of skipped updates per run
        self.grad_hook = grad_hook
        self.agree = agree or (lambda flag: flag)
        self.split = split or (lambda order, size: list(order.split(size)))
        self.autocast = autocast or contextlib.nullcontext

    def scoring_memory(self, rollout: Rollout, rows: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """The STM follow-ups `steps` [M] of `rows` [M] are scored from, with gradients: [M, L, S, D]."""
        stm, _ = replay_memory(self.policy.remember, rollout, rows, steps, self.config.bptt_depth)
        return stm

    @torch.no_grad()
    def reference_memory(self, rollout: Rollout, rows: torch.Tensor, steps: torch.Tensor,
                         policy_stm: torch.Tensor) -> torch.Tensor:
        """The STM the reference decoder reads for `rows`, `steps` [M]: [M, L, S, D], no gradients."""
        if self.config.reference_memory == "policy":
            return policy_stm.detach()

        def write(stm: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return self.reference.update_memory(stm, ids, mask).to(stm.dtype)

        depth = int(rollout.writes_read_by(steps).max())  # every write, from the episode's starting STM
        stm, _ = replay_memory(write, rollout, rows, steps, depth)
        return stm

    def minibatch_terms(self, rollout: Rollout, pairs: PreferencePairs, chunk: torch.Tensor) -> DmpoTerms:
        """The DMPO loss of pairs `chunk` [M]: both answers and the reference from one recomputed STM."""
        chunk = chunk.to(pairs.rows.device)
        rows, steps = pairs.rows[chunk], pairs.steps[chunk]
        count = len(chunk)
        with self.autocast():
            stm = self.scoring_memory(rollout, rows, steps)
            query, query_mask = rollout.query(rows, steps)
            answers, answer_mask = trim_padding(torch.cat([pairs.accepted[chunk], pairs.rejected[chunk]]),
                                                torch.cat([pairs.accepted_mask[chunk], pairs.rejected_mask[chunk]]))
            # accepted rows first, then rejected: one forward pass each for policy and reference
            queries, query_masks, memory = query.repeat(2, 1), query_mask.repeat(2, 1), stm.repeat(2, 1, 1, 1)
            scores = self.policy.model.answer_logprobs(queries, query_masks, answers, answer_mask, memory)
            with torch.no_grad():
                reference_stm = self.reference_memory(rollout, rows, steps, stm).repeat(2, 1, 1, 1)
                reference = self.reference.answer_logprobs(queries, query_masks, answers, answer_mask, reference_stm)
        logprobs, ref_logprobs = scores.logprobs.float(), reference.logprobs.float()
        return dmpo_loss(
            self.config,
            accepted_logprobs=logprobs[:count], accepted_mask=answer_mask[:count],
            rejected_logprobs=logprobs[count:], rejected_mask=answer_mask[count:],
            reference_accepted=ref_logprobs[:count], reference_rejected=ref_logprobs[count:],
        )

    def update(self, rollout: Rollout, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, float]:
        """Several epochs of minibatch DMPO steps on the rollout's pairs. Non-finite steps are skipped and counted."""
        config = self.config
        pairs = preference_pairs(rollout, config.pairs, self.pad_id)
        metrics: dict[str, float] = {"dmpo/pairs": float(len(pairs))}
        if self.agree(len(pairs) == 0):
            return {**metrics, "train/nonfinite_skipped": float(self.guard.total), "train/optimizer_steps": 0.0}
        size = config.minibatch_size or max(1, len(pairs))  # a rank may hold none while others do
        actor = list(self.policy.model.parameters())
        sums: dict[str, float] = defaultdict(float)
        steps_done = 0
        for _ in range(config.update_epochs):
            order = torch.randperm(len(pairs), generator=generator)
            for chunk in self.split(order, size):
                terms = self.minibatch_terms(rollout, pairs, chunk) if len(chunk) else None
                norms = guarded_step(optimizer, None if terms is None else terms.total, [actor],
                                     config.max_grad_norm, agree=self.agree, grad_hook=self.grad_hook)
                ok = norms is not None
                self.guard.record(ok)
                if ok:
                    sums["policy/grad_norm"] += norms[0]
                if ok and terms is not None:
                    steps_done += 1
                    for name, value in _term_metrics(terms).items():
                        sums[name] += value
                if self.guard.exhausted:
                    break
            if self.guard.exhausted:
                break
        metrics.update({name: value / max(1, steps_done) for name, value in sums.items()})
        metrics["train/nonfinite_skipped"] = float(self.guard.total)
        metrics["train/optimizer_steps"] = float(steps_done)
        return metrics


def _term_metrics(terms: DmpoTerms) -> dict[str, float]:
    return {
        "dmpo/loss": float(terms.preference),
        "dmpo/anchor": float(terms.anchor),
        "dmpo/margin": float(terms.margin),
        "dmpo/accuracy": float(terms.accuracy),
        "dmpo/accepted_logratio": float(terms.accepted_logratio),
        "dmpo/rejected_logratio": float(terms.rejected_logratio),
        "train/loss": float(terms.total.detach()),
    }
