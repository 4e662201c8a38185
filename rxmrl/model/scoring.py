"""Teacher-forced scoring of given answers: the log-probs, entropies and MoE aux loss an RL update needs.

The query (right-padded) and the answer are decoded together in one causal pass. Positions come from the
combined mask, so an answer token gets the same position and sees the same keys as when it was generated:
the log-probs equal `Generation.logprobs` for the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from rxmrl.model.rxt import RxT


@dataclass
class AnswerScores:
    logprobs: torch.Tensor  # [B, N] log p(answer token | query, earlier answer tokens, STM); 0 on padding
    entropy: torch.Tensor  # [B, N] entropy of the policy's next-token distribution; 0 on padding
    aux_loss: torch.Tensor  # scalar MoE load-balancing loss over the real tokens
    logits: torch.Tensor | None = None  # [B, N, V] when asked for


def answer_logprobs(
    model: RxT,
    query: torch.Tensor,
    query_mask: torch.Tensor,
    answer: torch.Tensor,
    answer_mask: torch.Tensor,
    stm: torch.Tensor,
    *,
    return_logits: bool = False,
) -> AnswerScores:
    """query/query_mask [B, Tq], answer/answer_mask [B, N] (both right-padded), stm [B, L, S, D]."""
    batch, prompt_len = query.shape
    answer_len = answer.shape[1]
    if prompt_len + answer_len > model.config.max_seq_len:
        raise ValueError(
            f"query length {prompt_len} + answer length {answer_len} exceeds max_seq_len {model.config.max_seq_len}"
        )
    query_mask = query_mask.to(torch.bool)
    answer_mask = answer_mask.to(torch.bool)
    tokens = torch.cat([query, answer], dim=1)  # [B, Tq + N]
    mask = torch.cat([query_mask, answer_mask], dim=1)
    hidden, aux = model.decoder(model.embedding(tokens), model.memory_kv(stm), mask)  # [B, Tq + N, D]
    # Answer token j is predicted at the token before it: the last real query token for j = 0,
    # answer token j - 1 (column Tq + j - 1) afterwards.
    predictor = torch.arange(prompt_len - 1, prompt_len - 1 + answer_len, device=tokens.device)
    predictor = predictor[None, :].repeat(batch, 1)  # [B, N]
    predictor[:, 0] = (query_mask.long().sum(dim=1) - 1).clamp_min(0)
    hidden = hidden.gather(1, predictor[..., None].expand(-1, -1, hidden.shape[-1]))  # [B, N, D]
    logits = model.decoder.lm_head(hidden)  # [B, N, V]
    log_probs = F.log_softmax(logits.float(), dim=-1)
    token_logprobs = log_probs.gather(-1, answer[..., None]).squeeze(-1).masked_fill(~answer_mask, 0.0)
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1).masked_fill(~answer_mask, 0.0)
    return AnswerScores(token_logprobs, entropy, aux, logits if return_logits else None)
