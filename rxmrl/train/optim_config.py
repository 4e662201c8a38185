"""What the optimizer of an MRL update is built from: the learning rate of each parameter group, and the
names of the groups that gradual unfreezing adds one after another.

They belong to the algorithm (`build_optimizer`, `parameter_groups`), not to the curriculum that sets them:
a curriculum's `[stage.lr]` table is read into `LearningRates`, and its `[stage.unfreeze]` schedule names
a group from `UNFREEZE_GROUPS` for each epoch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rxmrl.errors import ConfigError

# cumulative, narrowest first (see rxmrl/train/unfreeze.py)
UNFREEZE_GROUPS = ("memory_attention", "decoder_cross_attention", "encoder", "everything")


@dataclass
class LearningRates:
    """
    Learning rates of the four parameter groups (`[stage.lr]`).

    Parameters:
        decoder (`float`, *optional*, defaults to `5e-5`):
            Decoder, shared embedding and LM head.
        encoder (`float`, *optional*, defaults to `5e-5`):
            Memory encoder.
        memory_attention (`float`, *optional*, defaults to `1e-4`):
            Memory attention (and a learned initial STM).
        critic (`float`, *optional*, defaults to `1e-4`):
            The critic.
    """

    decoder: float = 5e-5
    encoder: float = 5e-5
    memory_attention: float = 1e-4
    critic: float = 1e-4

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 0:
                raise ConfigError(f"{f.name}: a learning rate must not be negative, got {getattr(self, f.name)}")
