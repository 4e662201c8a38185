"""The DMPO loss terms (DPO on answers given one STM), each a small pure function checked against hand arithmetic.

Shapes: P pairs, each an accepted answer y_w and a rejected answer y_l to the same query from the same STM.
Per-token log-probs are `[P, T]` with a `[P, T]` bool mask of real answer tokens; per-pair quantities are `[P]`.
π is the policy being trained, π_ref the frozen reference decoder reading the same STM.

    L_DPO    = −log σ(β · m),   m = (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))
    anchored = L_DPO + c · anchor,  anchor "nll": −(1/|y_w|) Σ_t log π(y_w,t)   (per-token SFT term)
                                    anchor "ratio": max(0, log π_ref(y_w) − log π(y_w))

Sequence log-probs are sums over the answer's tokens, as in the DPO paper (a longer answer is a less likely
one); the NLL anchor is a per-token mean, so its weight does not depend on answer length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rxmrl.train.dmpo_config import DmpoConfig
from rxmrl.train.impo import sequence_mean


def sequence_logprob(logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log π(y) = Σ_t log π(y_t). logprobs/mask [P, T] -> [P]."""
    return (logprobs * mask.to(logprobs.dtype)).sum(-1)


def preference_margin(policy_accepted: torch.Tensor, reference_accepted: torch.Tensor,
                      policy_rejected: torch.Tensor, reference_rejected: torch.Tensor) -> torch.Tensor:
    """m = (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l)). Each [P] -> [P]."""
    return (policy_accepted - reference_accepted) - (policy_rejected - reference_rejected)


def dpo_loss(margin: torch.Tensor, beta: float) -> torch.Tensor:
    """−log σ(β · m) per pair, computed stably as softplus(−β · m). [P] -> [P]."""
    return F.softplus(-beta * margin)


def nll_anchor(logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean per-token negative log-likelihood of the accepted answer. logprobs/mask [P, T] -> [P]."""
    return -sequence_mean(logprobs, mask)


def ratio_anchor(policy_accepted: torch.Tensor, reference_accepted: torch.Tensor) -> torch.Tensor:
    """max(0, log π_ref(y_w) − log π(y_w)): positive only once the accepted answer fell below the reference. [P]."""
    return (reference_accepted - policy_accepted).clamp(min=0.0)


@dataclass
class DmpoTerms:
    """One minibatch's loss and what is logged with it (scalars)."""

    total: torch.Tensor
    preference: torch.Tensor  # mean L_DPO
    anchor: torch.Tensor  # mean anchor term (before its coefficient)
    margin: torch.Tensor  # mean β · m, the implicit reward gap
    accuracy: torch.Tensor  # share of pairs with m > 0
    accepted_logratio: torch.Tensor  # mean log π(y_w) − log π_ref(y_w)
    rejected_logratio: torch.Tensor  # mean log π(y_l) − log π_ref(y_l)


def dmpo_loss(
    config: DmpoConfig,
    *,
    accepted_logprobs: torch.Tensor,  # [P, Tw] policy, with grad
    accepted_mask: torch.Tensor,  # [P, Tw]
    rejected_logprobs: torch.Tensor,  # [P, Tl] policy, with grad
    rejected_mask: torch.Tensor,  # [P, Tl]
    reference_accepted: torch.Tensor,  # [P, Tw] frozen reference, same STM
    reference_rejected: torch.Tensor,  # [P, Tl]
) -> DmpoTerms:
    """mean L_DPO + anchor_coef · mean anchor, over the minibatch's pairs."""
    policy_w = sequence_logprob(accepted_logprobs, accepted_mask)
    policy_l = sequence_logprob(rejected_logprobs, rejected_mask)
    ref_w = sequence_logprob(reference_accepted.detach(), accepted_mask)
    ref_l = sequence_logprob(reference_rejected.detach(), rejected_mask)
    margin = preference_margin(policy_w, ref_w, policy_l, ref_l)
    preference = dpo_loss(margin, config.beta).mean()
    if config.anchor == "nll":
        anchor = nll_anchor(accepted_logprobs, accepted_mask).mean()
    else:
        anchor = ratio_anchor(policy_w, ref_w).mean()
    total = preference + config.anchor_coef * anchor
    with torch.no_grad():
        return DmpoTerms(total=total, preference=preference.detach(), anchor=anchor.detach(),
                         margin=(config.beta * margin).mean(), accuracy=(margin > 0).to(margin.dtype).mean(),
                         accepted_logratio=(policy_w - ref_w).mean(), rejected_logratio=(policy_l - ref_l).mean())
