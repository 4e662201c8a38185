"""Rewards that score how well an answer retains what the memory should hold.

Entry points: `get_reward(spec)` (a name, preset, TOML path, plug-in or callable -> a checked reward),
`list_rewards()`, `register_reward(name)`, `tensor_bleu(...)`, and the TRL adapters.
"""

from rxmrl.reward.base import MODES, RewardBatch, RewardOutput, as_output
from rxmrl.reward.composite import CompositeReward
from rxmrl.reward.registry import ENTRY_POINT_GROUP, NamedReward, get_reward, list_rewards, register_reward
from rxmrl.reward.spec import COMPONENTS, RewardSpec, load_spec
from rxmrl.reward.bleu import tensor_bleu, tensor_corpus_bleu
from rxmrl.reward.trl_adapter import from_trl_reward, to_trl_reward

Reward = NamedReward

__all__ = [
    "COMPONENTS",
    "ENTRY_POINT_GROUP",
    "MODES",
    "CompositeReward",
    "NamedReward",
    "Reward",
    "RewardBatch",
    "RewardOutput",
    "RewardSpec",
    "as_output",
    "from_trl_reward",
    "get_reward",
    "list_rewards",
    "load_spec",
    "register_reward",
    "tensor_bleu",
    "tensor_corpus_bleu",
    "to_trl_reward",
]
