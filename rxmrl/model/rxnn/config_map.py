"""The RxTConfig that computes what a set of RxNN checkpoints computes.

Shapes decide wherever they can: layer counts, widths, query and key/value heads of every attention (RxNN's
configs are ambiguous there: from 0.2.146 on, `cross_att_groups` no longer reaches SQA cross-attention,
which uses `att_groups`), expert counts, which norms and biases exist. The config supplies only what no
tensor shows: the nominal head count (`att_heads`, hence the head dim), `seq_len`, `moe_top_k`, the FFN
activation and the gate activation; missing keys take RxNN's defaults, as its constructors do.

RxNN's fixed choices become switches: no final decoder norm (or a LayerNorm one), an LM-head bias, RMSNorm eps = the dtype's
machine epsilon, the memory attention's input taken from raw encoder layers (`token_skip` off).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rxmrl.errors import CheckpointError
from rxmrl.model.config import (
    AttentionConfig,
    DecoderConfig,
    EncoderConfig,
    FeedForwardConfig,
    MemoryAttentionConfig,
    RxTConfig,
    StmConfig,
)
from rxmrl.model.rxnn.checkpoint import RxnnCheckpoint

# RxNN's constructor defaults (rxt/models.py), for keys a config.json leaves out.
COMPONENT_DEFAULTS = {"att_heads": 16, "seq_len": 1024, "moe_top_k": 1, "ff_activation": "swish",
                      "self_att_type": "gqa", "cross_att_type": "mqa"}
MEMORY_DEFAULTS = {"att_heads": 16, "norm_type": "classic-rms", "residual_gate_type": "static",
                   "use_tanh_residual_gate": True, "disable_residual": False}
SUPPORTED_ATTENTION = ("mha", "gqa", "mqa", "sqa")


@dataclass
class ImportChoices:
    """What the checkpoints cannot say; `rxmrl model import` exposes these as options."""

    # None: 1.0 for an RxTAlpha (its inference mode draws "standard" N(0, 1)), else 0.02 (ShortTermMemory's
    # default "normal", what RxNN's MRL trainer resets to)
    stm_init_std: float | None = None
    causal_memory_cross_attention: bool = False  # checkpoints trained before RxNN 0.2.60
    name: str = "rxnn-import"


def setting(checkpoint: RxnnCheckpoint, key: str, defaults: dict):
    value = checkpoint.config.get(key)
    return defaults.get(key) if value is None else value


def layer_count(weights: dict, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for name in weights if (m := pattern.match(name))}
    return max(indices) + 1 if indices else 0


def heads_of(checkpoint: RxnnCheckpoint, attention: str, head_dim: int) -> AttentionConfig:
    """Query and key/value heads of one attention, from its projection shapes."""
    w = checkpoint.weights
    rows = {p: w[f"{attention}.{p}_proj.weight"].shape[0] for p in ("q", "k", "v")}
    if rows["k"] != rows["v"] or rows["q"] % head_dim or rows["k"] % head_dim:
        raise CheckpointError(f"{checkpoint.source}: {attention} projections {rows} do not split into heads "
                              f"of width {head_dim} (att_heads in config.json?)")
    for p in ("q", "k", "v"):
        if f"{attention}.{p}_proj.bias" in w:
            raise CheckpointError(f"{checkpoint.source}: {attention} has query/key/value biases; rxmrl has none")
    return AttentionConfig(query_heads=rows["q"] // head_dim, kv_heads=rows["k"] // head_dim)


def check_component(checkpoint: RxnnCheckpoint) -> None:
    """Refuse, with the reason, RxNN options rxmrl does not implement."""
    w, source = checkpoint.weights, checkpoint.source
    for key in ("self_att_type", "cross_att_type"):
        if setting(checkpoint, key, COMPONENT_DEFAULTS) not in SUPPORTED_ATTENTION:
            raise CheckpointError(f"{source}: {key} = {checkpoint.config[key]!r} (experimental RxNN attention) "
                                  f"is not supported; rxmrl has {', '.join(SUPPORTED_ATTENTION)}")
    if setting(checkpoint, "ff_activation", COMPONENT_DEFAULTS) not in ("silu", "swish"):
        raise CheckpointError(f"{source}: ff_activation = {checkpoint.config['ff_activation']!r}; rxmrl's "
                              "feed-forward is SwiGLU (silu)")
    if "model.layers.0.norm1.bias" in w:
        raise CheckpointError(f"{source}: LayerNorm layers (use_rms_norm = false); rxmrl uses RMSNorm")
    if any(name.endswith(".fc1.weight") for name in w):  # a gated unit's is fc1.linear.weight
        raise CheckpointError(f"{source}: a non-gated feed-forward (use_gated = false); rxmrl's is SwiGLU")


def ffn_of(checkpoint: RxnnCheckpoint, layer: str) -> FeedForwardConfig:
    w = checkpoint.weights
    top_k = int(setting(checkpoint, "moe_top_k", COMPONENT_DEFAULTS))
    if f"{layer}.ff.w1" in w:  # RxNN 0.1.7-0.1.14: experts stacked, w1 [E, D, 2H], w2 [E, H, D]
        experts, _, hidden = w[f"{layer}.ff.w2"].shape
        if w[f"{layer}.ff.w1"].shape[2] != 2 * hidden:
            raise CheckpointError(f"{checkpoint.source}: a non-gated MoE (use_gated = false); rxmrl's is SwiGLU")
        return FeedForwardConfig(hidden=hidden, experts=experts, top_k=top_k)
    experts = layer_count(w, f"{layer}.ff.experts.")
    if experts == 0:
        return FeedForwardConfig(hidden=w[f"{layer}.ff.fc2.weight"].shape[1])
    return FeedForwardConfig(hidden=w[f"{layer}.ff.experts.0.fc2.weight"].shape[1], experts=experts, top_k=top_k)


def stack_shape(checkpoint: RxnnCheckpoint) -> tuple[int, int, int]:
    """(layers, vocab, dim) of a decoder or encoder."""
    layers = layer_count(checkpoint.weights, "model.layers.")
    vocab, dim = checkpoint.weights["model.embedding.weight"].shape
    return layers, vocab, dim


def stm_slots(checkpoint: RxnnCheckpoint) -> int:
    """stm_size from the config, else from the saved STM buffer ([L, (B,) S, D]), else RxNN's default."""
    if checkpoint.config.get("stm_size"):
        return int(checkpoint.config["stm_size"])
    if "model.stm.memory" in checkpoint.weights:
        return checkpoint.weights["model.stm.memory"].shape[-2]
    return 1024


