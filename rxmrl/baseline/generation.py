"""Answer generation for the stateless baseline: prefill the whole prompt once, then decode with the KV cache.

Prompts of a batch are left-padded (so every row's next token goes to the same column); each row's RoPE
positions count its real tokens only, and the padding is masked, so a padded batch decodes like its rows one
by one. Token choice is `rxmrl.model.sampling.choose_tokens`, the RxT's own sampler, so greedy or sampled
answers of both systems follow the same rule (and sampling draws from an explicit `torch.Generator`).

`prefill` and `decode_step` are exposed separately for the latency benchmark, which times them apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from rxmrl.model.generation import Generation
from rxmrl.model.sampling import GREEDY, Sampling, choose_tokens


@dataclass
class DecodingState:
    cache: Any  # transformers DynamicCache holding every token so far
    mask: torch.Tensor  # [B, T] bool, False on left padding
    next_position: torch.Tensor  # [B] RoPE position of each row's next token


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int,
             device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> (ids [B, P], mask [B, P]) left-padded to the longest."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.bool)
    for row, prompt in enumerate(prompts):
        if prompt:
            ids[row, width - len(prompt):] = torch.as_tensor(list(prompt), dtype=torch.long)
            mask[row, width - len(prompt):] = True
    return ids.to(device), mask.to(device)


@torch.no_grad()
def prefill(model: Any, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, DecodingState]:
    """ids/mask [B, P] left-padded -> (logits [B, V] of each row's last token, the state to decode from)."""
    from transformers import DynamicCache

    mask = mask.to(torch.bool)
    positions = (mask.long().cumsum(dim=1) - 1).clamp_min(0)  # [B, P]
    cache = DynamicCache(config=model.config)
    out = model(input_ids=ids, attention_mask=mask.long(), position_ids=positions, past_key_values=cache,
                use_cache=True, logits_to_keep=1)
    return out.logits[:, -1], DecodingState(out.past_key_values, mask, mask.long().sum(dim=1))


@torch.no_grad()
def decode_step(model: Any, token: torch.Tensor, state: DecodingState) -> torch.Tensor:
    """Append token [B] to every row (updating `state` in place) -> logits [B, V] for the next one."""
    state.mask = torch.cat([state.mask, torch.ones_like(state.mask[:, :1])], dim=1)
    out = model(input_ids=token[:, None], attention_mask=state.mask.long(), position_ids=state.next_position[:, None],
                past_key_values=state.cache, use_cache=True, logits_to_keep=1)
    state.cache = out.past_key_values
    state.next_position = state.next_position + 1
    return out.logits[:, -1]


@torch.no_grad()
def generate_stateless(
    model: Any,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_id: int | None,
    pad_id: int = 0,
    sampling: Sampling = GREEDY,
    generator: torch.Generator | None = None,
) -> Generation:
    """B prompts (token lists) -> Generation with tokens/mask/logprobs [B, N], N <= max_new_tokens.

    After a row's EOS (kept) its tokens are `pad_id` and its mask False; `eos_id=None` never stops early.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, pad_id, device)
    logits, state = prefill(model, ids, mask)
    tokens, masks, logprobs = [], [], []
    finished = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    for step in range(max_new_tokens):
        token = choose_tokens(logits, sampling, generator)
        logprob = F.log_softmax(logits.float(), dim=-1).gather(1, token[:, None]).squeeze(1)  # [B]
        alive = ~finished
        if eos_id is not None:
            token = torch.where(finished, pad_id, token)
            logprob = logprob.masked_fill(finished, 0.0)
            finished = finished | (token == eos_id)
        tokens.append(token)
        masks.append(alive)
        logprobs.append(logprob)
        if bool(finished.all()) or step + 1 == max_new_tokens:
            break
        logits = decode_step(model, token, state)
    return Generation(torch.stack(tokens, dim=1), torch.stack(masks, dim=1), torch.stack(logprobs, dim=1))
