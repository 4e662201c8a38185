"""Read one RxNN checkpoint: a folder (or Hub repo id) holding `config.json` (the constructor's arguments, as
`PyTorchModelHubMixin` writes them) and `model.safetensors` (or an older `pytorch_model.bin`), and tell which
RxNN class wrote it.

The class is not recorded in the folder, so it is recognised by its tensor names:

    "alpha"             RxTAlpha: decoder.model.*, encoder.model.*, memory_attention.model.* in one folder
    "decoder"           RxTDecoder / RxTAlphaDecoder: model.head.weight
    "encoder"           RxTEncoder / RxTAlphaEncoder: model.layers.* and no head
    "memory-attention"  RxT{Simple,Self,Interlayer,SelfInterlayer}MemoryAttention: model.attention_layers.*
    "mlm-head"          MLMHead: dense.*, layer_norm.*, decoder.*
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from rxmrl.errors import CheckpointError
from rxmrl.model.pretrained import resolve_pretrained_dir

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
LEGACY_WEIGHTS_FILE = "pytorch_model.bin"  # what older huggingface_hub mixins wrote
ALPHA_PARTS = ("decoder", "encoder", "memory_attention")


@dataclass
class RxnnCheckpoint:
    kind: str  # see the module docstring
    config: dict
    weights: dict[str, torch.Tensor]
    source: str  # where it was read from, for messages


def read_checkpoint(name_or_path: str | Path) -> RxnnCheckpoint:
    """A local folder, or a Hub id downloaded with `huggingface_hub.snapshot_download`."""
    from safetensors.torch import load_file

    directory = resolve_pretrained_dir(name_or_path)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    legacy_path = directory / LEGACY_WEIGHTS_FILE
    if not weights_path.is_file() and not legacy_path.is_file():
        raise CheckpointError(f"{name_or_path}: no {WEIGHTS_FILE} (or {LEGACY_WEIGHTS_FILE}); is this an RxNN "
                              "model folder?")
    config = {}
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text())
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{config_path}: invalid JSON: {e}") from None
    if weights_path.is_file():
        weights = load_file(str(weights_path))
    else:  # tensors only: weights_only refuses pickled code
        weights = torch.load(legacy_path, map_location="cpu", weights_only=True)
    return RxnnCheckpoint(checkpoint_kind(weights, str(name_or_path)), config, weights, str(name_or_path))


def checkpoint_kind(weights: dict[str, torch.Tensor], source: str) -> str:
    if any(name.startswith("decoder.model.") for name in weights):
        return "alpha"
    if "model.head.weight" in weights:
        return "decoder"
    if "model.attention_layers.0.q_proj.weight" in weights:
        return "memory-attention"
    if "dense.weight" in weights and "layer_norm.weight" in weights:
        return "mlm-head"
    if "model.layers.0.attention.q_proj.weight" in weights:
        return "encoder"
    if "model.embedding.weight" in weights or any(name.startswith("model.layers.") for name in weights):
        raise CheckpointError(f"{source}: an RxNN model, but not one rxmrl can import (no attention weights "
                              "under the names of RxTDecoder, RxTEncoder or the memory-attention classes)")
    raise CheckpointError(f"{source}: not an RxNN checkpoint (unknown tensor names, e.g. {next(iter(weights), '-')})")


def split_alpha(checkpoint: RxnnCheckpoint) -> dict[str, RxnnCheckpoint]:
    """An RxTAlpha folder -> its decoder, encoder and memory-attention checkpoints.

    RxTAlpha shares one embedding (and one STM buffer) between its parts; safetensors keeps a shared tensor
    under one name only, so the embedding is copied to whichever part lost it.
    """
    parts = {}
    for part, kind in zip(ALPHA_PARTS, ("decoder", "encoder", "memory-attention")):
        prefix = f"{part}."
        weights = {name[len(prefix):]: t for name, t in checkpoint.weights.items() if name.startswith(prefix)}
        parts[part] = RxnnCheckpoint(kind, dict(checkpoint.config.get(f"{part}_config") or {}), weights,
                                     f"{checkpoint.source} ({part})")
    embedding = "model.embedding.weight"
    found = [parts[p].weights[embedding] for p in ("decoder", "encoder") if embedding in parts[p].weights]
    if not found:
        raise CheckpointError(f"{checkpoint.source}: RxTAlpha without a token embedding")
    for part in ("decoder", "encoder"):
        parts[part].weights.setdefault(embedding, found[0])
    memory = [parts[p].weights["model.stm.memory"] for p in ALPHA_PARTS if "model.stm.memory" in parts[p].weights]
    for part in ALPHA_PARTS:  # the STM buffer (dropped) tells the slot count when the config does not
        if memory:
            parts[part].weights.setdefault("model.stm.memory", memory[0])
    variant = checkpoint.config.get("memory_attention_variant", "interlayer")
    parts["memory_attention"].config.setdefault("_variant", variant)
    return parts
