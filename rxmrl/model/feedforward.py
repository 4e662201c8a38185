"""SwiGLU feed-forward (Shazeer 2020): out = W2 (silu(W1 x + b1) * (W3 x + b3)) + b2.

W1 and W3 are stored as one [2H, D] matrix so a token costs one input matmul instead of two; the parameter
count is the same as three separate linears.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int, *, bias: bool) -> None:
        super().__init__()
        self.hidden = hidden
        self.gate_up = nn.Linear(dim, 2 * hidden, bias=bias)  # rows [0, H): gate (W1), rows [H, 2H): up (W3)
        self.down = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., D] -> [..., D]"""
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)
