"""Answer generation: the batched decoding loop (how each token is chosen: `rxmrl.model.sampling`).

Prompts arrive right-padded. The prompt is decoded once into a KV cache (prefill); each sample's first
answer token comes from the logits at its own last real prompt token, and each new token takes the next
cache slot with the RoPE position it would have had alone (the padding slots are masked), so a padded
batch decodes like its samples one by one.

Log-probs are those of the sampled tokens under the policy, log_softmax(logits), i.e. before temperature,
top-k and top-p reshape the sampling distribution (the quantity an RL trainer's ratio needs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from rxmrl.model.sampling import Sampling, choose_tokens

if TYPE_CHECKING:
    from rxmrl.model.rxt import RxT


@dataclass
class Generation:
    tokens: torch.Tensor  # [B, N] sampled ids; after a sample's EOS (included) it holds pad_id
    mask: torch.Tensor  # [B, N] bool: True for generated tokens up to and including EOS
    logprobs: torch.Tensor  # [B, N] log_softmax(logits) of each sampled token; 0 where mask is False


@torch.no_grad()
def generate(
    model: RxT,
    query: torch.Tensor,
    query_mask: torch.Tensor,
    stm: torch.Tensor,
    *,
    max_new_tokens: int | None = None,
    eos_id: int | None = None,
    pad_id: int = 0,
    sampling: Sampling = Sampling(),
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    on_token: Callable[[torch.Tensor], None] | None = None,
    compile: bool = False,
) -> Generation:
    """query/query_mask [B, Tq] right-padded, stm [B, L, S, D] -> Generation with N <= max_new_tokens columns.

    `eos_id=None` never stops early (exactly max_new_tokens tokens). `use_cache=False` recomputes the full
    forward every step (slow; for checks and benchmarks). `on_token([B] ids)` is called after every step.
    `compile=True` runs the cached decode step through torch.compile (`Decoder.step(compiled=True)`): much
    faster per token on CPU once compiled, but the first call in a process compiles for a minute or more.
    """
    batch, prompt_len = query.shape
    query_mask = query_mask.to(torch.bool)
    if max_new_tokens is None:
        max_new_tokens = model.config.max_seq_len - prompt_len
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if prompt_len + max_new_tokens > model.config.max_seq_len:
        raise ValueError(
            f"prompt length {prompt_len} + max_new_tokens {max_new_tokens} exceeds the model's "
            f"max_seq_len {model.config.max_seq_len}"
        )
    memory = model.memory_kv(stm)
    last_real = (query_mask.long().sum(dim=1) - 1).clamp_min(0)  # [B] index of each prompt's last token
    cache = model.new_cache(batch, prompt_len + max_new_tokens) if use_cache else None
    hidden, _ = model.decoder(model.embedding(query), memory, query_mask, cache, need_aux=False)  # [B, Tq, D]
    logits = model.decoder.lm_head(hidden[torch.arange(batch, device=query.device), last_real])  # [B, V]

    lm_head = _decoding_lm_head(model, batch, max_new_tokens if use_cache else 0)

    tokens, masks, logprobs = [], [], []
    finished = torch.zeros(batch, dtype=torch.bool, device=query.device)
    for step in range(max_new_tokens):
        token = choose_tokens(logits, sampling, generator)
        logprob = F.log_softmax(logits.float(), dim=-1).gather(1, token[:, None]).squeeze(1)  # [B]
        alive = ~finished
        if eos_id is not None:
            token = torch.where(finished, pad_id, token)
            logprob = logprob.masked_fill(finished, 0.0)
        tokens.append(token)
        masks.append(alive)
        logprobs.append(logprob)
        if on_token is not None:
            on_token(token)
        if eos_id is not None:
            finished = finished | (token == eos_id)
            if bool(finished.all()):
                break
        if step + 1 == max_new_tokens:
            break
        if cache is not None:
            logits = lm_head(model.decoder.step(model.embedding(token), memory, cache, compiled=compile))  # [B, V]
        else:
            sequence = torch.cat([query, torch.stack(tokens, dim=1)], dim=1)
            sequence_mask = torch.cat([query_mask, torch.ones_like(sequence[:, prompt_len:], dtype=torch.bool)], dim=1)
            hidden, _ = model.decoder(model.embedding(sequence), memory, sequence_mask, need_aux=False)
            logits = model.decoder.lm_head(hidden[:, -1])
    return Generation(torch.stack(tokens, dim=1), torch.stack(masks, dim=1), torch.stack(logprobs, dim=1))


# Decoding steps from which the LM head's transposed copy pays for itself: the copy costs about as much as
# five tokens' worth of the gemv time it saves (measured on the 7.5k x 128 head), so 16 is on the safe side.
_TRANSPOSED_HEAD_MIN_STEPS = 16


def _decoding_lm_head(model: RxT, batch: int, steps: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The LM head of the cached decoding loop: hidden [B, D] -> logits [B, V].

    At batch 1 on CPU the head is a matrix-vector product over the [V, D] weight, which MKL's gemv reads in
    D-float rows at a fraction of memory bandwidth; against a [D, V] copy it streams V-float rows, about 3x
    faster per token for a 7.5k x 128 head. The copy (one transpose, worth a few tokens) is made per call,
    never kept, so it cannot go stale when the weights change; short generations skip it.
    """
    weight = model.decoder.lm_head.weight  # [V, D]
    if batch == 1 and steps >= _TRANSPOSED_HEAD_MIN_STEPS and weight.device.type == "cpu":
        weight_t = weight.t().contiguous()  # [D, V]
        return lambda hidden: hidden @ weight_t
    return model.decoder.lm_head

