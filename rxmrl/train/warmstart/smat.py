"""Stage 4: supervised memory-aware training (SMAT).

For each episode, starting from a fresh STM, interaction by interaction:

    STM_k = MemoryAttention(STM_{k-1}, Encoder(interaction k-1))       write the previous interaction
    L_k   = CE(Decoder(query_k + answer_k, memory = STM_k), answer_k)   answer tokens and [EOS] only

loss = sum_k L_k token sums / answer tokens (+ MoE load balancing); tokens that spell a fact value can weigh
`fact_weight` times more (`token_weights`). Gradients flow from each answer into the
decoder, through the memory attention and into the encoder of the writes behind it.

`bptt_depth` = d: the loss of follow-up k backpropagates through its last d writes (STM_{k-d} enters as a
constant). d = 1 is the cheapest and trains each write to serve the next answer; larger d also trains writes
to keep what later answers need. Writes are recomputed from the detached STM_{k-d} for each k, so a deeper
backpropagation costs d writes per follow-up instead of holding one graph through the whole episode.

Gradual unfreezing: the decoder trains from the start; memory attention joins after
`unfreeze_memory_attention_at` of the steps, the encoder (with the shared embedding) after
`unfreeze_encoder_at`. A frozen group gets no gradient (requires_grad off), so AdamW leaves it untouched;
which groups are frozen depends on the step number alone, so a resumed run freezes exactly the same.
`train_decoder = False` keeps the decoder frozen throughout: the answer loss then trains the memory path
alone (the parameters an MRL stage with a frozen decoder trains; `rxmrl bench mrl-gain --control-trains
memory`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from rxmrl.train.warmstart.batches import EpisodeBatch
from rxmrl.train.warmstart.losses import Stat
from rxmrl.train.warmstart.memory_eval import (
    answer_targets, fact_token_ids, follow_up_stats, fresh_stm, score_answers, summarize_memory, write,
)
from rxmrl.train.warmstart.stage import SupervisedStage, set_trainable, unique_parameters


class SmatStage(SupervisedStage):
    name = "smat"

    def __init__(self, model: Any, tokenizer: Any, *, steps: int, bptt_depth: int = 1,
                 unfreeze_memory_attention_at: float = 0.1, unfreeze_encoder_at: float = 0.2,
                 aux_loss_weight: float = 0.01, fact_weight: float = 1.0, train_decoder: bool = True) -> None:
        self.model = model
        self.train_decoder = train_decoder
        self.bptt_depth = bptt_depth
        self.memory_attention_from = round(unfreeze_memory_attention_at * steps)  # first step it trains
        self.encoder_from = round(unfreeze_encoder_at * steps)
        self.aux_loss_weight = aux_loss_weight
        self.fact_weight = fact_weight
        self.fact_ids = fact_token_ids(tokenizer)
        self.groups = {
            "decoder": unique_parameters(model.decoder),
            "memory_attention": unique_parameters(model.memory_attention, model.stm_init),
            "encoder": unique_parameters(model.encoder, model.embedding),
        }
        self._flags = [(p, p.requires_grad) for ps in self.groups.values() for p in ps]

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return unique_parameters(*self.groups.values())

    def unfrozen(self, step: int) -> dict[str, bool]:
        return {"decoder": self.train_decoder, "memory_attention": step >= self.memory_attention_from,
                "encoder": step >= self.encoder_from}

    def before_step(self, step: int) -> None:
        for group, trainable in self.unfrozen(step).items():
            set_trainable(self.groups[group], trainable)

    def finish(self) -> None:
        for p, flag in self._flags:
            p.requires_grad_(flag)

    def loss(self, batch: EpisodeBatch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        size = batch.tokens.shape[0]
        # detached[j] = the STM after j writes, with no graph: where a truncated backpropagation starts
        detached = [fresh_stm(self.model, size, generator)]
        nll_sum, tokens, aux = 0.0, 0.0, 0.0
        for index in range(1, batch.interactions):
            stm = detached[max(0, index - self.bptt_depth)]
            for j in range(max(0, index - self.bptt_depth), index):
                stm = write(self.model, stm, batch, j)
            detached.append(stm.detach())
            logits, aux_k = score_answers(self.model, stm, batch, index)
            targets, selected = answer_targets(batch, index)
            weights = self.token_weights(targets, selected)
            nll = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")
            nll_sum = nll_sum + (nll * weights.flatten()).sum()
            tokens = tokens + weights.sum()
            aux = aux + aux_k
        answer_loss = nll_sum / torch.as_tensor(tokens).clamp(min=1)
        aux = aux / max(1, batch.interactions - 1)
        loss = answer_loss + self.aux_loss_weight * aux
        return loss, {"lm_loss": float(answer_loss.detach()), "aux_loss": float(torch.as_tensor(aux).detach())}

    def token_weights(self, targets: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
        """Loss weights [B, T]: 0 off the answer, `fact_weight` on fact-value tokens, 1 elsewhere.

        Fact values are the few tokens only the memory can supply; in a plain mean they are ~10% of the
        answer tokens, and the template words the decoder predicts alone dominate the gradient. Up-weighting
        them makes the memory path worth learning early (measured: fact accuracy 0.30 vs 0.09 after 400 steps).
        """
        weights = selected.float()
        if self.fact_weight != 1.0:
            is_fact = torch.isin(targets, self.fact_ids.to(targets.device))
            weights = weights * torch.where(is_fact, self.fact_weight, 1.0)
        return weights

    def eval(self, batch: EpisodeBatch, generator: torch.Generator) -> dict[str, Stat]:
        return follow_up_stats(self.model, batch, generator, self.fact_ids)

    def summarize(self, means: dict[str, float]) -> dict[str, float]:
        out = summarize_memory(means)
        out["loss"] = means["loss_real_stm"]
        return out
