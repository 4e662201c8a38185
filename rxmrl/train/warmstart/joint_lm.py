"""Stage 1 (joint LM pre-training) and the objective stage 2 (interaction SFT) reuses.

    encoder:  masked LM on the corrupted sequence            L_mlm = CE(MLMHead(ED[:, -1]), tokens) on chosen
    decoder:  autoregressive LM on the clean sequence        L_lm  = CE(decode(tokens, memory), next token)
              reading ED, the encoded interaction (`RxT.encode_interaction`: per-layer outputs, with the
              token-embedding skip), as its memory (detached, optionally noised), through the same memory
              cross-attention that later reads the STM
    loss   =  L_lm + mlm_weight * L_mlm + aux_loss_weight * MoE load balancing

Detaching keeps the encoder a pure MLM learner; reading its outputs still teaches the decoder's memory
cross-attention to use vectors in the space memory attention will write the STM from. Reading ED rather
than the bare layer outputs matters: with the skip in the decoder's memory here too, SMAT's decoder learnt to
recall facts from the STM sooner and better (rxt-cpu-small, fact-token accuracy after 800 SMAT steps 0.40 vs
0.28; docs/BENCHMARKS.md). Noise (the paper's remedy for a decoder that copies from an encoder that saw the
same text) is optional. Held-out evaluation also scores the decoder reading a fresh STM instead (`no_memory_*`): the gap
says how much the decoder actually uses its memory (on rxt-cpu-small after a few hundred steps: very little;
memory cross-attention keys carry no positions here, so copying must be learnt as content lookup).
Which positions the decoder is scored on comes with the batch: every token of a story, or only the answer
and its `[EOS]` of a `[Q] query [A] answer` interaction.
"""

from __future__ import annotations

import torch

from rxmrl.train.warmstart.batches import TokenBatch
from rxmrl.train.warmstart.losses import Stat, masked_token_loss, prefixed, token_stats
from rxmrl.train.warmstart.masking import mask_tokens
from rxmrl.train.warmstart.memory_eval import fresh_stm
from rxmrl.train.warmstart.mlm_head import MLMHead
from rxmrl.train.warmstart.stage import SupervisedStage, unique_parameters


class JointLMStage(SupervisedStage):
    def __init__(
        self,
        model: torch.nn.Module,
        head: MLMHead,
        tokenizer,
        *,
        name: str = "joint-lm",
        mlm_probability: float = 0.15,
        mlm_weight: float = 1.0,
        memory_noise: float = 0.0,
        aux_loss_weight: float = 0.01,
    ) -> None:
        self.name = name
        self.model = model
        self.head = head
        self.mask_id = tokenizer.mask_id
        self.special_ids = special_token_ids(tokenizer)
        self.vocab_size = model.config.vocab_size
        self.mlm_probability = mlm_probability
        self.mlm_weight = mlm_weight
        self.memory_noise = memory_noise
        self.aux_loss_weight = aux_loss_weight

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        # memory attention does not take part: nothing is written to an STM in this objective
        m = self.model
        return unique_parameters(m.embedding, m.encoder, m.decoder, self.head)

    def extra_modules(self) -> dict[str, torch.nn.Module]:
        return {"mlm_head": self.head}

    def forward(self, batch: TokenBatch, generator: torch.Generator, *, noise: bool) -> dict[str, torch.Tensor]:
        """Both halves of the objective on one batch: logits and which positions each loss reads."""
        corrupted, chosen = mask_tokens(
            batch.tokens, batch.mask, mask_id=self.mask_id, special_ids=self.special_ids,
            vocab_size=self.vocab_size, generator=generator, probability=self.mlm_probability,
        )
        # An encoder built to read the STM gets a fresh one: there is no memory yet in this objective.
        stm = fresh_stm(self.model, batch.tokens.shape[0], generator) if self.model.encoder.reads_memory else None
        encoded = self.model.encode_interaction(corrupted, batch.mask, stm)  # [B, L, T, D]
        mlm_logits = self.head(encoded[:, -1])  # [B, T, V]

        memory = encoded.detach()
        if noise and self.memory_noise > 0:
            scale = memory.float().pow(2).mean().sqrt() * self.memory_noise
            draw = torch.randn(memory.shape, generator=generator).to(memory.device, memory.dtype)
            memory = memory + draw * scale.to(memory.dtype)
        decoded = self.model.decode(batch.tokens, self.model.memory_kv(memory, memory_mask=batch.mask),
                                    mask=batch.mask)
        return {
            "mlm_logits": mlm_logits, "chosen": chosen,
            "lm_logits": decoded.logits[:, :-1], "lm_targets": batch.tokens[:, 1:],
            "lm_selected": batch.target_mask[:, 1:], "aux": decoded.aux_loss,
        }

    def loss(self, batch: TokenBatch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        out = self.forward(batch, generator, noise=True)
        lm = masked_token_loss(out["lm_logits"], out["lm_targets"], out["lm_selected"])
        mlm = masked_token_loss(out["mlm_logits"], batch.tokens, out["chosen"])
        loss = lm + self.mlm_weight * mlm + self.aux_loss_weight * out["aux"]
        return loss, {"lm_loss": float(lm.detach()), "mlm_loss": float(mlm.detach()),
                      "aux_loss": float(out["aux"].detach())}

    def eval(self, batch: TokenBatch, generator: torch.Generator) -> dict[str, Stat]:
        out = self.forward(batch, generator, noise=False)
        lm = token_stats(out["lm_logits"], out["lm_targets"], out["lm_selected"])
        mlm = token_stats(out["mlm_logits"], batch.tokens, out["chosen"])
        # The same decoder reading a fresh STM instead of the encoder's outputs: how much it uses its memory.
        blind = self.model.decode(batch.tokens, self.model.memory_kv(fresh_stm(self.model, batch.tokens.shape[0],
                                                                               generator)), mask=batch.mask)
        no_memory = token_stats(blind.logits[:, :-1], out["lm_targets"], out["lm_selected"])
        return {"lm_loss": lm["loss"], "accuracy": lm["accuracy"], **prefixed(mlm, "mlm_"),
                **prefixed(no_memory, "no_memory_")}

    def summarize(self, means: dict[str, float]) -> dict[str, float]:
        out = super().summarize(means)
        out["loss"] = means["lm_loss"] + self.mlm_weight * means["mlm_loss"]
        return out


def special_token_ids(tokenizer) -> list[int]:
    """Ids that are markers, not text: never masked, never drawn as random replacements."""
    names = ("pad_id", "unk_id", "bos_id", "eos_id", "mask_id", "q_id", "a_id")
    return sorted({getattr(tokenizer, n) for n in names})
