"""The MRL policy: an RxT model with a memory-aware critic, its STM as the recurrent state."""

from rxmrl.policy.critic import CriticConfig, MemoryAwareCritic
from rxmrl.policy.rxt_policy import PolicyEvaluation, PolicyStep, RxTPolicy

__all__ = ["CriticConfig", "MemoryAwareCritic", "PolicyEvaluation", "PolicyStep", "RxTPolicy"]
