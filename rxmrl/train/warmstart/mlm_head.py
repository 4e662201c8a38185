"""The encoder's masked-LM head: a training-only module of the joint-LM and SFT stages (like a critic).

    logits = W_out GELU(W_in RMSNorm(h)) + b        h = the encoder's last-layer output [B, T, D]

It is not part of `RxT` (model cards count no MLM head) and is saved as an extra module in the stage's
checkpoints. It is *untied* from the shared embedding: the decoder's LM head is untied too, so the embedding
is only an input table, and tying would give the MLM loss a second path into it that the decoder's loss does
not have. The head is thrown away after the supervised stages, so its V x D matrix costs nothing later.
The norm comes first because the encoder's per-layer outputs are raw residual streams (no final norm).
"""

from __future__ import annotations

import torch
from torch import nn

from rxmrl.model.norm import RMSNorm


class MLMHead(nn.Module):
    def __init__(self, dim: int, vocab_size: int, *, eps: float = 1e-6, init_std: float = 0.02) -> None:
        super().__init__()
        self.norm = RMSNorm(dim, eps)
        self.dense = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, vocab_size)
        for linear in (self.dense, self.out):
            nn.init.normal_(linear.weight, std=init_std)
            nn.init.zeros_(linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [B, T, D] -> logits [B, T, V]"""
        return self.out(nn.functional.gelu(self.dense(self.norm(hidden))))
