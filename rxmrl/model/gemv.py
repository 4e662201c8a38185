"""A linear layer for the one-token decode step, where a batch of one is a 1-D vector.

At batch 1 a projection is a matrix-vector product: `torch.mv`/`torch.addmv` on the [out, in] weight as
stored, one kernel, where `F.linear` on a [1, in] row goes through a transposed view and a gemm set up for
matrices (about twice the per-call cost at these widths on CPU). Under torch.compile the product is
written as multiply-and-sum instead, which inductor fuses into one loop that streams the weight (an
external gemv call would read it in short rows, below memory bandwidth).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x [in] or [B, in], weight [out, in], bias [out] -> [out] or [B, out] (x @ weight.T + bias)."""
    if x.dim() == 1:
        if torch.compiler.is_compiling():
            y = (weight * x).sum(dim=-1)
            return y if bias is None else y + bias
        return torch.mv(weight, x) if bias is None else torch.addmv(bias, weight, x)
    return F.linear(x, weight, bias)

