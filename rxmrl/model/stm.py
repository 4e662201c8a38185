"""Short-term memory initial state and per-sample reset.

The STM itself is a plain tensor value [B, L, S, D] passed in and returned by the model's methods; it is
never stored on a module, so a trainer can hold several memories, detach them, or checkpoint them freely.
This module only knows how to draw a fresh one:

    "zeros"    all zeros
    "normal"   N(0, init_std^2), drawn independently for every sample
    "uniform"  U(-init_range, init_range), drawn independently for every sample
    "learned"  one learned [L, S, D] tensor (started from N(0, init_std^2)), the same for every sample
"""

from __future__ import annotations

import torch
from torch import nn

from rxmrl.model.config import StmConfig


class StmInitializer(nn.Module):
    def __init__(self, config: StmConfig) -> None:
        super().__init__()
        self.config = config
        self.shape = (config.layers, config.slots, config.dim)
        self.learned: nn.Parameter | None = None
        if config.init == "learned":
            self.learned = nn.Parameter(torch.randn(self.shape) * config.init_std)

    def initial(
        self,
        batch: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """A fresh memory [B, L, S, D]. Random kinds draw from `generator` (on `device`) when given."""
        shape = (batch, *self.shape)
        kind = self.config.init
        if kind == "zeros":
            return torch.zeros(shape, device=device, dtype=dtype)
        if kind == "normal":
            return torch.randn(shape, generator=generator, device=device, dtype=dtype) * self.config.init_std
        if kind == "uniform":
            unit = torch.rand(shape, generator=generator, device=device, dtype=dtype)
            return (2 * unit - 1) * self.config.init_range
        return self.learned.to(device=device, dtype=dtype).unsqueeze(0).expand(shape)

    def reset(self, stm: torch.Tensor, reset: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """stm [B, L, S, D], reset [B] bool -> stm with the `reset` rows replaced by fresh initial memories."""
        fresh = self.initial(stm.shape[0], generator=generator, device=stm.device, dtype=stm.dtype)
        return torch.where(reset.to(torch.bool)[:, None, None, None], fresh, stm)
