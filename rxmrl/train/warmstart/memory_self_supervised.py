"""Stage 3: self-supervised memory-attention pre-training (encoder frozen, only memory attention learns).

Before this stage the memory attention writes noise, and a decoder trained against noise learns to ignore
its memory. There is no ground-truth STM, so each write gets a *pseudo-target*: a weighted mean of the
previous memory and the new interaction, and the loss pulls the written memory towards it in direction:

    target_t = (1 - w_t) * unit(STM_{t-1}) + w_t * unit(pool(STM_{t-1}, ED_t))
    loss     = -[(1 - c) cos(M_t, target_t) + c cos(M_t - mean_s M_t, target_t - mean_s target_t)]
               M_t = MemoryAttention(STM_{t-1}, ED_t); cosines per slot, averaged; c = centre_weight
    w_1 = first_new_data_weight (0.9); w_t = max(min_new_data_weight, new_data_weight - (t-2) * decay)
    for t >= 2, each moved by up to +/- weight_jitter at random; optional noise on the STM and the target.

STM_t (what memory attention wrote) is carried, detached, to the next step: the stage teaches one write at a
time, starting from the kind of memory the previous writes produce.

Bringing ED_t [T positions] to slot shape [S slots]: `pool` is a parameter-free attention in which each
slot of STM_{t-1} is a query over the encoded tokens (all vectors RMS-normalised, temperature tau):

    pool(STM, ED)_s = sum_t softmax_t(unit(STM_s) . unit(ED_t) / (sqrt(D) tau)) unit(ED_t)

Why not the mean over tokens broadcast to every slot: with w_1 = 0.9 every slot would get nearly the same
target and the stage would teach the memory to collapse all slots into one vector. Pooling with the slots
as queries gives each slot its own summary of the interaction, and it has no parameters, so the memory
attention cannot move its own target (a target computed by the memory-attention update itself would be
trivially matched). Why a low temperature (`target_temperature` = 0.1): at tau = 1 random slots attend
almost uniformly (largest weight ~0.05 over ~70 tokens on rxt-cpu-small), every slot becomes the mean of the
interaction, and the written STMs of different stories were measured at cosine ~0.8-0.96 to each other: the
names and colours drown in the template words and no decoder could read them back. At tau = 0.1 a slot
holds mostly a few tokens (largest weight ~0.6; slots as diverse as the encoder's own token outputs).
Why the centred cosine: encoder outputs share a large common direction (token vectors of one story have
cosine ~0.3-0.6 to each other), so matching that shared part alone already scores cos ~0.7-0.9. Measured on
rxt-cpu-small with the plain cosine: the written STM reached cos 0.91 with its targets while a story's name
could no longer be found in it (the target still held it). Subtracting each layer's mean slot from both
sides scores only what tells the slots apart, i.e. the content of the interaction.
Why unit(): cosine ignores scale, but a weighted mean does not. The initial STM has RMS ~0.02 and encoder
outputs RMS ~1, so mixing raw vectors would make the weights meaningless; mixing directions keeps
"90% new, 10% old" true.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from rxmrl.model.norm import unit_rms
from rxmrl.train.warmstart.batches import EpisodeBatch
from rxmrl.train.warmstart.losses import Stat
from rxmrl.train.warmstart.memory_eval import fact_token_ids, follow_up_stats, fresh_stm, summarize_memory
from rxmrl.train.warmstart.stage import SupervisedStage, unique_parameters


def attention_pool(slots: torch.Tensor, encoded: torch.Tensor, mask: torch.Tensor | None,
                   temperature: float = 1.0) -> torch.Tensor:
    """Parameter-free slot-query attention. slots [B, L, S, D], encoded [B, L, T, D], mask [B, T] -> [B, L, S, D]."""
    q, k = unit_rms(slots.float()), unit_rms(encoded.float())
    scores = q @ k.transpose(-1, -2) / (math.sqrt(q.shape[-1]) * temperature)  # [B, L, S, T]
    if mask is not None:
        scores = scores.masked_fill(~mask.bool()[:, None, None, :], float("-inf"))
    return scores.softmax(dim=-1) @ k


def new_data_weight(step: int, *, first: float, second: float, decay: float, minimum: float) -> float:
    """The new interaction's share of the target at write `step` (0 = the first write)."""
    if step == 0:
        return first
    return max(minimum, second - (step - 1) * decay)


