"""The Reactive Transformer (RxT, arXiv 2510.03561): one interaction is one event.

    answer  = Decoder(query, reading STM_{t-1} through memory cross-attention)      (generate)
    ED_t    = Encoder(query + answer) (+ token embeddings)                          (encode_interaction)
    STM_t   = MemoryAttention(STM_{t-1}, ED_t) with a residual gate                 (memory_attention)

The STM is a value, [B, L, S, D], passed in and returned; the model holds no conversation state. Token
embedding is shared by encoder and decoder; the decoder's LM head is a separate matrix.

Parameter groups a trainer unfreezes separately: `embedding`, `decoder`, `encoder`, `memory_attention`,
and `decoder_memory_cross_attention_parameters()` (the decoder's read path into the STM).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rxmrl.errors import DataError
from rxmrl.model.config import RxTConfig
from rxmrl.model.decoder import Decoder, DecoderOutput, MemoryKV
from rxmrl.model.encoder import Encoder
from rxmrl.model.gates import ResidualGate
from rxmrl.model.generation import Generation, generate
from rxmrl.model.kv_cache import KVCache
from rxmrl.model.memory_attention import MemoryAttention
from rxmrl.model.moe import MixtureOfExperts
from rxmrl.model.norm import unit_rms
from rxmrl.model.params import parameter_counts
from rxmrl.model.pretrained import load_pretrained, push_to_hub, save_pretrained
from rxmrl.model.scoring import AnswerScores, answer_logprobs
from rxmrl.model.slot_gates import SlotGate
from rxmrl.model.stm import StmInitializer


class RxT(nn.Module):
    def __init__(self, config: RxTConfig) -> None:
        super().__init__()
        if torch.empty(0).device.type != "meta":  # real weights: refuse sizes that cannot be allocated
            from rxmrl.model.memory_check import check_fits_in_memory

            check_fits_in_memory(config)
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.dim)
        self.decoder = Decoder(config)
        self.encoder = Encoder(config)
        self.memory_attention = MemoryAttention(config)
        self.stm_init = StmInitializer(config.stm)
        self._init_weights()

    def _init_weights(self) -> None:
        """N(0, init_std^2) for every matrix and the embedding, zero biases; gates keep their own init."""
        std = self.config.init_std
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, MixtureOfExperts):
                nn.init.normal_(module.gate_up_weight, std=std)
                nn.init.normal_(module.down_weight, std=std)
                for bias in (module.gate_up_bias, module.down_bias):
                    if bias is not None:
                        nn.init.zeros_(bias)
        for module in self.modules():
            if isinstance(module, (ResidualGate, SlotGate)):
                module.reset_parameters()

    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embedding.weight.dtype

    # ----- memory -------------------------------------------------------------------------------------

    def initial_stm(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A fresh memory [B, L, S, D] drawn from the configured initial distribution."""
        return self.stm_init.initial(batch, generator=generator, device=self.device, dtype=self.dtype)

    def reset_stm(self, stm: torch.Tensor, reset: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """stm [B, L, S, D], reset [B] bool -> stm whose `reset` rows are fresh initial memories."""
        return self.stm_init.reset(stm, reset, generator=generator)

    def encode(self, tokens: torch.Tensor, mask: torch.Tensor | None, stm: torch.Tensor | None = None) -> torch.Tensor:
        """tokens/mask [B, T] -> per-layer encoder outputs [B, L, T, D] (stm is read only by an encoder
        with memory cross-attention)."""
        return self._encoder_layers(self.embedding(tokens), mask, stm)

    def _encoder_layers(self, embedded: torch.Tensor, mask: torch.Tensor | None,
                        stm: torch.Tensor | None) -> torch.Tensor:
        """embedded [B, T, D] -> per-layer encoder outputs [B, L, T, D]"""
        return self.encoder(embedded, mask, stm if self.encoder.reads_memory else None)

    def encode_interaction(self, tokens: torch.Tensor, mask: torch.Tensor | None,
                           stm: torch.Tensor | None = None) -> torch.Tensor:
        """tokens/mask [B, T] -> ED_t [B, L, T, D], what memory attention writes from: the encoder's layer
        outputs, or with `memory_attention.token_skip` unit(layer output) + unit(token embedding), so the
        memory can store which token was said whatever the encoder's pre-training did to it."""
        embedded = self.embedding(tokens)
        layers = self._encoder_layers(embedded, mask, stm)
        if not self.config.memory_attention.token_skip:
            return layers
        return unit_rms(layers) + unit_rms(embedded)[:, None]

    def update_memory(self, stm: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """stm [B, L, S, D], one interaction tokens/mask [B, T] ([BOS][Q] q [A] a [EOS]) -> new stm."""
        return self.memory_attention(stm, self.encode_interaction(tokens, mask, stm), mask)

    def memory_kv(self, memory: torch.Tensor, memory_mask: torch.Tensor | None = None) -> MemoryKV:
        """memory [B, L, M, D] (the STM, or encoder outputs in joint pre-training), memory_mask [B, M]."""
        return self.decoder.memory_kv(memory, memory_mask)

    # ----- decoding -----------------------------------------------------------------------------------

    def new_cache(self, batch: int, capacity: int) -> KVCache:
        spec = self.config.decoder
        return KVCache(
            spec.layers,
            batch,
            spec.self_attention.kv_heads,
            self.config.dim // spec.heads,
            capacity,
            dtype=self.dtype,
            device=self.device,
        )

    def decode(
        self,
        tokens: torch.Tensor,
        mkv: MemoryKV,
        mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        positions: torch.Tensor | None = None,
    ) -> DecoderOutput:
        """tokens [B, T], mask [B, T] (True = real) -> DecoderOutput (logits [B, T, V], hidden [B, T, D]).

        Causal. With `cache` (from `new_cache`) the tokens continue the cached sequence and are appended.
        """
        hidden, aux = self.decoder(self.embedding(tokens), mkv, mask, cache, positions)
        return DecoderOutput(self.decoder.lm_head(hidden), cache, aux, hidden)

    def generate(self, query: torch.Tensor, query_mask: torch.Tensor, stm: torch.Tensor, **kwargs: Any) -> Generation:
        """See `rxmrl.model.generation.generate` for the keyword arguments."""
        return generate(self, query, query_mask, stm, **kwargs)

    def answer_logprobs(
        self,
        query: torch.Tensor,
        query_mask: torch.Tensor,
        answer: torch.Tensor,
        answer_mask: torch.Tensor,
        stm: torch.Tensor,
        return_logits: bool = False,
    ) -> AnswerScores:
        return answer_logprobs(self, query, query_mask, answer, answer_mask, stm, return_logits=return_logits)

    @torch.no_grad()
    def interact(
        self,
        tokenizer: Any,
        query_text: str,
        stm: torch.Tensor,
        stream: Callable[[str], None] | None = None,
        **options: Any,
    ) -> tuple[str, torch.Tensor]:
        """Answer one query from memory, streaming text pieces to `stream`, then write the interaction
        (query + generated answer) into memory. stm [1, L, S, D] -> (answer text, new stm [1, L, S, D])."""
        ids = tokenizer.encode_query(query_text)
        if max(ids) >= self.config.vocab_size:
            raise DataError(f"token id {max(ids)} is outside the model's vocabulary of {self.config.vocab_size}")
        if len(ids) >= self.config.max_seq_len:
            raise DataError(
                f"query is {len(ids)} tokens; the model takes at most {self.config.max_seq_len - 1} plus the answer"
            )
        query = torch.tensor([ids], dtype=torch.long, device=self.device)
        answer_ids: list[int] = []
        shown = ""

        def on_token(token: torch.Tensor) -> None:
            nonlocal shown
            token_id = int(token[0])
            if token_id in (tokenizer.eos_id, tokenizer.pad_id):
                return
            answer_ids.append(token_id)
            if stream is not None:
                text = tokenizer.decode(answer_ids)
                # BPE pieces may change the text before them; only emit once the prefix is stable.
                if text.startswith(shown) and len(text) > len(shown):
                    stream(text[len(shown) :])
                    shown = text

        options.setdefault("eos_id", tokenizer.eos_id)
        options.setdefault("pad_id", tokenizer.pad_id)
        self.generate(query, torch.ones_like(query, dtype=torch.bool), stm, on_token=on_token, **options)
        answer = tokenizer.decode(answer_ids)
        if stream is not None and answer.startswith(shown) and len(answer) > len(shown):
            stream(answer[len(shown) :])
        interaction = tokenizer.encode_interaction(query_text, answer, max_len=self.config.max_seq_len)
        tokens = torch.tensor([interaction], dtype=torch.long, device=self.device)
        return answer, self.update_memory(stm, tokens, torch.ones_like(tokens, dtype=torch.bool))

    # ----- parameters and files -----------------------------------------------------------------------

    def decoder_memory_cross_attention_parameters(self) -> Iterator[nn.Parameter]:
        """The decoder's memory cross-attention sublayers (their norms included)."""
        for layer in self.decoder.layers:
            yield from layer.cross_norm.parameters()
            yield from layer.cross_attention.parameters()

    def parameter_counts(self) -> dict:
        return parameter_counts(self)

    def save_pretrained(self, directory: str | Path, write_extra: Callable[[Path], None] | None = None, *,
                        overwrite: bool = False) -> Path:
        return save_pretrained(self, directory, write_extra, overwrite=overwrite)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, *, revision: str | None = None, device: str | torch.device = "cpu"
    ) -> RxT:
        return load_pretrained(cls, name_or_path, revision=revision, device=device)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        return push_to_hub(self, repo_id, **kwargs)
