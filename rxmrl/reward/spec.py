"""The reward spec: what a `rewards/*.toml` preset holds, loaded strictly with `rxmrl.config`.

A spec names the composite's components and their weights per mode (see `rxmrl.reward.composite` for what
each component measures and how the weights become a 0-10 score):

    name = "mrl-composite"
    scale = 10.0
    [weights.standard]        # also [weights.negative] and [weights.long_range]; missing ones copy standard
    bleu = 1.0
    fact_recall = 4.0
    contradiction = -3.0
    [bleu]                    # optional settings tables: [bleu], [similarity], [penalties], [claims]
    smoothing = "exp"
    [[plugins]]               # optional extra components: any reward spec, with one weight for all modes
    name = "question_echo"
    spec = "example_plugin.py:question_echo"   # relative paths are read from the spec file's folder
    weight = -1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rxmrl.config import from_dict, load_toml
from rxmrl.errors import ConfigError
from rxmrl.reward.base import MODES
from rxmrl.reward.similarity import DEFAULT_MODEL

COMPONENTS = (
    "bleu",  # TensorBLEU of the answer against the reference answer
    "reference_similarity",  # embedding cosine to the reference answer
    "memory_similarity",  # embedding cosine to the remembered interactions
    "fact_recall",  # fact F1 (with facts) or content-word F1 with relevance-weighted recall (without)
    "contradiction",  # share of the scored fact slots the answer contradicts
    "memory_overlap",  # share of the answer's content words copied from the remembered interactions only
    "length",  # length-ratio penalty against the reference
    "repetition",  # repeated n-gram rate of the answer
)


@dataclass
class Weights:
    bleu: float = 0.0
    reference_similarity: float = 0.0
    memory_similarity: float = 0.0
    fact_recall: float = 0.0
    contradiction: float = 0.0
    memory_overlap: float = 0.0
    length: float = 0.0
    repetition: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in COMPONENTS}


@dataclass
class ModeWeights:
    standard: Weights
    negative: Weights | None = None  # None: same as standard
    long_range: Weights | None = None  # None: same as standard

    def for_mode(self, mode: str) -> Weights:
        chosen = getattr(self, mode)
        return self.standard if chosen is None else chosen


@dataclass
class BleuSettings:
    max_n: int = 4
    smoothing: Literal["none", "floor", "add-k", "exp"] = "exp"
    smooth_value: float | None = None  # None: sacreBLEU's default (floor 0.1, add-k 1)

    def __post_init__(self) -> None:
        if self.max_n < 1:
            raise ConfigError("bleu.max_n: must be >= 1")


@dataclass
class SimilaritySettings:
    model: str = DEFAULT_MODEL  # the bundled MiniLM, or a local sentence-transformers folder
    device: str = "cpu"
    batch_size: int = 64
    cache_size: int = 4096  # embeddings kept, by text (references and remembered interactions repeat)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.cache_size < 0:
            raise ConfigError("similarity: batch_size must be >= 1 and cache_size >= 0")


@dataclass
class PenaltySettings:
    length_tolerance: float = 1.5  # no length penalty while answer/reference words are within [1/t, t]
    length_limit: float = 4.0  # full penalty at this ratio (or its inverse)
    repetition_n: int = 2  # n-gram order of the repetition rate

    def __post_init__(self) -> None:
        if not 1.0 <= self.length_tolerance < self.length_limit:
            raise ConfigError("penalties: need 1 <= length_tolerance < length_limit")
        if self.repetition_n < 1:
            raise ConfigError("penalties.repetition_n: must be >= 1")


@dataclass
class ClaimSettings:
    # Without ground-truth facts, check the values an answer states against the reference and the memory
    # (`rxmrl.reward.claims`); false restores the content-word-only fallback (what the reward audit compares).
    extract: bool = True
    extractor: str = ""  # "module:function" with `extract_claims`'s signature (e.g. a model-based judge)


@dataclass
class PluginComponent:
    name: str  # the component's name in the output (and in the trainer's logs)
    spec: str  # any reward spec get_reward accepts; relative file paths are read from the spec's folder
    weight: float


@dataclass
class RewardSpec:
    name: str
    weights: ModeWeights
    description: str = ""
    scale: float = 10.0  # the total is scaled to [0, scale]; the MRL reward scale is 0-10
    bleu: BleuSettings = field(default_factory=BleuSettings)
    similarity: SimilaritySettings = field(default_factory=SimilaritySettings)
    penalties: PenaltySettings = field(default_factory=PenaltySettings)
    claims: ClaimSettings = field(default_factory=ClaimSettings)
    plugins: list[PluginComponent] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ConfigError("scale: must be > 0")
        names = [p.name for p in self.plugins]
        for name in names:
            if name in COMPONENTS or names.count(name) > 1:
                raise ConfigError(f"plugins: component name '{name}' is used twice")
        for mode in MODES:
            positive = sum(w for w in self.weights.for_mode(mode).as_dict().values() if w > 0)
            positive += sum(p.weight for p in self.plugins if p.weight > 0)
            if positive <= 0:
                raise ConfigError(f"weights.{mode}: needs at least one positive weight")

    def used_components(self) -> tuple[str, ...]:
        """Built-in components with a non-zero weight in some mode, in `COMPONENTS` order."""
        return tuple(
            name for name in COMPONENTS
            if any(self.weights.for_mode(mode).as_dict()[name] != 0 for mode in MODES)
        )


def load_spec(path: str | Path) -> RewardSpec:
    path = Path(path)
    return from_dict(RewardSpec, load_toml(path), source=str(path))
