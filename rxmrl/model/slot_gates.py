"""RxNN's residual gates: one gate value per STM slot (or per layer), computed from a one-number summary of
each slot, where rxmrl's own gates (`gates.py`) compute a vector per slot from its features.

S is the previous memory and U the update, both [B, slots, D]; the summary of a slot is the mean of its D
features of S + U ("mean"), or a learned projection D -> 1 ("linear" status).

    "slot-linear"       G = act(W m + b)      m [B, slots] the slot summaries; W [slots, slots] (per slot) or
                                              [1, slots] (one gate per layer) mixes summaries across slots
    "slot-elementwise"  G = act(w * m)        w [slots, 1] (per slot) or [1]; m per slot, or one mean per layer
    "slot-static"       G = act(w)            learned, input-independent

    sigmoid activation  S' = (1 - G) S + G U
    tanh activation     S' = (1 - G) S + (1 + G) U     (G = 0 is the plain residual S + U)

G is [B, slots, 1] (or broadcast from [slots, 1], [B, 1, 1], [1]): every feature of a slot shares its gate.
This is the function of RxNN's `ResidualGate` (memory/gate.py, checked against 0.2.171); the parameters are
loaded from its checkpoints by `rxmrl.model.rxnn`.
"""

from __future__ import annotations

import torch
from torch import nn


class SlotGate(nn.Module):
    def __init__(
        self,
        kind: str,
        dim: int,
        slots: int,
        *,
        activation: str = "sigmoid",
        per_slot: bool = True,
        slot_status: str = "mean",
        bias_init: float = 0.0,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        if kind not in ("slot-linear", "slot-elementwise", "slot-static"):
            raise ValueError(f"unknown slot gate {kind!r}")
        if slot_status == "linear" and kind != "slot-linear" and not per_slot:
            raise ValueError("a learned slot status needs a per-slot gate (or the slot-linear gate)")
        self.kind = kind
        self.tanh = activation == "tanh"
        self.per_slot = per_slot
        self.bias_init = float(bias_init)
        self.init_std = init_std
        if kind == "slot-linear":
            self.linear = nn.Linear(slots, slots if per_slot else 1)
        else:
            self.weight = nn.Parameter(torch.zeros((slots, 1) if per_slot else (1,)))
        # RxNN builds the learned status for every gate kind that asks for it, the static one included.
        self.status = nn.Linear(dim, 1) if slot_status == "linear" else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Start the gate near act(bias_init) whatever the memory holds."""
        with torch.no_grad():
            if self.kind == "slot-linear":
                nn.init.normal_(self.linear.weight, std=self.init_std)
                self.linear.bias.fill_(self.bias_init)
            else:
                self.weight.fill_(self.bias_init)
            if self.status is not None:
                nn.init.normal_(self.status.weight, std=self.init_std)
                self.status.bias.zero_()

    def _summaries(self, mixed: torch.Tensor) -> torch.Tensor:
        """mixed = S + U [B, slots, D] -> slot summaries: [B, slots] for slot-linear, else [B, slots|1, 1]."""
        if self.kind == "slot-linear":
            return self.status(mixed).squeeze(-1) if self.status is not None else mixed.mean(dim=-1)
        if self.status is not None:
            return self.status(mixed)
        return mixed.mean(dim=-1, keepdim=True) if self.per_slot else mixed.mean(dim=(1, 2), keepdim=True)

    def gate(self, previous: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        """The gate G, broadcastable to [B, slots, D]."""
        if self.kind == "slot-static":
            pre = self.weight
        elif self.kind == "slot-linear":
            pre = self.linear(self._summaries(previous + update)).unsqueeze(-1)  # [B, slots|1, 1]
        else:
            pre = self.weight * self._summaries(previous + update)
        return torch.tanh(pre) if self.tanh else torch.sigmoid(pre)

    def forward(self, previous: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        """previous S, update U [B, slots, D] -> new memory [B, slots, D]"""
        gate = self.gate(previous, update)
        if self.tanh:
            return (1 + gate) * update + (1 - gate) * previous
        return gate * update + (1 - gate) * previous
