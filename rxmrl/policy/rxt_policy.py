"""`RxTPolicy`: the Reactive Transformer as an RL policy whose recurrent state is its short-term memory.

    stm   = policy.initial_state(B)                       # [B, L, S, D]
    stm   = policy.remember(stm, interaction, mask)       # write one interaction (no action, no reward)
    step  = policy.act(query, query_mask, stm)            # sample an answer; log-probs and V(query, stm)
    out   = policy.evaluate(query, query_mask, answer, answer_mask, stm)   # the same, teacher-forced, with grads

The STM is passed in and returned, never stored, so a trainer can keep snapshots of it and recompute memory
writes with gradients from any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rxmrl.model.sampling import Sampling
from rxmrl.policy.critic import CriticConfig, MemoryAwareCritic
from rxmrl.tokens import join_padded, trim_padding


@dataclass
class PolicyStep:
    answer: torch.Tensor  # [B, N] sampled ids, right-padded after EOS
    answer_mask: torch.Tensor  # [B, N] bool
    logprobs: torch.Tensor  # [B, N] log π(token) under the untempered policy; 0 on padding
    values: torch.Tensor  # [B] V(query, STM)


@dataclass
class PolicyEvaluation:
    logprobs: torch.Tensor  # [B, N]
    entropy: torch.Tensor  # [B, N]
    values: torch.Tensor  # [B]
    aux_loss: torch.Tensor  # scalar MoE load-balancing loss of the decoder


class RxTPolicy(nn.Module):
    """An RxT model (`self.model`) and its memory-aware critic (`self.critic`).

    `pad_id` is the tokenizer's padding id: the policy pads the critic's input (query + last interaction)
    with it, so it must be the id the rest of the batch is padded with."""

    def __init__(self, model: nn.Module, critic_config: CriticConfig | None = None, *, pad_id: int) -> None:
        super().__init__()
        self.model = model
        self.pad_id = pad_id
        config = model.config
        self.critic = MemoryAwareCritic(
            critic_config or CriticConfig(),
            vocab_size=config.vocab_size,
            stm_layers=config.stm.layers or config.decoder.layers,
            stm_dim=config.stm.dim or config.dim,
        )

    # ---- memory ------------------------------------------------------------------------------------------

    def initial_state(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.model.initial_stm(batch, generator=generator)  # [B, L, S, D]

    def reset_state(self, stm: torch.Tensor, reset: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Re-initialise only the rows where `reset` [B] is True."""
        return self.model.reset_stm(stm, reset, generator=generator)

    def remember(self, stm: torch.Tensor, interaction: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Write one interaction `[BOS][Q] q [A] a [EOS]` (ids/mask [B, T], right-padded) into stm [B, L, S, D].

        The one memory write of collection and of the update's replay, so that the update recomputes exactly
        what was collected: padding columns at the right are dropped first, and the new STM keeps stm's dtype
        (under autocast the write computes in bf16)."""
        interaction, mask = trim_padding(interaction, mask)
        return self.model.update_memory(stm, interaction, mask).to(stm.dtype)

    # ---- values ------------------------------------------------------------------------------------------

    def critic_input(
        self,
        query: torch.Tensor,
        query_mask: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The query, followed by the last written interaction when the critic reads it. -> [B, T] ids, mask."""
        if not self.critic.config.with_interaction or context is None:
            return query, query_mask
        return join_padded(query, query_mask, context, context_mask, pad_id=self.pad_id,
                           max_len=self.critic.config.max_len)

    def value(
        self,
        query: torch.Tensor,
        query_mask: torch.Tensor,
        stm: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """V(query, STM) [B]. The STM is detached: the value loss must not reshape the memory to suit the critic."""
        tokens, mask = self.critic_input(query, query_mask, context, context_mask)
        return self.critic(tokens, mask, stm.detach())

    # ---- acting and scoring ------------------------------------------------------------------------------

    @torch.no_grad()
    def act(
        self,
        query: torch.Tensor,  # [B, Tq] "[BOS][Q] q [A]", right-padded
        query_mask: torch.Tensor,  # [B, Tq]
        stm: torch.Tensor,  # [B, L, S, D]
        *,
        max_new_tokens: int,
        eos_id: int | None,
        pad_id: int = 0,
        sampling: Sampling = Sampling(),
        generator: torch.Generator | None = None,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        with_values: bool = True,
        compile: bool = False,
    ) -> PolicyStep:
        """Sample (or greedily pick) an answer from the memory, with the critic's value of the situation.

        `eos_id=None` never stops early: every answer gets `max_new_tokens` tokens. `compile` decodes through
        torch.compile (see `rxmrl.model.generation.generate`)."""
        gen = self.model.generate(
            query, query_mask, stm, max_new_tokens=max_new_tokens, eos_id=eos_id, pad_id=pad_id, sampling=sampling,
            generator=generator, compile=compile,
        )
        values = (self.value(query, query_mask, stm, context, context_mask) if with_values
                  else query.new_zeros(query.shape[0], dtype=torch.float32))
        return PolicyStep(gen.tokens, gen.mask, gen.logprobs, values)

    def evaluate(
        self,
        query: torch.Tensor,  # [B, Tq]
        query_mask: torch.Tensor,
        answer: torch.Tensor,  # [B, N]
        answer_mask: torch.Tensor,
        stm: torch.Tensor,  # [B, L, S, D], with grad when the memory is being trained
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> PolicyEvaluation:
        """Teacher-forced log-probs and entropies of given answers, and values, for the update."""
        scores = self.model.answer_logprobs(query, query_mask, answer, answer_mask, stm)
        values = self.value(query, query_mask, stm, context, context_mask)
        return PolicyEvaluation(scores.logprobs, scores.entropy, values, scores.aux_loss)
