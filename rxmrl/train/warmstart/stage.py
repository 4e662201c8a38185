"""What a supervised stage tells the shared loop: its loss, its held-out statistics, what trains when.

The loop (`loop.py`) owns the optimizer, schedule, accumulation, clipping, logging, evaluation and
checkpoints; a stage owns only the maths of its objective. Anything a stage does at random draws from the
`generator` it is handed (saved in every checkpoint), so a resumed run makes the same draws.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from rxmrl.train.warmstart.losses import Stat


class SupervisedStage:
    """Base class of the four warm-start stages. Subclasses set `name` and implement `loss` and `eval`."""

    name: str = "stage"

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Every parameter the optimizer holds (even those frozen for the first steps)."""
        raise NotImplementedError

    def extra_modules(self) -> dict[str, nn.Module]:
        """Training-only modules (e.g. the MLM head) saved in checkpoints next to the model."""
        return {}

    def before_step(self, step: int) -> None:
        """Called before optimizer step `step` (0-based). Must depend on `step` alone, or resume drifts."""

    def loss(self, batch: Any, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss (a scalar to minimise) and a few numbers to log under `train/`."""
        raise NotImplementedError

    def eval(self, batch: Any, generator: torch.Generator) -> dict[str, Stat]:
        """Held-out (sum, count) statistics of one batch; the loop averages them over all held-out batches."""
        raise NotImplementedError

    def summarize(self, means: dict[str, float]) -> dict[str, float]:
        """Derived held-out metrics. Default: `perplexity` = exp(`lm_loss`) when the stage reports `lm_loss`."""
        out = dict(means)
        if "lm_loss" in means:
            out["perplexity"] = math.exp(min(means["lm_loss"], 50.0))  # capped: exp(50) already says "untrained"
        return out

    def finish(self) -> None:
        """Undo any temporary change to the model (e.g. frozen parameters) once the stage is over."""


def set_trainable(parameters: list[nn.Parameter], trainable: bool) -> None:
    """Switch `requires_grad` on a group. A frozen parameter gets no `.grad`, and AdamW skips it untouched."""
    for p in parameters:
        p.requires_grad_(trainable)


def unique_parameters(*groups: Any) -> list[nn.Parameter]:
    """Parameters of several modules / iterables, each once (the shared embedding appears in many)."""
    seen: set[int] = set()
    out: list[nn.Parameter] = []
    for group in groups:
        params = group.parameters() if isinstance(group, nn.Module) else group
        for p in params:
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out
