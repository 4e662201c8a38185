"""Does the memory help? Answer-token accuracy on follow-ups with the real STM versus a reset STM.

For each episode the interactions are written into memory one after another (teacher forcing: the dataset's
answers, not generated ones), and before each write the decoder is scored on the next follow-up's answer
tokens (and [EOS]) given its query, twice: reading the STM built so far ("real"), and reading a freshly
initialised STM ("reset"). The gap is what the memory contributes. `fact_` statistics repeat the comparison on
the answer tokens that spell a fact value (a name, a colour...): the tokens only memory can supply.
"""

from __future__ import annotations

from typing import Any

import torch

from rxmrl.train.warmstart.batches import EpisodeBatch
from rxmrl.train.warmstart.losses import Stat, token_stats


def fresh_stm(model: Any, batch: int, generator: torch.Generator) -> torch.Tensor:
    """A new initial memory [B, L, S, D], drawn on the CPU from `generator` (same draws on any device)."""
    if model.device.type == "cpu":
        return model.initial_stm(batch, generator=generator)
    return model.stm_init.initial(batch, generator=generator, device="cpu", dtype=model.dtype).to(model.device)


def write(model: Any, stm: torch.Tensor, batch: EpisodeBatch, index: int) -> torch.Tensor:
    """Write interaction `index` of every episode into `stm` [B, L, S, D]; rows where it is missing keep theirs."""
    tokens, mask, _ = batch.interaction(index)
    new = model.update_memory(stm, tokens, mask)
    return torch.where(batch.valid[:, index, None, None, None], new, stm)


def answer_targets(batch: EpisodeBatch, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token targets [B, T_k-1] of interaction `index`, and which of them are scored (answer + [EOS])."""
    tokens, _, answer_mask = batch.interaction(index)
    return tokens[:, 1:], answer_mask[:, 1:] & batch.valid[:, index, None]


def score_answers(model: Any, stm: torch.Tensor, batch: EpisodeBatch, index: int):
    """Teacher-forced decoder logits [B, T_k-1, V] for interaction `index`, reading `stm` as memory."""
    tokens, mask, _ = batch.interaction(index)
    out = model.decode(tokens, model.memory_kv(stm), mask=mask)
    return out.logits[:, :-1], out.aux_loss


@torch.no_grad()
def follow_up_stats(model: Any, batch: EpisodeBatch, generator: torch.Generator,
                    fact_ids: torch.Tensor | None = None) -> dict[str, Stat]:
    """(sum, count) of loss and accuracy on all follow-up answers, with the real and with a reset STM."""
    size = batch.tokens.shape[0]
    stm = fresh_stm(model, size, generator)
    totals: dict[str, list[float]] = {}

    def add(prefix: str, logits: torch.Tensor, targets: torch.Tensor, selected: torch.Tensor) -> None:
        stats = token_stats(logits, targets, selected)
        if fact_ids is not None:
            is_fact = torch.isin(targets, fact_ids.to(targets.device))
            stats["fact_accuracy"] = token_stats(logits, targets, selected & is_fact)["accuracy"]
        for name, (total, count) in stats.items():
            acc = totals.setdefault(f"{name}_{prefix}", [0.0, 0.0])
            acc[0] += total
            acc[1] += count

    for index in range(1, batch.interactions):
        stm = write(model, stm, batch, index - 1)
        targets, selected = answer_targets(batch, index)
        add("real_stm", score_answers(model, stm, batch, index)[0], targets, selected)
        add("reset_stm", score_answers(model, fresh_stm(model, size, generator), batch, index)[0], targets, selected)
    return {name: (total, count) for name, (total, count) in totals.items()}


def fact_token_ids(tokenizer: Any) -> torch.Tensor:
    """Ids of fact values that are one token each (as written mid-sentence, lower-case or capitalised)."""
    from rxmrl.data.facts import FACT_VALUES

    ids = set()
    for values in FACT_VALUES.values():
        for word in values:
            for spelling in (word, word.capitalize()):
                pieces = tokenizer.encode_text(spelling)
                if len(pieces) == 1:
                    ids.add(pieces[0])
    return torch.tensor(sorted(ids), dtype=torch.long)


def summarize_memory(means: dict[str, float]) -> dict[str, float]:
    """Headline names: `accuracy` / `perplexity` are those of the real STM; plus the real-minus-reset gap."""
    import math

    out = dict(means)
    out["accuracy"] = means["accuracy_real_stm"]
    out["perplexity"] = math.exp(min(means["loss_real_stm"], 50.0))
    out["accuracy_gap"] = means["accuracy_real_stm"] - means["accuracy_reset_stm"]
    if "fact_accuracy_real_stm" in means:
        out["fact_accuracy_gap"] = means["fact_accuracy_real_stm"] - means["fact_accuracy_reset_stm"]
    return out
