"""Rotary position embedding (RoPE, Su et al. 2021), "rotate half" layout.

Feature pairs (i, i + d/2) of a head are rotated by the angle `position * base^(-2i/d)`. The dot product of
a rotated query at position m and a rotated key at position n then depends on m - n only, which is what
lets a batch of right-padded prompts use per-sample positions and still match one-by-one decoding.

The cos/sin tables are derived constants (not state): non-persistent buffers that follow `.to(device)`.
The sin table is stored with the rotation's sign folded in (-sin on the first half), so that applying
RoPE is `x * cos + roll(x, d/2) * signed_sin`: three kernels instead of the six of the textbook form.

One-token decoding uses the same rotation written as a [d, d] matrix, `x @ rotation(p)`: built once per
step, it rotates every head of every layer with one small matmul each instead of three elementwise kernels
(each column of the matrix has two non-zeros, so every output is the same two products, summed).
"""

from __future__ import annotations

import torch
from torch import nn


class RotaryEmbedding(nn.Module):
    def __init__(self, head_dim: int, max_positions: int, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2 != 0:
            raise ValueError(f"rotary head dim must be even, got {head_dim}")
        self.head_dim = head_dim
        self.max_positions = max_positions
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # [d/2]
        angles = torch.arange(max_positions, dtype=torch.float64)[:, None] * inv_freq[None, :]  # [P, d/2]
        cos = torch.cat([angles.cos(), angles.cos()], dim=-1)  # [P, d]: both halves of a pair share an angle
        signed_sin = torch.cat([-angles.sin(), angles.sin()], dim=-1)  # [P, d]
        self.register_buffer("cos_table", cos.float(), persistent=False)
        self.register_buffer("sin_table", signed_sin.float(), persistent=False)
        # swap[i, j] = 1 where i = (j + d/2) mod d: `x @ swap` is roll(x, d/2).
        swap = torch.eye(head_dim).roll(head_dim // 2, dims=0)
        self.register_buffer("swap", swap, persistent=False)

    def lookup(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """positions [B, T] (long) -> cos, signed sin [B, 1, T, d], ready to broadcast over heads."""
        cos = self.cos_table[positions].unsqueeze(1).to(dtype)
        sin = self.sin_table[positions].unsqueeze(1).to(dtype)
        return cos, sin

    def rotation(self, positions: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """positions [B] (long) -> R [B, d, d] with x @ R[b] = apply_rotary(x, ...) at position positions[b].

        R = diag(cos) + swap * signed_sin: column j holds cos_j at row j and signed_sin_j at row (j + d/2) mod d.
        """
        cos = self.cos_table.index_select(0, positions).to(dtype)  # [B, d]
        signed_sin = self.sin_table.index_select(0, positions).to(dtype)  # [B, d]
        return torch.addcmul(torch.diag_embed(cos), self.swap.to(dtype), signed_sin[:, None, :])


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """[..., d] -> [..., d]: halves (a, b) -> (-b, a). The textbook form, kept for reference and tests."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, T, d], cos/signed_sin [B, 1, T, d] -> x rotated by each token's position, [B, H, T, d].

    Equals x * cos + rotate_half(x) * sin: roll swaps the halves, the sign lives in `signed_sin`.
    """
    return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, dims=-1), signed_sin)
