"""Parameter counts per component, comparable with the RxT-Alpha model cards.

    decoder.total           shared embedding + decoder layers + final norm + LM head
    decoder.active          the same, but each MoE layer counts router + top_k routed experts + shared experts
                            (the parameters one token actually uses)
    encoder.total/active    shared embedding + encoder layers (dense, so active = total)
    memory_attention        memory-attention layers (and gates)
    total                   every distinct parameter of the model once (the embedding is counted once here,
                            so total < the sum of the components; a learned initial STM counts here only)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from torch import nn

from rxmrl.model.moe import MixtureOfExperts

if TYPE_CHECKING:
    from rxmrl.model.rxt import RxT


def count(parameters: Iterable[nn.Parameter]) -> int:
    seen: set[int] = set()
    total = 0
    for parameter in parameters:
        if id(parameter) not in seen:
            seen.add(id(parameter))
            total += parameter.numel()
    return total


def inactive_expert_parameters(module: nn.Module) -> int:
    """Parameters of routed experts a single token does not use, summed over every MoE in `module`."""
    inactive = 0
    for sub in module.modules():
        if isinstance(sub, MixtureOfExperts):
            inactive += (sub.num_experts - sub.top_k) * sub.expert_parameter_count()
    return inactive


def parameter_counts(model: RxT) -> dict:
    embedding = count(model.embedding.parameters())
    decoder_total = embedding + count(model.decoder.parameters())
    encoder_total = embedding + count(model.encoder.parameters())
    memory_total = count(model.memory_attention.parameters())
    return {
        "decoder": {"total": decoder_total, "active": decoder_total - inactive_expert_parameters(model.decoder)},
        "encoder": {"total": encoder_total, "active": encoder_total},
        "memory_attention": {"total": memory_total, "active": memory_total},
        "total": count(model.parameters()),
    }
