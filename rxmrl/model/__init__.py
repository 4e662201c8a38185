"""The Reactive Transformer model: config, presets, the model, generation, scoring and save/load.

    from rxmrl.model import RxT, load_preset
    model = RxT(load_preset("rxt-tiny"))
"""

from rxmrl.model.config import (
    AttentionConfig,
    DecoderConfig,
    EncoderConfig,
    FeedForwardConfig,
    MemoryAttentionConfig,
    RxTConfig,
    StmConfig,
)
from rxmrl.model.decoder import DecoderOutput, MemoryKV
from rxmrl.model.generation import Generation
from rxmrl.model.kv_cache import KVCache
from rxmrl.model.presets import available_presets, load_preset
from rxmrl.model.rxt import RxT
from rxmrl.model.scoring import AnswerScores

__all__ = [
    "AnswerScores",
    "AttentionConfig",
    "DecoderConfig",
    "DecoderOutput",
    "EncoderConfig",
    "FeedForwardConfig",
    "Generation",
    "KVCache",
    "MemoryAttentionConfig",
    "MemoryKV",
    "RxT",
    "RxTConfig",
    "StmConfig",
    "available_presets",
    "load_preset",
]
