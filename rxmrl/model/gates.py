"""Residual gates: how a memory-attention update U is written into the previous memory S (= STM_{t-1}).

All shapes are [B, slots, D]; W is a [D, D] matrix and b, w are [D] vectors, shared by all slots of one
STM layer; theta is [slots, D].

    "linear"       G = sigmoid(W (S + U) + b)          S' = (1 - G) * S + G * U
                   Dynamic and per slot: each slot's gate vector is computed from that slot's own content.
    "elementwise"  G = sigmoid(w * (S + U) + b)        S' = (1 - G) * S + G * U
                   Dynamic but diagonal: feature d of a slot is gated by feature d alone (2D parameters).
    "static"       G = sigmoid(theta)                  S' = (1 - G) * S + G * U
                   Learned, input-independent: one fixed gate per slot and feature.
    "tanh"         G = tanh(W (S + U) + b)             S' = (1 - G) * S + (1 + G) * U
                   A signed gate: G = 0 is the plain residual S + U, G -> 1 gives 2U (overwrite),
                   G -> -1 gives 2S (ignore the update). The two weights sum to 2, not 1, so unlike the
                   sigmoid gates this is not a convex mix and the memory's norm may grow.
    "none"         S' = S + U                          the plain residual connection, no parameters.

The sigmoid gates keep S' a convex combination of S and U, which bounds the memory's scale across many
turns. `bias_init` sets b (or theta) at construction: sigmoid(0) = 0.5 writes half the update at first.
"""

from __future__ import annotations

import torch
from torch import nn

from rxmrl.model.config import GATE_TYPES, RxTConfig
from rxmrl.model.slot_gates import SlotGate


class ResidualGate(nn.Module):
    def __init__(self, kind: str, dim: int, slots: int, bias_init: float = 0.0, init_std: float = 0.02) -> None:
        super().__init__()
        if kind not in GATE_TYPES:
            raise ValueError(f"unknown gate {kind!r}; expected one of {GATE_TYPES}")
        self.kind = kind
        self.bias_init = float(bias_init)
        self.init_std = init_std
        if kind in ("linear", "tanh"):
            self.linear = nn.Linear(dim, dim, bias=True)
        elif kind == "elementwise":
            self.weight = nn.Parameter(torch.zeros(dim))
            self.bias = nn.Parameter(torch.zeros(dim))
        elif kind == "static":
            self.theta = nn.Parameter(torch.zeros(slots, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Start every gate near sigmoid(bias_init) (tanh: tanh(bias_init)) whatever the memory holds."""
        with torch.no_grad():
            if self.kind in ("linear", "tanh"):
                nn.init.normal_(self.linear.weight, std=self.init_std)
                self.linear.bias.fill_(self.bias_init)
            elif self.kind == "elementwise":
                self.weight.zero_()  # w = 0: the gate starts input-independent and learns its dependence
                self.bias.fill_(self.bias_init)
            elif self.kind == "static":
                self.theta.fill_(self.bias_init)

    def gate(self, previous: torch.Tensor, update: torch.Tensor) -> torch.Tensor | None:
        """The gate G [B, S, D] (None for "none")."""
        if self.kind == "linear":
            return torch.sigmoid(self.linear(previous + update))
        if self.kind == "tanh":
            return torch.tanh(self.linear(previous + update))
        if self.kind == "elementwise":
            return torch.sigmoid(self.weight * (previous + update) + self.bias)
        if self.kind == "static":
            return torch.sigmoid(self.theta).expand_as(previous)
        return None

    def forward(self, previous: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        """previous S, update U [B, S, D] -> new memory [B, S, D]"""
        gate = self.gate(previous, update)
        if gate is None:
            return previous + update
        if self.kind == "tanh":
            return (1 - gate) * previous + (1 + gate) * update
        return (1 - gate) * previous + gate * update


def build_gate(config: RxTConfig, *, plain: bool = False) -> ResidualGate | SlotGate:
    """A fresh memory-attention gate of the configured kind ("slot-*": RxNN's, in slot_gates.py); `plain`:
    the parameter-free residual S + U instead."""
    spec = config.memory_attention
    if plain:
        return ResidualGate("none", config.dim, config.stm.slots)
    if spec.gate.startswith("slot-"):
        return SlotGate(spec.gate, config.dim, config.stm.slots, activation=spec.gate_activation,
                        per_slot=spec.gate_per_slot, slot_status=spec.gate_slot_status,
                        bias_init=spec.gate_bias_init, init_std=config.init_std)
    return ResidualGate(spec.gate, config.dim, config.stm.slots, spec.gate_bias_init, config.init_std)
