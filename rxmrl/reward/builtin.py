"""Built-in single-component rewards, registered by name; each is a one-weight `CompositeReward` in [0, 1].

  bleu                  TensorBLEU against the reference answer (exp smoothing, n = 1..4)
  reference-similarity  embedding cosine to the reference answer
  memory-similarity     embedding cosine to the remembered interactions
  fact-f1               fact F1 (or content-word recall without facts) minus the contradiction share

The composite presets (`mrl-composite`, `fact-recall`) live in the `rewards/` catalog as TOML files.
"""

from __future__ import annotations

from rxmrl.reward.composite import CompositeReward
from rxmrl.reward.registry import register_reward
from rxmrl.reward.spec import ModeWeights, RewardSpec, Weights


def _single(name: str, weights: Weights) -> RewardSpec:
    return RewardSpec(name=name, weights=ModeWeights(standard=weights), scale=1.0)


@register_reward("bleu")
class BleuReward(CompositeReward):
    def __init__(self) -> None:
        super().__init__(_single("bleu", Weights(bleu=1.0)))


@register_reward("reference-similarity")
class ReferenceSimilarityReward(CompositeReward):
    def __init__(self) -> None:
        super().__init__(_single("reference-similarity", Weights(reference_similarity=1.0)))


@register_reward("memory-similarity")
class MemorySimilarityReward(CompositeReward):
    def __init__(self) -> None:
        super().__init__(_single("memory-similarity", Weights(memory_similarity=1.0)))


@register_reward("fact-f1")
class FactF1Reward(CompositeReward):
    def __init__(self) -> None:
        super().__init__(_single("fact-f1", Weights(fact_recall=1.0, contradiction=-1.0)))
