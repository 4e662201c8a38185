"""Settings of one supervised warm-start stage: a `[[warmstart]]` table of a curriculum, or a standalone file.

A curriculum supplies the model and tokenizer, so `WarmStartConfig` holds only the stage's own settings.
A standalone stage file (`rxmrl warmstart STAGE --config FILE`) is a `StandaloneWarmStartConfig`: the same keys
plus `model` (preset name or trained folder) and `tokenizer` (file, or trained from the data).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from rxmrl.data.episode import STRATEGIES
from rxmrl.data.episode_source import EpisodeSource, check_counts
from rxmrl.errors import ConfigError
from rxmrl.train.warmstart.loop import LoopConfig

STAGES = ("joint-lm", "sft", "memory-attention", "smat")
Stage = Literal["joint-lm", "sft", "memory-attention", "smat"]


@dataclass
class WarmStartData(EpisodeSource):
    """Where a stage's examples come from, and how long their token sequences may be: the keys of
    `rxmrl.data.episode_source.EpisodeSource` (its token limits apply to the memory stages) and the ones below.

    joint-lm reads plain stories (`text` rows), sft single query/answer pairs, the memory stages episodes.
    `source = "synthetic"` generates them in memory (no files, no network) from `seed`.
    """

    max_answer_len: int = 96  # the warm start's own default (an MRL stage's is 48)
    examples: int = 2000  # synthetic: training items generated; a real source: at most this many (0 = all)
    eval_examples: int = 64  # held-out items evaluated
    steps: int = 3  # synthetic episodes: follow-ups per episode
    strategy: str = "cumulative"  # synthetic episodes: "single", "cumulative" or "long_range"
    seed: int = 0  # synthetic: which examples are generated (independent of the training seed)
    max_len: int = 128  # joint-lm / sft: tokens per story or interaction (0 = the model's max_seq_len)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_counts(self, "examples", "eval_examples")
        if self.max_len < 0:
            raise ConfigError(f"max_len: must not be negative, got {self.max_len}")
        if self.steps < 1:
            raise ConfigError(f"steps: must be at least 1, got {self.steps}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy: must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.source == "synthetic" and (self.strategy == "single") != (self.steps == 1):
            raise ConfigError(f"steps: strategy '{self.strategy}' needs "
                              f"{'exactly 1 follow-up' if self.strategy == 'single' else '2 or more follow-ups'}, "
                              f"got {self.steps}")


@dataclass
class WarmStartConfig:
    stage: Stage
    steps: int  # optimizer steps
    batch_size: int = 16
    lr: float = 3e-4
    # --- the shared loop ---
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_ratio: float = 0.05  # fraction of `steps` spent warming the learning rate up
    min_lr_ratio: float = 0.1  # the cosine decays to lr * min_lr_ratio
    grad_accum: int = 1
    max_grad_norm: float = 1.0  # 0 = no clipping
    log_every: int = 10
    eval_every: int = 0  # 0 = only at the end
    save_every: int = 100  # 0 = only the final folder
    keep: int = 2
    max_seconds: float = 0.0  # stop after this many CPU seconds of training (0 = run all `steps`); not reproducible
    aux_loss_weight: float = 0.01  # MoE load-balancing loss added to the decoder's loss
    # --- joint-lm and sft ---
    mlm_probability: float = 0.15  # share of real, non-special tokens the encoder predicts
    mlm_weight: float = 1.0  # loss = decoder LM + mlm_weight * encoder MLM
    memory_noise: float = 0.0  # noise on the (detached) encoder outputs the decoder reads (std relative to their RMS)
    # sft: a joint-lm stage folder to take the MLM head from; "none"; or "auto": the curriculum's earlier joint-lm or
    # sft stage, or (standalone) the `model` folder when it is such a stage's final/ (never any other folder)
    mlm_head_from: str = "auto"
    # --- memory-attention (self-supervised) ---
    first_new_data_weight: float = 0.9  # share of the new interaction in the first step's target
    new_data_weight: float = 0.5  # share of the new interaction in the second step's target...
    new_data_weight_decay: float = 0.05  # ...minus this much for every further step...
    min_new_data_weight: float = 0.05  # ...but never below this
    weight_jitter: float = 0.05  # each target's weight moves by up to +/- this much at random
    target_noise: float = 0.0  # std of noise added to the target (relative to its RMS)
    stm_noise: float = 0.0  # std of noise added to the STM the write starts from (relative to its RMS)
    target_temperature: float = 0.1  # sharpness of the slot-query pooling that builds the target (lower = sharper)
    centre_weight: float = 0.5  # share of the loss on slot-centred vectors (what tells the slots apart)
    # --- smat ---
    bptt_depth: int = 1  # memory updates each answer's loss backpropagates through (1 = the latest only)
    unfreeze_memory_attention_at: float = 0.1  # fraction of `steps` trained with memory attention frozen
    unfreeze_encoder_at: float = 0.2  # fraction of `steps` trained with the encoder (and embedding) frozen
    fact_weight: float = 1.0  # loss weight of answer tokens that spell a synthetic fact value (1 = plain mean)
    train_decoder: bool = True  # false: the decoder (its memory cross-attention too) stays frozen; the memory learns
    data: WarmStartData = field(default_factory=WarmStartData)

    def __post_init__(self) -> None:
        positive = {"steps": self.steps, "batch_size": self.batch_size, "grad_accum": self.grad_accum,
                    "bptt_depth": self.bptt_depth}
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key}: must be at least 1, got {value}")
        if not self.lr > 0:
            raise ConfigError(f"lr: must be positive, got {self.lr}")
        fractions = ("warmup_ratio", "min_lr_ratio", "mlm_probability", "first_new_data_weight", "new_data_weight",
                     "min_new_data_weight", "unfreeze_memory_attention_at", "unfreeze_encoder_at", "centre_weight")
        for key in fractions:
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"{key}: must be between 0 and 1, got {getattr(self, key)}")
        if self.stage in ("joint-lm", "sft") and self.mlm_probability == 0.0:
            raise ConfigError("mlm_probability: must be above 0 (the encoder learns from the masked tokens)")
        non_negative = ("weight_decay", "max_grad_norm", "log_every", "eval_every", "save_every", "keep", "max_seconds",
                        "aux_loss_weight", "mlm_weight", "memory_noise", "fact_weight", "new_data_weight_decay",
                        "weight_jitter", "target_noise", "stm_noise")
        for key in non_negative:
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must not be negative, got {getattr(self, key)}")
        if not self.target_temperature > 0:
            raise ConfigError(f"target_temperature: must be positive, got {self.target_temperature}")
        if self.unfreeze_encoder_at < self.unfreeze_memory_attention_at:
            raise ConfigError(
                f"unfreeze_encoder_at: the encoder unfreezes after memory attention (decoder first, then memory "
                f"attention, then encoder); got {self.unfreeze_encoder_at} < "
                f"unfreeze_memory_attention_at = {self.unfreeze_memory_attention_at}"
            )

        if not self.train_decoder:
            if self.stage != "smat":
                raise ConfigError(f"train_decoder: only the smat stage can keep its decoder frozen, not {self.stage}")
            if self.unfreeze_memory_attention_at >= 1.0:
                raise ConfigError("train_decoder: with the decoder and memory attention frozen (unfreeze_memory_"
                                  "attention_at = 1) the memory path has nothing to learn")

    def loop_config(self) -> LoopConfig:
        return LoopConfig(
            steps=self.steps, lr=self.lr, weight_decay=self.weight_decay, betas=self.betas,
            warmup_steps=round(self.warmup_ratio * self.steps), min_lr_ratio=self.min_lr_ratio,
            grad_accum=self.grad_accum, max_grad_norm=self.max_grad_norm, log_every=self.log_every,
            eval_every=self.eval_every, save_every=self.save_every, keep=self.keep, max_seconds=self.max_seconds,
        )


@dataclass
class StandaloneWarmStartConfig(WarmStartConfig):
    """A stage run on its own: what `WarmStartConfig` holds, plus which model and tokenizer to start from."""

    model: str = "rxt-cpu-small"  # a preset name or file (fresh weights), or a trained folder (e.g. .../final)
    model_set: list[str] = field(default_factory=list)  # preset overrides, e.g. ["decoder.layers=2"]
    tokenizer: str | None = None  # tokenizer.json (or a folder with one); None = the model folder's, else trained
    tokenizer_vocab_size: int = 0  # when training a tokenizer: its size (0 = the preset's vocab_size)

    def warmstart(self) -> WarmStartConfig:
        """The stage settings alone, as a curriculum would hold them."""
        return WarmStartConfig(**{f.name: getattr(self, f.name) for f in fields(WarmStartConfig)})
