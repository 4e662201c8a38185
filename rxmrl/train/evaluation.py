"""Held-out evaluation: greedy answers to held-out episodes, scored with the training reward.

The score depends on the weights alone: answers are greedy and every random draw (the initial STM, the
environment's row order) comes from generators seeded from `seed` for this evaluation, never from the
training generators, so evaluating does not change what training does next.

With the memory ablation, the same episodes are answered again with every answer read from a fresh STM;
`eval/memory_gain` = reward with memory − reward without is the part of the reward the memory earns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

from rxmrl.data.episode import Episode
from rxmrl.env.episode_loop import make_env
from rxmrl.model.sampling import GREEDY
from rxmrl.policy.rxt_policy import RxTPolicy
from rxmrl.train.guard import tolerant_reward
from rxmrl.train.rollout import RolloutSettings, collect_rollout


def evaluate_heldout(
    policy: RxTPolicy,
    episodes: list[Episode],
    tokenizer: Any,
    reward: Callable[..., Any],
    *,
    steps: int,
    max_new_tokens: int,
    max_query_len: int,
    max_answer_len: int,
    max_interaction_len: int,
    batch_size: int,
    seed: int,
    memory_ablation: bool = True,
    keep_samples: int = 0,
    autocast: Callable[[], Any] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """-> (metrics named `eval/...`, readable samples of the first `keep_samples` episodes)."""
    modes = [("eval", False)] + ([("eval/no_memory", True)] if memory_ablation else [])
    metrics: dict[str, float] = {}
    samples: list[dict[str, Any]] = []
    for prefix, forget in modes:
        settings = RolloutSettings(max_new_tokens=max_new_tokens, sampling=GREEDY, with_values=False, forget=forget,
                                   max_interaction_len=max_interaction_len, final_write=False)
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for start in range(0, len(episodes), batch_size):
            chunk = episodes[start : start + batch_size]
            env_reward, _ = tolerant_reward(reward)
            env = make_env(chunk, tokenizer, env_reward, steps=steps, seed=seed + start, max_query_len=max_query_len,
                           max_answer_len=max_answer_len, max_interaction_len=max_interaction_len)
            rollout = collect_rollout(
                policy, env, settings, pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id,
                memory_generator=torch.Generator(device=policy.model.device).manual_seed(seed + start),
                keep_samples=keep_samples - len(samples) if not forget else 0, autocast=autocast,
            )
            if not forget:
                samples += rollout.samples
            valid = rollout.rewarded & torch.isfinite(rollout.rewards)
            sums["nonfinite"] += float((rollout.rewarded & ~valid).sum())
            _accumulate(sums, counts, "reward/mean", rollout.rewards[valid])
            for k in range(rollout.steps):
                _accumulate(sums, counts, f"reward/step_{k + 1}/mean", rollout.rewards[:, k][valid[:, k]])
            for name, values in rollout.components.items():
                _accumulate(sums, counts, f"reward/{name}/mean", values[valid])
            _accumulate(sums, counts, "answer/tokens", rollout.answer_mask.sum(-1).float().flatten())
        for name in counts:
            metrics[f"{prefix}/{name}"] = sums[name] / max(1, counts[name])
        if not forget:
            metrics[f"{prefix}/nonfinite_rewards"] = sums["nonfinite"]
    if memory_ablation:
        metrics["eval/memory_gain"] = metrics["eval/reward/mean"] - metrics["eval/no_memory/reward/mean"]
    return metrics, samples


def _accumulate(sums: dict[str, float], counts: dict[str, int], name: str, values: torch.Tensor) -> None:
    sums[name] += float(values.sum())
    counts[name] += values.numel()


def format_sample(sample: dict[str, Any]) -> str:
    """A held-out episode as Markdown for TensorBoard's text tab."""
    lines = [f"**remember** — Q: {sample['first'].query}  A: {sample['first'].answer}", ""]
    for k, step in enumerate(sample["steps"], start=1):
        lines.append(f"**{k}.** Q: {step['query']}  \n&nbsp;&nbsp;generated: {step['generated']}  \n"
                     f"&nbsp;&nbsp;reference: {step['reference']}  \n&nbsp;&nbsp;reward: {step['reward']:.2f}")
    return "\n".join(lines)
