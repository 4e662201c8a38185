"""Train the stateless baseline with TRL's `SFTTrainer` on episodes rendered as full-history conversations.

The rows are built here as token ids with their labels (`rxmrl.baseline.render.sft_example`), so TRL
takes them as an already-processed dataset (`input_ids` + `labels`: no re-tokenizing, no truncation by TRL)
and only pads, batches and optimises. Offline: `report_to="none"`, nothing is saved by the trainer itself
(the folder is written once at the end, atomically, by `save_baseline`).
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rxmrl.baseline.model import (
    build_stateless_model,
    count_parameters,
    require_transformers,
    rxt_decoder_active_parameters,
    save_baseline,
    stateless_config,
)
from rxmrl.baseline.render import LOSS_ON, sft_example
from rxmrl.baseline.tokenizer import to_hf_tokenizer
from rxmrl.data.episode import Episode
from rxmrl.errors import ConfigError, DataError


@dataclass
class BaselineTraining:
    """How the baseline is trained (AdamW with a cosine schedule after a linear warm-up)."""

    steps: int = 200
    batch_size: int = 8
    learning_rate: float = 1e-3
    warmup_steps: int = 10
    weight_decay: float = 0.0
    loss_on: str = "follow_ups"  # see rxmrl.baseline.render
    context_len: int | None = None  # tokens the baseline reads at once (default: 9 RxT messages)
    max_message_len: int | None = None  # tokens per interaction (default: the RxT's max_seq_len)
    seed: int = 0
    logging_steps: int = 10

    def check(self) -> None:
        for name in ("steps", "batch_size", "logging_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate: must be positive, got {self.learning_rate}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps: must be 0 or more, got {self.warmup_steps}")
        if self.loss_on not in LOSS_ON:
            raise ConfigError(f"loss_on: must be one of {', '.join(LOSS_ON)}, got {self.loss_on!r}")


def build_sft_rows(episodes: list[Episode], tokenizer: Any, *, loss_on: str, max_message_len: int,
                   context_len: int) -> tuple[list[dict[str, list[int]]], int]:
    """-> (rows with input_ids/labels, number of episodes left out because no trained answer fit)."""
    rows = [sft_example(tokenizer, e, loss_on=loss_on, max_message_len=max_message_len, context_len=context_len)
            for e in episodes]
    kept = [r for r in rows if r is not None]
    return kept, len(rows) - len(kept)


def train_baseline(episodes: list[Episode], tokenizer: Any, rxt_config: Any, out_dir: str | Path,
                   settings: BaselineTraining, *, matched_to: dict[str, Any] | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """Build a baseline sized like `rxt_config`'s decoder, SFT it on `episodes`, write it to `out_dir`.

    Returns the summary also stored in the folder's `rxmrl_baseline.json`.
    """
    settings.check()
    transformers = require_transformers()
    try:
        import datasets
        import trl
    except ImportError:
        raise ConfigError("training the baseline needs `trl` and `datasets`: pip install 'rxmrl[baseline]'") from None
    if tokenizer.vocab_size > rxt_config.vocab_size:
        raise ConfigError(f"the tokenizer has {tokenizer.vocab_size} tokens but the matched model only "
                          f"{rxt_config.vocab_size}; match a model built for this tokenizer")
    max_message_len = settings.max_message_len or rxt_config.max_seq_len
    llama_config = stateless_config(rxt_config, context_len=settings.context_len)
    context_len = llama_config.max_position_embeddings
    if max_message_len > context_len:
        raise ConfigError(f"max_message_len {max_message_len} exceeds the context length {context_len}")

    rows, left_out = build_sft_rows(list(episodes), tokenizer, loss_on=settings.loss_on,
                                    max_message_len=max_message_len, context_len=context_len)
    if not rows:
        raise DataError(f"none of the {len(episodes)} episodes has a trained answer within {context_len} tokens")
    random.Random(settings.seed).shuffle(rows)  # TRL's sampler shuffles too; this fixes the dataset's own order
    dataset = datasets.Dataset.from_list(rows)

    model = build_stateless_model(llama_config, settings.seed)
    hf_tokenizer = to_hf_tokenizer(tokenizer, model_max_length=context_len)
    model.train()
    with tempfile.TemporaryDirectory(prefix="rxmrl-baseline-sft-") as work_dir:
        config = trl.SFTConfig(
            output_dir=work_dir, max_steps=settings.steps, per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.learning_rate, lr_scheduler_type="cosine", warmup_steps=settings.warmup_steps,
            weight_decay=settings.weight_decay, logging_steps=settings.logging_steps, save_strategy="no",
            report_to="none", seed=settings.seed, data_seed=settings.seed, bf16=False, fp16=False,
            activation_checkpointing=False, max_length=None, dataloader_num_workers=0, use_cpu=not _cuda(),
            disable_tqdm=not progress, remove_unused_columns=True,
        )
        trainer = trl.SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=hf_tokenizer)
        result = trainer.train()
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    model = model.to("cpu").eval()

    summary = {
        "matched_to": matched_to or {"preset": rxt_config.name},
        "rxt_decoder_active_parameters": rxt_decoder_active_parameters(rxt_config),
        "parameters": count_parameters(model),
        "llama": {"hidden_size": llama_config.hidden_size, "layers": llama_config.num_hidden_layers,
                  "query_heads": llama_config.num_attention_heads, "kv_heads": llama_config.num_key_value_heads,
                  "intermediate_size": llama_config.intermediate_size, "context_len": context_len},
        "max_message_len": max_message_len,
        "training": {**asdict(settings), "context_len": context_len, "max_message_len": max_message_len,
                     "episodes": len(episodes), "rows": len(rows), "episodes_left_out": left_out,
                     "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
                     "train_loss": float(result.training_loss), "transformers": transformers.__version__,
                     "trl": trl.__version__},
    }
    save_baseline(model, hf_tokenizer, out_dir, summary)
    return summary


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
