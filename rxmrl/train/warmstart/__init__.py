"""The four supervised warm-start stages of the RxT recipe, run by one shared loop.

    joint-lm          encoder MLM + decoder LM reading the encoder's outputs        (`joint_lm.py`)
    sft               the same on [Q] query [A] answer interactions                 (`sft.py`)
    memory-attention  self-supervised memory-attention pre-training                 (`memory_self_supervised.py`)
    smat              supervised memory-aware training                              (`smat.py`)

`run_warmstart` is what a curriculum's `[[warmstart]]` table runs and what `rxmrl warmstart STAGE` calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rxmrl.train.warmstart.config import STAGES, StandaloneWarmStartConfig, WarmStartConfig, WarmStartData

__all__ = ["STAGES", "StandaloneWarmStartConfig", "WarmStartConfig", "WarmStartData", "build_stage", "run_warmstart"]

# Held-out batches: the held-out set is small, so a fixed size keeps evaluation cost predictable.
EVAL_BATCH_SIZE = 32


def run_warmstart(config: WarmStartConfig, model: Any, tokenizer: Any, out_dir: str | Path, *, seed: int,
                  tracker: Any = None, device: str = "cpu", progress: bool = True,
                  mlm_head_sources: Sequence[Path] = ()) -> dict[str, float]:
    """Train `model` in place with one stage; return its final held-out metrics.

    Checkpoints go under `out_dir/checkpoints/`; a run resumes from the latest one; `out_dir/final/` is written
    at the end, and when it exists already its weights are loaded into `model` and its metrics returned
    without training. Metrics: `loss`, `accuracy` (decoder answer/next-token accuracy), `perplexity`, and for
    memory stages `accuracy_real_stm`, `accuracy_reset_stm`, `accuracy_gap` (and the `fact_` variants).
    With an outside `tracker`, metric names are prefixed `warmstart/<stage>/`. `mlm_head_sources`: the
    folders sft's `mlm_head_from = "auto"` may take the MLM head from (see `sft.find_mlm_head`).
    """
    from rxmrl.train.warmstart.data import tokenized_examples
    from rxmrl.train.warmstart.loop import finished_metrics, train

    out_dir = Path(out_dir)
    done = finished_metrics(out_dir, model)
    if done is not None:
        return done
    _check_tokenizer_fits(tokenizer, model)
    model.to(device)
    max_len = model.config.max_seq_len
    train_set = tokenized_examples(config.stage, config.data, tokenizer, max_len, held_out=False)
    eval_set = tokenized_examples(config.stage, config.data, tokenizer, max_len, held_out=True)
    stage = build_stage(config, model, tokenizer, mlm_head_sources)
    return train(
        stage, model=model, tokenizer=tokenizer, train_batch=train_set.stream(config.batch_size, seed),
        eval_batches=eval_set.in_order(EVAL_BATCH_SIZE), config=config.loop_config(), out_dir=out_dir, seed=seed,
        tracker=tracker, metric_prefix=f"warmstart/{config.stage}/" if tracker is not None else "",
        device=device, progress=progress,
    )


def build_stage(config: WarmStartConfig, model: Any, tokenizer: Any, mlm_head_sources: Sequence[Path] = ()) -> Any:
    """The stage object for `config.stage` (the MLM head of sft is taken from an earlier stage when found)."""
    if config.stage in ("joint-lm", "sft"):
        from rxmrl.train.warmstart.joint_lm import JointLMStage
        from rxmrl.train.warmstart.sft import find_mlm_head, load_mlm_head, new_mlm_head

        head = new_mlm_head(model)
        if config.stage == "sft":
            source = find_mlm_head(config.mlm_head_from, mlm_head_sources)
            if source is not None:
                load_mlm_head(head, source)
        return JointLMStage(model, head, tokenizer, name=config.stage, mlm_probability=config.mlm_probability,
                            mlm_weight=config.mlm_weight, memory_noise=config.memory_noise,
                            aux_loss_weight=config.aux_loss_weight)
    if config.stage == "memory-attention":
        from rxmrl.train.warmstart.memory_self_supervised import MemorySelfSupervisedStage

        return MemorySelfSupervisedStage(
            model, tokenizer, first_new_data_weight=config.first_new_data_weight,
            new_data_weight=config.new_data_weight, new_data_weight_decay=config.new_data_weight_decay,
            min_new_data_weight=config.min_new_data_weight, weight_jitter=config.weight_jitter,
            target_noise=config.target_noise, stm_noise=config.stm_noise,
            target_temperature=config.target_temperature, centre_weight=config.centre_weight,
        )
    from rxmrl.train.warmstart.smat import SmatStage

    return SmatStage(model, tokenizer, steps=config.steps, bptt_depth=config.bptt_depth,
                     unfreeze_memory_attention_at=config.unfreeze_memory_attention_at,
                     unfreeze_encoder_at=config.unfreeze_encoder_at, aux_loss_weight=config.aux_loss_weight,
                     fact_weight=config.fact_weight, train_decoder=config.train_decoder)


def _check_tokenizer_fits(tokenizer: Any, model: Any) -> None:
    from rxmrl.errors import ConfigError

    if tokenizer.vocab_size > model.config.vocab_size:
        raise ConfigError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model's vocab_size is "
                          f"{model.config.vocab_size}; train a smaller tokenizer or raise vocab_size")