def self_supervised_target(previous: torch.Tensor, encoded: torch.Tensor, mask: torch.Tensor | None,
                           weight: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """previous [B, L, S, D], encoded [B, L, T, D], mask [B, T], weight [B] -> target [B, L, S, D] (float32)."""
    w = weight.float()[:, None, None, None]
    pooled = attention_pool(previous, encoded, mask, temperature)
    return (1 - w) * unit_rms(previous.float()) + w * unit_rms(pooled)


def cosine_per_sample(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cosine over layers and slots. [B, L, S, D] each -> [B]"""
    return F.cosine_similarity(prediction.float(), target.float(), dim=-1).mean(dim=(1, 2))


def centred(memory: torch.Tensor) -> torch.Tensor:
    """Each slot minus its memory layer's mean slot: what tells the slots apart. [B, L, S, D] -> same"""
    return memory - memory.mean(dim=2, keepdim=True)


def similarity_per_sample(prediction: torch.Tensor, target: torch.Tensor, centre_weight: float) -> torch.Tensor:
    """(1 - c) * cos(prediction, target) + c * cos(centred prediction, centred target), per sample [B]."""
    plain = cosine_per_sample(prediction, target)
    if centre_weight == 0:
        return plain
    return (1 - centre_weight) * plain + centre_weight * cosine_per_sample(centred(prediction), centred(target))


class MemorySelfSupervisedStage(SupervisedStage):
    name = "memory-attention"

    def __init__(self, model: Any, tokenizer: Any, *, first_new_data_weight: float = 0.9,
                 new_data_weight: float = 0.5, new_data_weight_decay: float = 0.05,
                 min_new_data_weight: float = 0.05, weight_jitter: float = 0.05, target_noise: float = 0.0,
                 stm_noise: float = 0.0, target_temperature: float = 0.1, centre_weight: float = 0.5) -> None:
        self.model = model
        self.schedule = dict(first=first_new_data_weight, second=new_data_weight, decay=new_data_weight_decay,
                             minimum=min_new_data_weight)
        self.weight_jitter = weight_jitter
        self.target_noise = target_noise
        self.stm_noise = stm_noise
        self.target_temperature = target_temperature
        self.centre_weight = centre_weight
        self.fact_ids = fact_token_ids(tokenizer)
        self._encoder_flags: list[tuple[torch.nn.Parameter, bool]] = []

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return unique_parameters(self.model.memory_attention)

    def before_step(self, step: int) -> None:
        # The encoder (and embedding) are frozen: no gradients, so no wasted backward through them.
        if not self._encoder_flags:
            frozen = unique_parameters(self.model.embedding, self.model.encoder)
            self._encoder_flags = [(p, p.requires_grad) for p in frozen]
            for p, _ in self._encoder_flags:
                p.requires_grad_(False)

    def finish(self) -> None:
        for p, flag in self._encoder_flags:
            p.requires_grad_(flag)
        self._encoder_flags = []

    def _noisy(self, x: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
        if scale <= 0:
            return x
        draw = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
        return x + draw * (x.float().pow(2).mean().sqrt() * scale).to(x.dtype)

    def _weights(self, step: int, size: int, generator: torch.Generator, jitter: bool, device) -> torch.Tensor:
        base = torch.full((size,), new_data_weight(step, **self.schedule))
        if jitter and self.weight_jitter > 0:
            base = base + (torch.rand(size, generator=generator) * 2 - 1) * self.weight_jitter
        return base.clamp(0.0, 1.0).to(device)

    def _run(self, batch: EpisodeBatch, generator: torch.Generator, *, train: bool
             ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Negative-cosine sum and the count of (episode, write) pairs it covers; mean RMS change of the STM."""
        size = batch.tokens.shape[0]
        stm = fresh_stm(self.model, size, generator)
        loss_sum = stm.new_zeros((), dtype=torch.float32)
        count = stm.new_zeros((), dtype=torch.float32)
        delta = 0.0
        for step in range(batch.interactions):
            valid = batch.valid[:, step]
            tokens, mask, _ = batch.interaction(step)
            with torch.no_grad():
                encoded = self.model.encode_interaction(tokens, mask, stm)  # [B, L, T, D]
            previous = self._noisy(stm, self.stm_noise, generator) if train else stm
            written = self.model.memory_attention(previous, encoded, mask)
            weight = self._weights(step, size, generator, train, stm.device)
            target = self_supervised_target(previous, encoded, mask, weight, self.target_temperature)
            if train:
                target = self._noisy(target, self.target_noise, generator)
            loss_sum = loss_sum - (similarity_per_sample(written, target, self.centre_weight) * valid).sum()
            count = count + valid.sum()
            delta += float((written.detach() - stm).float().pow(2).mean().sqrt())
            stm = torch.where(valid[:, None, None, None], written, stm).detach()
        return loss_sum, count, delta / batch.interactions

    def loss(self, batch: EpisodeBatch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        loss_sum, count, delta = self._run(batch, generator, train=True)
        loss = loss_sum / count.clamp(min=1.0)
        return loss, {"memory/loss": float(loss.detach()), "memory/stm_delta": delta}

    def eval(self, batch: EpisodeBatch, generator: torch.Generator) -> dict[str, Stat]:
        loss_sum, count, _ = self._run(batch, generator, train=False)
        return {"loss": (float(loss_sum.detach()), float(count)),
                **follow_up_stats(self.model, batch, generator, self.fact_ids)}

    def summarize(self, means: dict[str, float]) -> dict[str, float]:
        return summarize_memory(means)
