"""RxNN tensor names and layouts -> rxmrl's state dict. Every RxNN tensor is either mapped or dropped on
purpose (RoPE tables, the STM buffer); any other name is an error, so an unsupported feature cannot slip
through as silently missing weights.

Layout differences:
- attention: RxNN's separate q/k/v projections -> rxmrl's fused `qkv` (self-attention) or `q` + `kv`.
- RoPE: RxNN rotates feature pairs (2j, 2j+1) of a head and writes the result as [all first halves, all
  second halves]; rxmrl rotates pairs (j, j + hd/2). Permuting a rotated projection's rows within each head
  to (0, 2, 4, ..., 1, 3, 5, ...) makes rxmrl's rotation output exactly RxNN's. Only the projections that
  RxNN rotates are permuted (self-attention q and k; memory cross-attention q; memory attention k), so the
  unrotated side keeps RxNN's layout too and every dot product is unchanged.
- SwiGLU: RxNN's fc1 rows are [linear half; gated half], rxmrl's gate_up is [gate; up]: halves swapped.
- MoE: RxNN's per-expert modules (or, in 0.1.7-0.1.14, its own stacked w1/b1/w2/b2 applied as x @ w) ->
  rxmrl's stacked [E, ...] tensors.
- residual gates: `gate` (parameter) -> `weight`, `gate` (Linear) -> `linear`, `slot_status` -> `status`.
"""

from __future__ import annotations

import re

import torch

from rxmrl.errors import CheckpointError
from rxmrl.model.config import RxTConfig
from rxmrl.model.rxnn.checkpoint import RxnnCheckpoint
from rxmrl.model.rxnn.config_map import consult_prefix, layer_count

DROPPED = re.compile(r"(^|\.)rope\.(inv_freq|cache)$|^model\.stm\.memory$")


def pairs_to_halves(weight: torch.Tensor, head_dim: int) -> torch.Tensor:
    """[H * hd, D] rows of a rotated projection, per head reordered (0, 2, ..., hd-2, 1, 3, ..., hd-1)."""
    order = torch.cat([torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)])
    heads = weight.shape[0] // head_dim
    return weight.reshape(heads, head_dim, -1)[:, order].reshape(weight.shape)


def swap_halves(tensor: torch.Tensor) -> torch.Tensor:
    """[2H, ...] -> rows [H, 2H) first: RxNN's [linear; gated] -> rxmrl's [gate; up]."""
    linear, gated = tensor.chunk(2, dim=0)
    return torch.cat([gated, linear], dim=0)


