"""RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * weight, no mean subtraction, no bias;
unit_rms is the same without the weight."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def unit_rms(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each vector (last dim) to RMS 1, with no learned weight. [..., D] -> [..., D]"""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        # eps as a tensor for `step`: a Python number operand costs a scalar-to-tensor wrap on every call.
        self.register_buffer("eps_tensor", torch.tensor(eps), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., D] -> [..., D]"""
        # torch's fused kernel is one op instead of five: it matters in the batch-1 decode loop.
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One float32 vector [D] -> [D] in five small kernels (F.rms_norm's CPU composite runs about ten,
        the largest per-call cost of a batch-1 decode step); any other input goes to `forward`."""
        if x.dim() != 1 or x.dtype != torch.float32:
            return self(x)
        inverse_rms = torch.add(self.eps_tensor, torch.dot(x, x), alpha=1 / x.shape[0]).rsqrt_()  # []
        return x.mul(inverse_rms).mul_(self.weight)
