"""The IMPO loss terms, each a small pure function of tensors so it can be checked against hand arithmetic.

Shapes: N answers (one per sample and follow-up step) of up to T tokens. Per-token quantities are `[N, T]`
with a `[N, T]` bool mask of real answer tokens; per-answer quantities are `[N]`, with an `[N]` bool
`active` mask of the answers that take part (an unrewarded step of a long-range episode may not).

Token terms are averaged per answer first ("sequence-mean") and then over answers, so a long answer weighs
as much as a short one and every term is on a per-token scale whatever the answer length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rxmrl.train.mrl_config import ImpoConfig


def sequence_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each row's real tokens. values/mask [N, T] -> [N]; a row with no tokens gives 0."""
    mask = mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def active_mean(values: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Mean of `values` [N] over the `active` [N] rows; 0 when none is active (and still part of the graph)."""
    active = active.to(values.dtype)
    return (values * active).sum() / active.sum().clamp(min=1.0)


def clipped_surrogate(
    logprobs: torch.Tensor,  # [N, T] under the policy being updated
    old_logprobs: torch.Tensor,  # [N, T] stored at collection
    advantages: torch.Tensor,  # [N]
    mask: torch.Tensor,  # [N, T]
    active: torch.Tensor,  # [N]
    clip_eps: float,
    clip_eps_high: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate with per-token ratios: loss = −mean_n seqmean_t min(ρ A, clip(ρ, 1−ε, 1+ε_h) A),
    ε_h = `clip_eps_high` or ε.

    Returns (loss scalar, clip fraction scalar): the share of active tokens where the clipped branch is the
    smaller one, i.e. where the gradient is cut off.
    """
    high = clip_eps if clip_eps_high is None else clip_eps_high
    ratio = torch.exp(logprobs - old_logprobs)
    adv = advantages[:, None]
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - clip_eps, 1.0 + high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    loss = active_mean(sequence_mean(per_token, mask), active)
    with torch.no_grad():
        cut = ((ratio < 1.0 - clip_eps) & (adv < 0)) | ((ratio > 1.0 + high) & (adv > 0))
        token_mask = mask & active[:, None]
        clip_fraction = (cut & token_mask).sum() / token_mask.sum().clamp(min=1)
    return loss, clip_fraction.to(logprobs.dtype)


def value_loss(
    values: torch.Tensor,  # [N] predicted now
    old_values: torch.Tensor,  # [N] predicted at collection
    returns: torch.Tensor,  # [N] targets
    active: torch.Tensor,  # [N]
    clip: float | None = None,
) -> torch.Tensor:
    """0.5 · mean (V − R)²; with `clip`, 0.5 · mean max((V − R)², (V_old + clip(V − V_old, ±c) − R)²)."""
    squared = (values - returns).pow(2)
    if clip is not None:
        clipped_values = old_values + (values - old_values).clamp(-clip, clip)
        squared = torch.maximum(squared, (clipped_values - returns).pow(2))
    return 0.5 * active_mean(squared, active)


def mean_entropy(entropy: torch.Tensor, mask: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Per-token entropy averaged per answer then over answers. entropy/mask [N, T], active [N] -> scalar."""
    return active_mean(sequence_mean(entropy, mask), active)


def memory_rmse(new_stm: torch.Tensor, old_stm: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """RMSE between consecutive STM states, per sample then averaged. stm [N, L, S, D] -> scalar.

    `eps` keeps the square root differentiable when a write leaves the STM unchanged.
    """
    per_sample = (new_stm - old_stm).pow(2).flatten(1).mean(-1)
    return torch.sqrt(per_sample + eps).mean()


def k3_kl(
    log_ratio: torch.Tensor,  # [N, T] = log p_target(x) − log p_sample(x) at the sampled tokens
    mask: torch.Tensor,  # [N, T]
    active: torch.Tensor,  # [N]
) -> torch.Tensor:
    """The k3 KL estimator on sampled tokens: k3 = exp(δ) − 1 − δ with δ = log p_target − log p_sample.

    With tokens drawn from p_sample it is an unbiased, never-negative estimate of KL(p_sample ‖ p_target)
    that needs only the two log-probs of the sampled token, never a full-vocabulary distribution.
    """
    per_token = torch.exp(log_ratio) - 1.0 - log_ratio
    return active_mean(sequence_mean(per_token, mask), active)


@dataclass
class ImpoTerms:
    """Every term of one minibatch's loss (scalars), kept apart for logging."""

    total: torch.Tensor
    policy: torch.Tensor
    value: torch.Tensor
    entropy: torch.Tensor
    memory: torch.Tensor
    kl_step: torch.Tensor
    kl_ref: torch.Tensor
    aux: torch.Tensor
    clip_fraction: torch.Tensor


def impo_loss(
    config: ImpoConfig,
    *,
    logprobs: torch.Tensor,  # [N, T] current policy, with grad
    old_logprobs: torch.Tensor,  # [N, T] from the rollout
    entropy: torch.Tensor,  # [N, T]
    mask: torch.Tensor,  # [N, T]
    advantages: torch.Tensor,  # [N]
    active: torch.Tensor,  # [N] answers that carry a policy/value signal
    values: torch.Tensor,  # [N] current critic, with grad
    old_values: torch.Tensor,  # [N]
    returns: torch.Tensor,  # [N]
    stm: torch.Tensor,  # [N, L, S, D] STM before the answer, recomputed with grad
    previous_stm: torch.Tensor,  # [N, L, S, D] STM one write earlier
    ref_logprobs: torch.Tensor | None = None,  # [N, T] frozen reference model, when kl_ref_coef > 0
    aux_loss: torch.Tensor | None = None,  # scalar MoE load-balancing loss of the decoder
) -> ImpoTerms:
    """policy − c_H·entropy + c_V·value + λ_mem·RMSE(STM_t, STM_{t−1}) + c_step·KL_step + c_ref·KL_ref
    + c_aux·aux, each term kept for logging."""
    policy, clip_fraction = clipped_surrogate(logprobs, old_logprobs, advantages, mask, active, config.clip_eps,
                                              config.clip_eps_high)
    v_loss = value_loss(values, old_values, returns, active, config.value_clip)
    entropy_value = mean_entropy(entropy, mask, active)
    memory = memory_rmse(stm, previous_stm)
    # Samples came from the rollout policy: δ = log π_θ − log π_old estimates KL(π_old ‖ π_θ).
    kl_step = k3_kl(logprobs - old_logprobs, mask, active)
    zero = logprobs.new_zeros(())
    if ref_logprobs is not None:
        # GRPO's convention: δ = log π_ref − log π_θ estimates KL(π_θ ‖ π_ref) (π_θ ≈ the sampling policy).
        kl_ref = k3_kl(ref_logprobs - logprobs, mask, active)
    else:
        kl_ref = zero
    aux = aux_loss if aux_loss is not None else zero
    total = (
        policy
        - config.entropy_coef * entropy_value
        + config.value_coef * v_loss
        + config.memory_coef * memory
        + config.kl_step_coef * kl_step
        + config.kl_ref_coef * kl_ref
        + config.aux_coef * aux
    )
    return ImpoTerms(total=total, policy=policy, value=v_loss, entropy=entropy_value, memory=memory,
                     kl_step=kl_step, kl_ref=kl_ref, aux=aux, clip_fraction=clip_fraction)
