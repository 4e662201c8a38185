"""The IMPO update of one collected rollout: advantages, minibatches, several epochs, clipping, the guard.

Per-process on purpose: a distributed run wraps this with the all-reduce points kept explicit here:
the advantage statistics (`reduce`, see `normalize_advantages`), the gradients before `optimizer.step`
(`grad_hook`, e.g. an all-reduce mean; DDP's own hooks do the same job), and the decisions every process
must take alike (`agree`: skip or not; `split`: how many minibatches), see `rxmrl/train/distributed.py`.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

from rxmrl.policy.rxt_policy import RxTPolicy
from rxmrl.train.advantages import Reduce, compute_advantages, consecutive_groups, normalize_advantages
from rxmrl.train.guard import NonFiniteGuard, all_finite
from rxmrl.train.impo import ImpoTerms, impo_loss, memory_rmse
from rxmrl.train.memory_replay import replay_memory
from rxmrl.train.mrl_config import ImpoConfig
from rxmrl.train.optim_config import LearningRates
from rxmrl.train.rollout import Rollout
from rxmrl.train.unfreeze import parameter_groups


def build_optimizer(policy: RxTPolicy, lr: LearningRates, weight_decay: float = 0.0,
                    eps: float = 1e-6) -> torch.optim.AdamW:
    """AdamW with one group (and learning rate) each for decoder, encoder, memory attention and critic.

    Every weight is in the optimizer from the start; frozen ones have no gradient, so AdamW leaves them (and
    their moments) untouched until they are unfrozen.
    """
    groups = parameter_groups(policy.model)
    param_groups = [
        {"params": groups["decoder"], "lr": lr.decoder, "name": "decoder"},
        {"params": groups["encoder"], "lr": lr.encoder, "name": "encoder"},
        {"params": groups["memory_attention"], "lr": lr.memory_attention, "name": "memory_attention"},
        {"params": list(policy.critic.parameters()), "lr": lr.critic, "name": "critic"},
    ]
    return torch.optim.AdamW(param_groups, weight_decay=weight_decay, eps=eps)


def rollout_metrics(rollout: Rollout) -> dict[str, float]:
    """Reward statistics of a rollout (TRL-style names), over rewarded steps; steps are 1-based."""
    rewarded = rollout.rewarded
    rewards = torch.where(rewarded, rollout.rewards, torch.zeros_like(rollout.rewards))
    count = rewarded.sum().clamp(min=1)
    metrics = {"reward/mean": float(rewards.sum() / count)}
    if int(rewarded.sum()) > 1:
        metrics["reward/std"] = float(rollout.rewards[rewarded].std())
    for k in range(rollout.steps):
        column = rewarded[:, k]
        if bool(column.any()):
            metrics[f"reward/step_{k + 1}/mean"] = float(rollout.rewards[column, k].mean())
    for name, values in rollout.components.items():
        metrics[f"reward/{name}/mean"] = float(torch.where(rewarded, values, torch.zeros_like(values)).sum() / count)
    snapshots = rollout.snapshots
    deltas = [memory_rmse(snapshots[:, j + 1], snapshots[:, j]) for j in range(snapshots.shape[1] - 1)]
    metrics["memory/stm_delta"] = float(torch.stack(deltas).mean())
    metrics["answer/tokens"] = float(rollout.answer_mask.sum(-1).float().mean())
    metrics["memory/reset_fraction"] = float(rollout.reset.float().mean())
    return metrics


class LogprobAnchors:
    """The "old" log-probs of the ratio and the step KL: each answer's log-probs at its first visit in an update.

    The rollout's stored log-probs come from incremental (KV-cache) decoding and differ from the update's
    teacher-forced ones by float noise (~1e-6). That noise is harmless in the surrogate, but the KL term turns
    it into tiny gradients which Adam scales up to full learning-rate steps: a random walk that erodes a model
    even when every advantage is 0. Anchoring at the first visit makes the first step on every answer exactly
    the rollout policy's (ratio 1, KL 0, as TRL does) and measures later drift from there. How far the first
    visit is from the stored log-probs is logged as `policy/rollout_logprob_gap` (a large value means the update
    does not see the policy that collected the rollout, e.g. dropout left on).
    """

    def __init__(self, rollout: Rollout) -> None:
        self.values = torch.zeros_like(rollout.logprobs)  # [B, T, N]
        self.visited = torch.zeros(rollout.rewards.shape, dtype=torch.bool, device=rollout.logprobs.device)
        self.gap_sum, self.gap_count = 0.0, 0

    def old_logprobs(self, rows: torch.Tensor, steps: torch.Tensor, logprobs: torch.Tensor, stored: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
        """logprobs/stored/mask [M, N'] for answers (rows, steps) -> the old log-probs [M, N']."""
        width = logprobs.shape[1]
        current = logprobs.detach()
        first = ~self.visited[rows, steps]  # [M]
        old = torch.where(first[:, None], current, self.values[rows, steps][:, :width])
        if bool(first.any()):
            self.values[rows[first], steps[first], :width] = current[first]
            self.visited[rows[first], steps[first]] = True
            gap = (current - stored).abs()[first][mask[first]]
            self.gap_sum += float(gap.sum())
            self.gap_count += gap.numel()
        return old


class MrlTrainer:
    """Owns the policy's update rule; `update(rollout, optimizer, generator)` returns averaged metrics."""

    def __init__(
        self,
        policy: RxTPolicy,
        config: ImpoConfig,
        *,
        reduce: Reduce | None = None,
        grad_hook: Callable[[list[torch.nn.Parameter]], None] | None = None,
        agree: Callable[[bool], bool] | None = None,
        split: Callable[[torch.Tensor, int], list[torch.Tensor]] | None = None,
        autocast: Callable[[], Any] | None = None,
    ) -> None:
        self.policy = policy
        self.config = config
        self.reduce = reduce
        self.grad_hook = grad_hook
        self.agree = agree or (lambda flag: flag)  # True only if True on every process
        self.split = split or (lambda order, size: list(order.split(size)))
        self.autocast = autocast or contextlib.nullcontext
        self.guard = NonFiniteGuard(config.max_consecutive_nonfinite)

    def _nonfinite_rows(self, rollout: Rollout) -> torch.Tensor:
        """[B] bool: rows to leave out of the update, those with a non-finite reward (and, in group mode,
        every rollout of the same episode)."""
        bad = ~torch.isfinite(rollout.rewards).all(dim=1)
        if self.config.advantage == "group" and bool(bad.any()):
            groups = rollout.group_ids
            if groups is None:
                groups = consecutive_groups(rollout.batch_size, self.config.group_size)
            groups = groups.to(bad.device)
            bad = torch.isin(groups, groups[bad])
        return bad

    def minibatch_terms(
        self,
        rollout: Rollout,
        items: torch.Tensor,  # [M] flat indices b * T + k
        advantages: torch.Tensor,  # [B, T]
        returns: torch.Tensor,  # [B, T]
        anchors: LogprobAnchors | None = None,
    ) -> ImpoTerms:
        """The IMPO loss of a minibatch of answers, recomputing their STM with gradients. Without `anchors` the
        old log-probs are the rollout's stored ones."""
        rows, steps = rollout.locate(items)
        with self.autocast():
            stm, previous = replay_memory(self.policy.remember, rollout, rows, steps, self.config.bptt_depth)
            query, query_mask = rollout.query(rows, steps)
            answer, answer_mask = rollout.answer(rows, steps)
            context, context_mask = rollout.written_before(rows, steps)
            out = self.policy.evaluate(query, query_mask, answer, answer_mask, stm, context, context_mask)
        width = answer.shape[1]
        ref = rollout.ref_logprobs[rows, steps][:, :width] if rollout.ref_logprobs is not None else None
        logprobs = out.logprobs.float()
        old = rollout.logprobs[rows, steps][:, :width]
        if anchors is not None:
            old = anchors.old_logprobs(rows, steps, logprobs, old, answer_mask)
        return impo_loss(
            self.config,
            logprobs=logprobs,
            old_logprobs=old,
            entropy=out.entropy.float(),
            mask=answer_mask,
            advantages=advantages[rows, steps],
            active=torch.ones(len(items), dtype=torch.bool, device=rows.device),
            values=out.values.float(),
            old_values=rollout.values[rows, steps],
            returns=returns[rows, steps],
            stm=stm.float(),
            previous_stm=previous.float(),
            ref_logprobs=ref,
            aux_loss=out.aux_loss.float() if out.aux_loss is not None else None,
        )

    def update(self, rollout: Rollout, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, float]:
        """Several epochs of minibatch IMPO steps on `rollout`. Non-finite steps are skipped and counted.

        Episodes with a non-finite reward are left out of the update (in group mode their whole group, whose
        baseline they are part of) and counted in `train/nonfinite_samples`; the rest of the batch trains. Only
        a batch with nothing left is skipped (and counted by the guard)."""
        config = self.config
        dropped = self._nonfinite_rows(rollout)  # [B]
        if self.agree(bool(dropped.all())):
            self.guard.record(False)
            return {"train/nonfinite_skipped": float(self.guard.total), "train/update_skipped": 1.0,
                    "train/nonfinite_samples": float(dropped.sum())}
        rewarded = rollout.rewarded & ~dropped[:, None]
        rewards = torch.where(dropped[:, None], torch.zeros_like(rollout.rewards), rollout.rewards)
        rewards = rewards * config.reward_scale
        estimate = compute_advantages(config, rewards, rollout.values, rewarded, rollout.group_ids)
        estimate.active &= ~dropped[:, None]
        advantages = normalize_advantages(estimate.advantages, estimate.active, config.normalize,
                                          min_std=config.min_advantage_std, reduce=self.reduce)
        items = estimate.active.flatten().nonzero().squeeze(1)  # answers that carry a signal
        if self.agree(len(items) == 0):
            return {"train/nonfinite_skipped": float(self.guard.total)}
        size = config.minibatch_size or max(1, len(items))  # a rank may hold none while others do
        actor = list(self.policy.model.parameters())
        critic = list(self.policy.critic.parameters())
        sums: dict[str, float] = defaultdict(float)
        steps_done = 0
        anchors = LogprobAnchors(rollout)
        for _ in range(config.update_epochs):
            order = items[torch.randperm(len(items), generator=generator).to(items.device)]
            for chunk in self.split(order, size):
                # an empty chunk only happens in a distributed run: this process adds zero gradients
                terms = None
                if len(chunk):
                    terms = self.minibatch_terms(rollout, chunk, advantages, estimate.returns, anchors)
                norms = guarded_step(optimizer, None if terms is None else terms.total, [actor, critic],
                                     config.max_grad_norm, agree=self.agree, grad_hook=self.grad_hook)
                ok = norms is not None
                self.guard.record(ok)
                if ok:
                    sums["policy/grad_norm"] += norms[0]
                    sums["value/grad_norm"] += norms[1]
                if ok and terms is not None:
                    steps_done += 1
                    for name, value in _term_metrics(terms).items():
                        sums[name] += value
                if self.guard.exhausted:
                    break
            if self.guard.exhausted:
                break
        metrics = {name: value / max(1, steps_done) for name, value in sums.items()}
        metrics["train/nonfinite_skipped"] = float(self.guard.total)
        metrics["train/nonfinite_samples"] = float(dropped.sum())
        metrics["train/optimizer_steps"] = float(steps_done)
        metrics["policy/rollout_logprob_gap"] = anchors.gap_sum / max(1, anchors.gap_count)
        metrics["value/mean"] = float(rollout.values[estimate.active].mean()) if bool(estimate.active.any()) else 0.0
        active_advantages = estimate.advantages[estimate.active]
        metrics["policy/advantage_std"] = float(active_advantages.std()) if active_advantages.numel() > 1 else 0.0
        return metrics


