"""Stage 2: interaction SFT. The joint-LM objective on single `[BOS][Q] query [A] answer [EOS]` interactions.

The encoder still learns masked LM over the whole interaction; the decoder is scored only on what it will
have to produce at inference: the answer tokens and the closing [EOS] (the batch's `target_mask`, see
`batches.answer_positions`). Query tokens and padding are inputs, never targets. The MLM head carries over
from joint-LM pre-training when one is found (see `load_mlm_head`), so the encoder is not pushed around
by a freshly initialised head.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rxmrl.errors import CheckpointError
from rxmrl.train.checkpoint import load_state_file
from rxmrl.train.warmstart.joint_lm import JointLMStage
from rxmrl.train.warmstart.mlm_head import MLMHead

FINAL = "final"


def sft_stage(model: Any, head: MLMHead, tokenizer: Any, **objective: Any) -> JointLMStage:
    return JointLMStage(model, head, tokenizer, name="sft", **objective)


def new_mlm_head(model: Any) -> MLMHead:
    cfg = model.config
    return MLMHead(cfg.dim, cfg.vocab_size, eps=cfg.norm_eps, init_std=cfg.init_std).to(model.device)


def find_mlm_head(spec: str, sources: Sequence[Path] = ()) -> Path | None:
    """Where the MLM head to start from lives, or None for a fresh one.

    `spec` is a folder holding a stage checkpoint (`trainer_state.pt` with an `mlm_head`), "none", or "auto":
    the last of `sources` that holds one. `sources` are folders the user named or their run made: in a
    curriculum the run's earlier joint-lm/sft stages, standalone the `model` folder the config names. Nothing
    else is searched (a folder the user never named may hold anyone's files).
    """
    if spec == "none":
        return None
    if spec != "auto":
        path = Path(spec)
        path = path / FINAL if (path / FINAL / "trainer_state.pt").is_file() else path
        if not (path / "trainer_state.pt").is_file():
            raise CheckpointError(f"mlm_head_from = '{spec}': no trainer_state.pt there (give a joint-lm or sft "
                                  f"stage folder, or its final/ folder, or 'none' for a fresh head)")
        return path
    for source in reversed(list(sources)):
        for folder in (Path(source) / FINAL, Path(source)):
            if (folder / "trainer_state.pt").is_file():
                return folder
    return None


def load_mlm_head(head: MLMHead, folder: Path) -> None:
    blob = load_state_file(folder / "trainer_state.pt")
    weights = blob.get("modules", {}).get("mlm_head")
    if weights is None:
        raise CheckpointError(f"{folder}: this checkpoint has no MLM head (set mlm_head_from = 'none' for a fresh one)")
    try:
        head.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{folder}: its MLM head does not fit this model: {str(e).splitlines()[-1].strip()}"
                              ) from None
