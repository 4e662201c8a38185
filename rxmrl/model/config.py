"""The Reactive Transformer's configuration: dataclasses read strictly from a preset TOML (`policies/*.toml`).

Every stack shares one model width `dim`. An attention's head dim is `dim / heads`, where `heads` is the
stack's *nominal* head count; each attention then says how many query heads and key/value heads it really
uses, which covers MHA (q = kv = heads), GQA (kv < q), MQA (kv = 1) and Sparse Query Attention (q < heads).

Rules that span several fields are checked in `__post_init__`; a broken rule raises `ConfigError` whose
message starts with the key path, and `rxmrl.config.from_dict` adds the file name in front.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rxmrl.errors import ConfigError

STM_INITS = ("zeros", "normal", "uniform", "learned")
MEMORY_ATTENTION_VARIANTS = ("simple", "self", "interlayer", "self-interlayer", "rxnn-self", "rxnn-interlayer",
                             "rxnn-self-interlayer")
GATE_TYPES = ("linear", "elementwise", "static", "tanh", "none", "slot-linear", "slot-elementwise", "slot-static")


@dataclass
class AttentionConfig:
    """Head counts of one attention. Head dim comes from the stack (`dim / heads`)."""

    query_heads: int
    kv_heads: int

    def __post_init__(self) -> None:
        if self.query_heads < 1:
            raise ConfigError(f"query_heads: must be at least 1, got {self.query_heads}")
        if self.kv_heads < 1:
            raise ConfigError(f"kv_heads: must be at least 1, got {self.kv_heads}")
        if self.query_heads % self.kv_heads != 0:
            raise ConfigError(
                f"query_heads: {self.query_heads} query heads cannot be split evenly over {self.kv_heads} "
                f"key/value heads (query_heads must be a multiple of kv_heads)"
            )


@dataclass
class FeedForwardConfig:
    """SwiGLU feed-forward; with `experts > 0` a Mixture-of-Experts of SwiGLU experts of width `hidden`."""

    hidden: int
    experts: int = 0  # 0 = one dense SwiGLU
    top_k: int = 1  # experts each token is sent to (MoE only)
    shared_experts: int = 0  # always-active experts added to the routed ones (MoE only)
    renormalize: bool = True  # rescale the top-k router probabilities to sum to 1

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ConfigError(f"hidden: must be at least 1, got {self.hidden}")
        if self.experts < 0:
            raise ConfigError(f"experts: must be 0 (dense) or more, got {self.experts}")
        if self.experts > 0 and not 1 <= self.top_k <= self.experts:
            raise ConfigError(f"top_k: must be between 1 and experts ({self.experts}), got {self.top_k}")
        if self.shared_experts < 0:
            raise ConfigError(f"shared_experts: must be 0 or more, got {self.shared_experts}")
        if self.experts == 0 and self.shared_experts > 0:
            raise ConfigError("shared_experts: only a Mixture-of-Experts (experts > 0) has shared experts")

    @property
    def is_moe(self) -> bool:
        return self.experts > 0


@dataclass
class DecoderConfig:
    """Generator-decoder: pre-norm self-attention -> memory cross-attention over the STM -> FFN."""

    layers: int
    heads: int
    self_attention: AttentionConfig
    cross_attention: AttentionConfig
    ffn: FeedForwardConfig


@dataclass
class EncoderConfig:
    """Memory encoder: bidirectional self-attention -> (optional memory cross-attention) -> dense FFN."""

    layers: int
    heads: int
    self_attention: AttentionConfig
    ffn: FeedForwardConfig
    cross_attention: AttentionConfig | None = None  # leave out for an encoder that does not read the STM


@dataclass
class MemoryAttentionConfig:
    """The write network: STM slots (queries) attend to the encoded interaction, a residual gate writes."""

    heads: int
    attention: AttentionConfig
    # "rxnn-*": RxNN's variants, whose query step is itself a gated write (see memory_attention_rxnn.py)
    variant: Literal[
        "simple", "self", "interlayer", "self-interlayer", "rxnn-self", "rxnn-interlayer", "rxnn-self-interlayer"
    ] = "simple"
    # "slot-*": RxNN's gates, one value per STM slot computed from the slot's mean (see slot_gates.py)
    gate: Literal[
        "linear", "elementwise", "static", "tanh", "none", "slot-linear", "slot-elementwise", "slot-static"
    ] = "linear"
    gate_bias_init: float = 0.0  # initial gate pre-activation bias: sigmoid(0) = 0.5 writes half at first
    gate_activation: Literal["sigmoid", "tanh"] = "sigmoid"  # slot gates only: tanh writes (1+G)U + (1-G)S
    gate_per_slot: bool = True  # slot gates only: one gate per slot (false: one per STM layer)
    gate_slot_status: Literal["mean", "linear"] = "mean"  # slot gates only: a slot's summary, mean or learned
    # Head counts of the self/interlayer attentions when they differ from `attention` (RxNN sets them apart).
    inter_attention: AttentionConfig | None = None
    # "rxnn-*" only: false makes their first write the plain residual S + A (RxNN's use_gate_for_self_attention).
    consult_gate: bool = True
    # Write from unit(encoder layer output) + unit(token embedding) instead of the layer output alone. An
    # encoder trained as a masked LM drowns each token's identity under context (measured: cosine 0.07-0.20
    # with the token's embedding), and then no memory learns to store names and values; see RxT.encode_interaction.
    token_skip: bool = True

    def __post_init__(self) -> None:
        if self.gate_slot_status == "linear" and self.gate in ("slot-elementwise", "slot-static") \
                and not self.gate_per_slot:
            raise ConfigError("gate_slot_status: a learned ('linear') slot status needs gate_per_slot = true "
                              "(or gate = 'slot-linear')")


@dataclass
class StmConfig:
    """Short-term memory: `layers` x `slots` vectors of width `dim` (both default to the model's)."""

    slots: int
    init: Literal["zeros", "normal", "uniform", "learned"] = "normal"
    init_std: float = 0.02  # std of "normal", and of the starting value of "learned"
    init_range: float = 0.02  # "uniform" draws from [-init_range, init_range]
    layers: int = 0  # 0 = the number of decoder layers
    dim: int = 0  # 0 = the model's dim

    def __post_init__(self) -> None:
        if self.slots < 1:
            raise ConfigError(f"slots: must be at least 1, got {self.slots}")
        if self.init_std < 0 or self.init_range < 0:
            raise ConfigError("init_std/init_range: must not be negative")


@dataclass
class RxTConfig:
    """A whole Reactive Transformer: shared embedding, decoder, encoder, memory attention, STM."""

    vocab_size: int
    dim: int
    max_seq_len: int
    stm: StmConfig
    decoder: DecoderConfig
    encoder: EncoderConfig
    memory_attention: MemoryAttentionConfig
    name: str = "custom"
    rope_base: float = 10000.0
    norm_eps: float = 1e-6
    init_std: float = 0.02  # std of the normal init of every weight matrix and the embedding
    attention_out_bias: bool = True  # the published RxT-Alpha counts imply biases here...
    ffn_bias: bool = True  # ...and on every feed-forward linear
    use_flash_attention: bool = True  # used only when flash-attn is installed and tensors are CUDA fp16/bf16
    # Switches for checkpoints trained elsewhere (RxNN, docs/IMPORT.md); rxmrl's own presets keep the defaults.
    final_norm: bool = True  # false: the LM head reads the last decoder layer's output unnormalised
    final_norm_kind: Literal["rms", "layer"] = "rms"  # "layer": a LayerNorm with bias (eps 1e-5), RxNN's head norm
    lm_head_bias: bool = False  # true: the LM head adds a bias
    memory_read_norm: bool = True  # false: memory cross-attention reads the memory without RMS-normalising it
    causal_memory_cross_attention: bool = False  # true: token at position p reads memory slots 0..p only
    norm_eps_from_dtype: bool = False  # true: every RMSNorm uses the dtype's machine epsilon, not norm_eps

    def __post_init__(self) -> None:
        for key, value in (("vocab_size", self.vocab_size), ("dim", self.dim), ("max_seq_len", self.max_seq_len)):
            if value < 1:
                raise ConfigError(f"{key}: must be at least 1, got {value}")
        self._check_heads("decoder", self.decoder.heads, [self.decoder.self_attention, self.decoder.cross_attention])
        encoder_attentions = [self.encoder.self_attention]
        if self.encoder.cross_attention is not None:
            encoder_attentions.append(self.encoder.cross_attention)
        self._check_heads("encoder", self.encoder.heads, encoder_attentions)
        memory_attentions = [self.memory_attention.attention]
        if self.memory_attention.inter_attention is not None:
            memory_attentions.append(self.memory_attention.inter_attention)
        self._check_heads("memory_attention", self.memory_attention.heads, memory_attentions)
        if self.encoder.ffn.is_moe:
            raise ConfigError("encoder.ffn.experts: the memory encoder uses a dense feed-forward; set experts = 0")
        if self.encoder.layers != self.decoder.layers:
            raise ConfigError(
                f"encoder.layers: must equal decoder.layers ({self.decoder.layers}), got {self.encoder.layers}: "
                "the encoder's layer-l output writes STM layer l, which decoder layer l reads"
            )
        if self.decoder.layers < 1:
            raise ConfigError(f"decoder.layers: must be at least 1, got {self.decoder.layers}")
        if self.stm.layers == 0:
            self.stm.layers = self.decoder.layers
        elif self.stm.layers != self.decoder.layers:
            raise ConfigError(f"stm.layers: must equal decoder.layers ({self.decoder.layers}), got {self.stm.layers}")
        if self.stm.dim == 0:
            self.stm.dim = self.dim
        elif self.stm.dim != self.dim:
            raise ConfigError(f"stm.dim: must equal dim ({self.dim}), got {self.stm.dim}")

    def _check_heads(self, stack: str, heads: int, attentions: list[AttentionConfig]) -> None:
        if heads < 1 or self.dim % heads != 0:
            raise ConfigError(f"{stack}.heads: dim {self.dim} must be divisible by heads, got {heads}")
        if (self.dim // heads) % 2 != 0:
            raise ConfigError(
                f"{stack}.heads: head dim {self.dim}/{heads} = {self.dim // heads} must be even for rotary positions"
            )
        for attention in attentions:
            if attention.query_heads > heads or attention.kv_heads > heads:
                raise ConfigError(
                    f"{stack}.heads: an attention uses {attention.query_heads} query / {attention.kv_heads} "
                    f"key-value heads, more than the nominal {heads}"
                )

    @property
    def head_dim(self) -> int:
        """Decoder head dim (dim / decoder.heads)."""
        return self.dim // self.decoder.heads


__all__ = [
    "GATE_TYPES",
    "MEMORY_ATTENTION_VARIANTS",
    "STM_INITS",
    "AttentionConfig",
    "DecoderConfig",
    "EncoderConfig",
    "FeedForwardConfig",
    "MemoryAttentionConfig",
    "RxTConfig",
    "StmConfig",
]
