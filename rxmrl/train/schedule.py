"""Learning-rate schedule shared by all trainers: linear warm-up, then cosine decay to a floor."""

from __future__ import annotations

import math

import torch


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_ratio: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """Multiplier: 0→1 over `warmup_steps`, then cosine 1→`min_ratio` at `total_steps` (flat after)."""

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def set_base_learning_rates(optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR,
                            base: dict[str, float]) -> list[str]:
    """Give the named parameter groups new peak learning rates, keeping the schedule's position (a resume with
    changed `stage.*.lr`). Returns the groups that changed; unchanged groups are left bit-for-bit alone."""
    changed = []
    for i, group in enumerate(optimizer.param_groups):
        new = base.get(group.get("name", ""))
        if new is None or new == scheduler.base_lrs[i]:
            continue
        scheduler.base_lrs[i] = group["initial_lr"] = new
        group["lr"] = new * scheduler.lr_lambdas[i](scheduler.last_epoch)
        changed.append(group["name"])
    return changed
