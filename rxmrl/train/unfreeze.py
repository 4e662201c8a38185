"""Gradual unfreezing for MRL: which of the model's weights train in a given epoch of a stage.

Groups are cumulative, in the order of the RxT recipe (the memory system first, the language model last, so
early noisy rewards cannot damage what supervised training built):

    memory_attention          memory attention (and a learned initial STM)
    decoder_cross_attention   + the decoder's memory cross-attention (how answers read the STM)
    encoder                   + the memory encoder (what a write reads from the interaction)
    everything                + embedding, decoder self-attention and feed-forward, LM head

Frozen weights get `requires_grad = False`, but activations still carry gradients through them, so a frozen
decoder still passes the answer's gradient back to the memory write.
"""

from __future__ import annotations

import torch
from torch import nn

from rxmrl.train.optim_config import UNFREEZE_GROUPS


def _ids(params) -> set[int]:
    return {id(p) for p in params}


def trainable_parameter_ids(model: nn.Module, group: str) -> set[int]:
    """ids of the parameters that train when `group` (one of UNFREEZE_GROUPS) is unfrozen."""
    if group not in UNFREEZE_GROUPS:
        raise ValueError(f"unknown unfreeze group {group!r}; expected one of {UNFREEZE_GROUPS}")
    if group == "everything":
        return _ids(model.parameters())
    ids = _ids(model.memory_attention.parameters()) | _ids(model.stm_init.parameters())
    if group in ("decoder_cross_attention", "encoder"):
        ids |= _ids(model.decoder_memory_cross_attention_parameters())
    if group == "encoder":
        ids |= _ids(model.encoder.parameters())
    return ids


def apply_unfreeze(model: nn.Module, group: str) -> int:
    """Set `requires_grad` on every model parameter for `group`; returns how many weights train."""
    trainable = trainable_parameter_ids(model, group)
    count = 0
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)
        count += p.numel() if id(p) in trainable else 0
    return count


def parameter_groups(model: nn.Module) -> dict[str, list[torch.nn.Parameter]]:
    """The model's weights split into the optimizer groups that get their own learning rate.

    `decoder` holds the decoder, the shared embedding and the LM head; `memory_attention` also holds a
    learned initial STM. Every parameter is in exactly one group.
    """
    memory = list(model.memory_attention.parameters()) + list(model.stm_init.parameters())
    encoder = list(model.encoder.parameters())
    taken = _ids(memory) | _ids(encoder)
    decoder = [p for p in model.parameters() if id(p) not in taken]
    return {"decoder": decoder, "encoder": encoder, "memory_attention": memory}