class Mapper:
    """Moves tensors from one RxNN checkpoint into the rxmrl state dict, remembering which it used."""

    def __init__(self, checkpoint: RxnnCheckpoint, state: dict[str, torch.Tensor]) -> None:
        self.checkpoint = checkpoint
        self.state = state
        self.used: set[str] = set()

    def take(self, name: str) -> torch.Tensor:
        if name not in self.checkpoint.weights:
            raise CheckpointError(f"{self.checkpoint.source}: missing tensor {name}")
        self.used.add(name)
        return self.checkpoint.weights[name]

    def has(self, name: str) -> bool:
        return name in self.checkpoint.weights

    def put(self, name: str, tensor: torch.Tensor) -> None:
        self.state[name] = tensor.detach().to(torch.float32).contiguous().clone()

    def copy(self, source: str, target: str) -> None:
        self.put(target, self.take(source))

    def finish(self) -> None:
        left = sorted(n for n in self.checkpoint.weights if n not in self.used and not DROPPED.search(n))
        if left:
            shown = ", ".join(left[:8]) + (f" ... and {len(left) - 8} more" if len(left) > 8 else "")
            raise CheckpointError(f"{self.checkpoint.source}: tensors rxmrl has no place for: {shown}")

    # ----- building blocks ----------------------------------------------------------------------------

    def self_attention(self, source: str, target: str, head_dim: int) -> None:
        q = pairs_to_halves(self.take(f"{source}.q_proj.weight"), head_dim)
        k = pairs_to_halves(self.take(f"{source}.k_proj.weight"), head_dim)
        self.put(f"{target}.qkv.weight", torch.cat([q, k, self.take(f"{source}.v_proj.weight")]))
        self.output(source, target)

    def cross_attention(self, source: str, target: str, head_dim: int, *, rotated: str | None) -> None:
        """rotated: "q" (memory cross-attention), "k" (memory attention) or None (interlayer attention)."""
        q, k = self.take(f"{source}.q_proj.weight"), self.take(f"{source}.k_proj.weight")
        if rotated == "q":
            q = pairs_to_halves(q, head_dim)
        elif rotated == "k":
            k = pairs_to_halves(k, head_dim)
        self.put(f"{target}.q.weight", q)
        self.put(f"{target}.kv.weight", torch.cat([k, self.take(f"{source}.v_proj.weight")]))
        self.output(source, target)

    def output(self, source: str, target: str) -> None:
        self.copy(f"{source}.out_proj.weight", f"{target}.out.weight")
        if self.has(f"{source}.out_proj.bias"):
            self.copy(f"{source}.out_proj.bias", f"{target}.out.bias")

    def swiglu(self, source: str, target: str) -> None:
        self.put(f"{target}.gate_up.weight", swap_halves(self.take(f"{source}.fc1.linear.weight")))
        self.put(f"{target}.gate_up.bias", swap_halves(self.take(f"{source}.fc1.linear.bias")))
        self.copy(f"{source}.fc2.weight", f"{target}.down.weight")
        self.copy(f"{source}.fc2.bias", f"{target}.down.bias")

    def mixture(self, source: str, target: str) -> None:
        self.copy(f"{source}.router.gate.weight", f"{target}.router.weight")
        if self.has(f"{source}.w1"):  # RxNN 0.1.7-0.1.14: stacked, applied as x @ w1 (so transposed)
            self.put(f"{target}.gate_up_weight",
                     torch.stack([swap_halves(w.T) for w in self.take(f"{source}.w1")]))
            self.put(f"{target}.gate_up_bias", torch.stack([swap_halves(b) for b in self.take(f"{source}.b1")]))
            self.put(f"{target}.down_weight", self.take(f"{source}.w2").transpose(1, 2))
            self.copy(f"{source}.b2", f"{target}.down_bias")
            return
        experts = layer_count(self.checkpoint.weights, f"{source}.experts.")
        each = [f"{source}.experts.{e}" for e in range(experts)]
        self.put(f"{target}.gate_up_weight", torch.stack([swap_halves(self.take(f"{e}.fc1.linear.weight")) for e in each]))
        self.put(f"{target}.gate_up_bias", torch.stack([swap_halves(self.take(f"{e}.fc1.linear.bias")) for e in each]))
        self.put(f"{target}.down_weight", torch.stack([self.take(f"{e}.fc2.weight") for e in each]))
        self.put(f"{target}.down_bias", torch.stack([self.take(f"{e}.fc2.bias") for e in each]))

    def gate(self, source: str, target: str) -> None:
        gated = True
        if self.has(f"{source}.gate.weight"):
            self.copy(f"{source}.gate.weight", f"{target}.linear.weight")
            self.copy(f"{source}.gate.bias", f"{target}.linear.bias")
        elif self.has(f"{source}.gate"):
            self.copy(f"{source}.gate", f"{target}.weight")
        else:
            gated = False  # the plain residual; RxNN still builds a learned status for it, which it never uses
        if self.has(f"{source}.slot_status.weight"):
            status = (self.take(f"{source}.slot_status.weight"), self.take(f"{source}.slot_status.bias"))
            if gated:
                self.put(f"{target}.status.weight", status[0])
                self.put(f"{target}.status.bias", status[1])


