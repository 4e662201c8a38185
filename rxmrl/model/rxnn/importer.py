"""`import_rxnn`: RxNN checkpoints (decoder + encoder [+ memory attention], or one RxTAlpha) -> an RxT whose
outputs equal RxNN's on the same inputs (tests/test_model_rxnn_import.py checks them within 1e-5).

The encoder and decoder of an RxT share one token embedding; RxNN trains them sharing it too, so two copies
that differ mean the checkpoints were not trained together, and the import refuses rather than pick one.
Without a memory-attention checkpoint the memory attention is rxmrl's default design, freshly initialised
(from `seed`), for a run that trains it from scratch.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from rxmrl.data.tokenizer import Tokenizer
from rxmrl.errors import CheckpointError
from rxmrl.model.pretrained import check_state_matches
from rxmrl.model.rxnn.checkpoint import RxnnCheckpoint, read_checkpoint, split_alpha
from rxmrl.model.rxnn.config_map import ImportChoices, build_config
from rxmrl.model.rxnn.weights import convert
from rxmrl.model.rxt import RxT

EXPECTED = {"decoder": "a decoder (RxTDecoder) or an RxTAlpha", "encoder": "an encoder (RxTEncoder)",
            "memory-attention": "a memory attention (RxT...MemoryAttention)"}


def expect(checkpoint: RxnnCheckpoint, kind: str, option: str) -> RxnnCheckpoint:
    if checkpoint.kind == kind or (kind == "decoder" and checkpoint.kind == "alpha"):
        return checkpoint
    found = {"mlm-head": "an MLMHead (a training-only head; rxmrl's MLM head differs and is not imported)",
             "alpha": "an RxTAlpha (pass it as --decoder alone)"}.get(checkpoint.kind, f"a {checkpoint.kind}")
    raise CheckpointError(f"{option} {checkpoint.source}: expected {EXPECTED[kind]}, found {found}")


def import_rxnn(
    decoder: str | Path,
    encoder: str | Path | None = None,
    memory_attention: str | Path | None = None,
    choices: ImportChoices | None = None,
    seed: int = 0,
    tokenizer: Tokenizer | None = None,
) -> RxT:
    """`tokenizer`, when given, must place [BOS] [EOS] [Q] [A] where an RxTAlpha's tokenizer_config says."""
    choices = choices or ImportChoices()
    first = expect(read_checkpoint(decoder), "decoder", "--decoder")
    if first.kind == "alpha":
        if encoder is not None or memory_attention is not None:
            raise CheckpointError(f"--decoder {first.source} is an RxTAlpha, which holds encoder and memory "
                                  "attention too: drop --encoder / --memory-attention")
        if tokenizer is not None:
            check_special_ids(tokenizer, first)
        parts = split_alpha(first)
        decoder_ckpt, encoder_ckpt, memory_ckpt = parts["decoder"], parts["encoder"], parts["memory_attention"]
        if choices.stm_init_std is None:
            choices = replace(choices, stm_init_std=1.0)  # RxTAlpha's inference mode draws N(0, 1)
    else:
        if encoder is None:
            raise CheckpointError(f"--decoder {first.source} is a decoder alone: pass its --encoder too")
        decoder_ckpt = first
        encoder_ckpt = expect(read_checkpoint(encoder), "encoder", "--encoder")
        memory_ckpt = None
        if memory_attention is not None:
            memory_ckpt = expect(read_checkpoint(memory_attention), "memory-attention", "--memory-attention")
    check_shared_embedding(decoder_ckpt, encoder_ckpt)
    config = build_config(decoder_ckpt, encoder_ckpt, memory_ckpt, choices)
    torch.manual_seed(seed)
    model = RxT(config)
    state = convert(config, decoder_ckpt, encoder_ckpt, memory_ckpt)
    if memory_ckpt is None:
        state.update({n: t for n, t in model.state_dict().items() if n.startswith("memory_attention.")})
    check_state_matches(model.state_dict(), state, Path(str(decoder)))
    model.load_state_dict(state, strict=True)
    return model


def check_special_ids(tokenizer: Tokenizer, alpha: RxnnCheckpoint) -> None:
    expected = alpha.config.get("tokenizer_config") or {}
    found = {"bos_token_id": tokenizer.bos_id, "eos_token_id": tokenizer.eos_id,
             "query_token_id": tokenizer.q_id, "answer_token_id": tokenizer.a_id}
    wrong = [f"{key} {found[key]} (the model's {expected[key]})" for key in found
             if key in expected and expected[key] != found[key]]
    if wrong:
        raise CheckpointError(f"--tokenizer: not the tokenizer {alpha.source} was trained with: " + ", ".join(wrong))


def check_shared_embedding(decoder: RxnnCheckpoint, encoder: RxnnCheckpoint) -> None:
    name = "model.embedding.weight"
    ours, theirs = decoder.weights.get(name), encoder.weights.get(name)
    if ours is None or theirs is None:
        raise CheckpointError(f"{decoder.source if ours is None else encoder.source}: no token embedding ({name})")
    if ours.shape != theirs.shape or not torch.equal(ours, theirs):
        raise CheckpointError(f"the decoder ({decoder.source}) and encoder ({encoder.source}) have different "
                              "token embeddings; an RxT shares one, so these were not trained together")
