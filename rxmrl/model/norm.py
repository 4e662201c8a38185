"""RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * weight, no mean subtraction, no bias;
unit_rms is the same without the weight.

eps None is torch's default, the machine epsilon of the input's dtype (what RxNN's `nn.RMSNorm(dim)` uses);
`build_norm` picks it when the config says `norm_eps_from_dtype`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rxmrl.model.config import RxTConfig


def unit_rms(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each vector (last dim) to RMS 1, with no learned weight. [..., D] -> [..., D]"""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float | None = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        # eps as a tensor for `step`: a Python number operand costs a scalar-to-tensor wrap on every call.
        # `step` only runs float32, so None becomes float32's machine epsilon there.
        step_eps = torch.finfo(torch.float32).eps if eps is None else eps
        self.register_buffer("eps_tensor", torch.tensor(step_eps), persistent=False)

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


class NoNorm(nn.Module):
    """Stands in for a norm a checkpoint does not have (RxNN's decoder has no final norm); no parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def step(self, x: torch.Tensor) -> torch.Tensor:
        return x


class LayerNormWithStep(nn.LayerNorm):
    """torch's LayerNorm (weight and bias, eps 1e-5), with the `step` the one-token decoding path calls."""

    def step(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)


def build_norm(config: RxTConfig) -> RMSNorm:
    """An RMSNorm of the model's width with the model's epsilon rule."""
    return RMSNorm(config.dim, None if config.norm_eps_from_dtype else config.norm_eps)