def stack_layers(mapper: Mapper, target: str, head_dim: int, layers: int, *, has_head: bool) -> None:
    """A decoder's or encoder's layers (and the decoder's LM head)."""
    for i in range(layers):
        source, into = f"model.layers.{i}", f"{target}.layers.{i}"
        mapper.copy(f"{source}.norm1.weight", f"{into}.self_norm.weight")
        mapper.self_attention(f"{source}.attention", f"{into}.self_attention", head_dim)
        if mapper.has(f"{source}.memory_cross_attention.q_proj.weight"):
            mapper.copy(f"{source}.norm2.weight", f"{into}.cross_norm.weight")
            mapper.cross_attention(f"{source}.memory_cross_attention", f"{into}.cross_attention", head_dim,
                                   rotated="q")
            if mapper.has(f"{source}.stm_norm.weight"):
                mapper.copy(f"{source}.stm_norm.weight", f"{into}.cross_attention.memory_norm.weight")
        mapper.copy(f"{source}.norm3.weight", f"{into}.ffn_norm.weight")
        if mapper.has(f"{source}.ff.router.gate.weight"):
            mapper.mixture(f"{source}.ff", f"{into}.ffn")
        else:
            mapper.swiglu(f"{source}.ff", f"{into}.ffn")
    if has_head:
        if mapper.has("model.head_norm.weight"):
            mapper.copy("model.head_norm.weight", "decoder.norm.weight")
            mapper.copy("model.head_norm.bias", "decoder.norm.bias")
        mapper.copy("model.head.weight", "decoder.lm_head.weight")
        if mapper.has("model.head.bias"):
            mapper.copy("model.head.bias", "decoder.lm_head.bias")


def memory_layers(mapper: Mapper, config: RxTConfig) -> None:
    head_dim = config.dim // config.memory_attention.heads
    variant = config.memory_attention.variant
    rxnn_variant = variant.startswith("rxnn-")
    for i in range(config.stm.layers):
        into = f"memory_attention.layers.{i}"
        mapper.copy(f"model.memory_norm_layers.{i}.weight", f"{into}.query_norm.weight")
        mapper.copy(f"model.memory_input_norm_layers.{i}.weight", f"{into}.source_norm.weight")
        mapper.cross_attention(f"model.attention_layers.{i}", f"{into}.attention", head_dim, rotated="k")
        mapper.gate(f"model.residual_gate_layers.{i}", f"{into}.gate")
        if rxnn_variant:
            prefix = consult_prefix(variant)
            mapper.copy(f"{prefix}memory_norm_layers.{i}.weight", f"{into}.inter_norm.weight")
            mapper.cross_attention(f"{prefix}attention_layers.{i}", f"{into}.inter_attention", head_dim, rotated=None)
            mapper.gate(f"{prefix}residual_gate_layers.{i}", f"{into}.inter_gate")
            if variant == "rxnn-self-interlayer":
                mapper.gate(f"model.interlayer_gate_layers.{i}", f"{into}.mix_gate")
    if variant in ("rxnn-interlayer", "rxnn-self-interlayer"):
        mapper.copy("model.mean_stm_norm.weight", "memory_attention.mean_norm.weight")


def convert(
    config: RxTConfig, decoder: RxnnCheckpoint, encoder: RxnnCheckpoint, memory: RxnnCheckpoint | None
) -> dict[str, torch.Tensor]:
    """The rxmrl state dict (float32) of the three checkpoints; memory attention left out when None."""
    state: dict[str, torch.Tensor] = {}
    decoder_map, encoder_map = Mapper(decoder, state), Mapper(encoder, state)
    decoder_map.copy("model.embedding.weight", "embedding.weight")
    encoder_map.take("model.embedding.weight")  # checked equal to the decoder's by the importer
    stack_layers(decoder_map, "decoder", config.dim // config.decoder.heads, config.decoder.layers, has_head=True)
    stack_layers(encoder_map, "encoder", config.dim // config.encoder.heads, config.encoder.layers, has_head=False)
    mappers = [decoder_map, encoder_map]
    if memory is not None:
        memory_map = Mapper(memory, state)
        memory_layers(memory_map, config)
        mappers.append(memory_map)
    for mapper in mappers:
        mapper.finish()
    return state