def decoder_config(checkpoint: RxnnCheckpoint) -> tuple[DecoderConfig, dict]:
    check_component(checkpoint)
    w = checkpoint.weights
    layers, _, dim = stack_shape(checkpoint)
    heads = int(setting(checkpoint, "att_heads", COMPONENT_DEFAULTS))
    if "model.layers.0.memory_cross_attention.q_proj.weight" not in w:
        raise CheckpointError(f"{checkpoint.source}: a decoder without memory cross-attention "
                              "(skip_memory_cross_attention) cannot be an RxT decoder")
    config = DecoderConfig(
        layers=layers,
        heads=heads,
        self_attention=heads_of(checkpoint, "model.layers.0.attention", dim // heads),
        cross_attention=heads_of(checkpoint, "model.layers.0.memory_cross_attention", dim // heads),
        ffn=ffn_of(checkpoint, "model.layers.0"),
    )
    switches = {"lm_head_bias": "model.head.bias" in w, "memory_read_norm": "model.layers.0.stm_norm.weight" in w,
                # use_head_norm: a LayerNorm before the head; otherwise the head reads the raw stream
                "final_norm": "model.head_norm.weight" in w, "final_norm_kind": "layer"}
    return config, switches


def encoder_config(checkpoint: RxnnCheckpoint) -> tuple[EncoderConfig, bool | None]:
    """-> (config, whether its memory cross-attention normalises the memory; None without one)"""
    check_component(checkpoint)
    w = checkpoint.weights
    layers, _, dim = stack_shape(checkpoint)
    heads = int(setting(checkpoint, "att_heads", COMPONENT_DEFAULTS))
    ffn = ffn_of(checkpoint, "model.layers.0")
    if ffn.is_moe:
        raise CheckpointError(f"{checkpoint.source}: an MoE encoder (use_moe = true); rxmrl's encoder is dense")
    cross, reads_norm = None, None
    if "model.layers.0.memory_cross_attention.q_proj.weight" in w:
        cross = heads_of(checkpoint, "model.layers.0.memory_cross_attention", dim // heads)
        reads_norm = "model.layers.0.stm_norm.weight" in w
    config = EncoderConfig(layers=layers, heads=heads, ffn=ffn, cross_attention=cross,
                           self_attention=heads_of(checkpoint, "model.layers.0.attention", dim // heads))
    return config, reads_norm


def memory_variant(checkpoint: RxnnCheckpoint) -> str:
    w = checkpoint.weights
    if "model.interlayer_gate_layers.0.gate" in w or "model.interlayer_gate_layers.0.gate.weight" in w:
        return "rxnn-self-interlayer"
    variant = checkpoint.config.get("_variant")  # RxTAlpha's memory_attention_variant
    if variant == "self-interlayer":
        return "rxnn-self-interlayer"
    if layer_count(w, "model.mean_attention_layers.") or variant == "interlayer":
        return "rxnn-interlayer"
    if layer_count(w, "model.self_attention_layers."):
        return "rxnn-self"
    return "simple"


def consult_prefix(variant: str) -> str:
    """Where RxNN keeps the first write's modules: `self_*` in the self variant, `mean_*` in the others."""
    return "model.self_" if variant == "rxnn-self" else "model.mean_"


def has_gate(weights: dict, prefix: str) -> bool:
    return f"{prefix}gate" in weights or f"{prefix}gate.weight" in weights


def gate_settings(checkpoint: RxnnCheckpoint) -> dict:
    """RxNN's ResidualGate options, read from layer 0's main gate (all gates share them in RxNN)."""
    w = checkpoint.weights
    prefix = "model.residual_gate_layers.0."
    if setting(checkpoint, "disable_residual", MEMORY_DEFAULTS):
        raise CheckpointError(f"{checkpoint.source}: disable_residual = true (no residual at all) is not supported")
    status = "linear" if f"{prefix}slot_status.weight" in w else "mean"
    activation = "tanh" if setting(checkpoint, "use_tanh_residual_gate", MEMORY_DEFAULTS) else "sigmoid"
    if f"{prefix}gate.weight" in w:  # nn.Linear over the slot axis
        per_slot = w[f"{prefix}gate.weight"].shape[0] > 1
        kind = "slot-linear"
    elif f"{prefix}gate" in w:  # a parameter: static or elementwise, which only the config tells apart
        per_slot = w[f"{prefix}gate"].dim() == 2
        gate_type = setting(checkpoint, "residual_gate_type", MEMORY_DEFAULTS)
        kind = {"static": "slot-static", "elementwise": "slot-elementwise"}.get(gate_type)
        if kind is None:
            raise CheckpointError(f"{checkpoint.source}: residual_gate_type = {gate_type!r} with a parameter gate")
    else:  # use_gated_residual = false: the plain residual S + U
        return {"gate": "none"}
    return {"gate": kind, "gate_activation": activation, "gate_per_slot": per_slot, "gate_slot_status": status}


def memory_attention_config(checkpoint: RxnnCheckpoint) -> tuple[MemoryAttentionConfig, int, int, int]:
    """-> (config, layers, slots, dim)"""
    w = checkpoint.weights
    norm_type = setting(checkpoint, "norm_type", MEMORY_DEFAULTS)
    if norm_type != "classic-rms":
        raise CheckpointError(f"{checkpoint.source}: norm_type = {norm_type!r}; only 'classic-rms' (RMSNorm) "
                              "memory norms are supported")
    if "model.memory_input_norm_layers.0.weight" not in w:
        raise CheckpointError(f"{checkpoint.source}: an RxTAlphaMemoryAttention from before RxNN 0.2.73 (no "
                              "input norm, gates stacked over layers) is not supported; import without it")
    heads = int(setting(checkpoint, "att_heads", MEMORY_DEFAULTS))
    dim = w["model.memory_input_norm_layers.0.weight"].shape[0]
    variant = memory_variant(checkpoint)
    attention = heads_of(checkpoint, "model.attention_layers.0", dim // heads)
    inter = None
    if variant != "simple":
        inter = heads_of(checkpoint, f"{consult_prefix(variant)}attention_layers.0", dim // heads)
        inter = None if inter == attention else inter
    gates = gate_settings(checkpoint)
    consult_gate = True  # the interlayer variants gate their first write like the second
    if variant == "rxnn-self":  # gated only with use_gate_for_self_attention (off by default)
        consult_gate = has_gate(w, f"{consult_prefix(variant)}residual_gate_layers.0.")
        if consult_gate and gates["gate"] == "none":
            raise CheckpointError(f"{checkpoint.source}: a gated self-attention step with an ungated write "
                                  "(use_gate_for_self_attention without use_gated_residual) is not supported")
    slots = stm_slots(checkpoint)
    config = MemoryAttentionConfig(heads=heads, attention=attention, variant=variant, inter_attention=inter,
                                   consult_gate=consult_gate, token_skip=False, **gates)
    return config, layer_count(w, "model.attention_layers."), slots, dim


def fresh_memory_attention(decoder: DecoderConfig) -> MemoryAttentionConfig:
    """For a decoder + encoder without memory attention: rxmrl's default design, randomly initialised."""
    heads = decoder.heads
    return MemoryAttentionConfig(heads=heads, attention=AttentionConfig(heads, heads), variant="self-interlayer",
                                 token_skip=False)


def build_config(
    decoder: RxnnCheckpoint,
    encoder: RxnnCheckpoint,
    memory: RxnnCheckpoint | None,
    choices: ImportChoices,
) -> RxTConfig:
    decoder_spec, switches = decoder_config(decoder)
    encoder_spec, encoder_reads_norm = encoder_config(encoder)
    if encoder_reads_norm is not None and encoder_reads_norm != switches["memory_read_norm"]:
        raise CheckpointError(f"{encoder.source}: the encoder's memory cross-attention "
                              f"{'has' if encoder_reads_norm else 'lacks'} an STM norm, the decoder's "
                              f"{'lacks' if encoder_reads_norm else 'has'} one; rxmrl has one switch "
                              "(memory_read_norm) for both")
    layers, vocab, dim = stack_shape(decoder)
    if stack_shape(encoder) != (layers, vocab, dim):
        raise CheckpointError(f"{encoder.source}: encoder (layers, vocab, dim) {stack_shape(encoder)} != the "
                              f"decoder's {(layers, vocab, dim)}")
    slots = stm_slots(decoder)
    stm_std = 0.02 if choices.stm_init_std is None else choices.stm_init_std
    if memory is not None:
        memory_spec, memory_layers, memory_slots, memory_dim = memory_attention_config(memory)
        if (memory_layers, memory_slots, memory_dim) != (layers, slots, dim):
            raise CheckpointError(f"{memory.source}: memory attention (layers, stm_size, dim) "
                                  f"{(memory_layers, memory_slots, memory_dim)} != the decoder's "
                                  f"{(layers, slots, dim)}")
    else:
        memory_spec = fresh_memory_attention(decoder_spec)
    return RxTConfig(
        vocab_size=vocab,
        dim=dim,
        max_seq_len=int(setting(decoder, "seq_len", COMPONENT_DEFAULTS)),
        stm=StmConfig(slots=slots, init="normal", init_std=stm_std),
        decoder=decoder_spec,
        encoder=encoder_spec,
        memory_attention=memory_spec,
        name=choices.name,
        attention_out_bias=True,
        ffn_bias=True,
        norm_eps_from_dtype=True,
        causal_memory_cross_attention=choices.causal_memory_cross_attention,
        **switches,
    )