def guarded_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor | None,
                 groups: list[list[torch.nn.Parameter]], max_norm: float, *, agree: Callable[[bool], bool],
                 grad_hook: Callable[[list[torch.nn.Parameter]], None] | None) -> list[float] | None:
    """One optimizer step that every rank takes or skips together: backward `loss` (None: a rank with no
    minibatch adds zero gradients), average gradients (`grad_hook`), clip each group, step.

    Returns each group's gradient norm before clipping, or None when the step was skipped because the loss
    (on any rank) or a gradient norm was not finite. Gradients are cleared either way."""
    ok = agree(loss is None or all_finite([loss]))
    optimizer.zero_grad(set_to_none=True)
    norms = None
    if ok:
        if loss is not None:
            loss.backward()
        if grad_hook is not None:
            grad_hook([p for group in groups for p in group])
        norms = [clip_gradients(group, max_norm) for group in groups]
        if all(math.isfinite(n) for n in norms):
            optimizer.step()
        else:
            norms = None
    optimizer.zero_grad(set_to_none=True)
    return norms


def clip_gradients(parameters: list[torch.nn.Parameter], max_norm: float) -> float:
    """Clip in place (when max_norm > 0) and return the total gradient norm before clipping."""
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return 0.0
    limit = max_norm if max_norm > 0 else float("inf")
    return float(torch.nn.utils.clip_grad_norm_(params, limit, error_if_nonfinite=False))


def _term_metrics(terms: ImpoTerms) -> dict[str, float]:
    return {
        "policy/loss": float(terms.policy.detach()),
        "policy/clip_ratio": float(terms.clip_fraction),
        "policy/kl_step": float(terms.kl_step.detach()),
        "policy/kl_ref": float(terms.kl_ref.detach()),
        "policy/entropy": float(terms.entropy.detach()),
        "value/loss": float(terms.value.detach()),
        "memory/loss": float(terms.memory.detach()),
        "train/aux_loss": float(terms.aux.detach()),
        "train/loss": float(terms.total.detach()),
    }
