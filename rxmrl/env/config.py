"""Environment presets (`envs/*.toml`): a data source, the strategy mix, episode lengths and the reward.

Loaded strictly with `rxmrl.config`, so a misspelt key fails with the file and key named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rxmrl.errors import ConfigError


@dataclass(frozen=True)
class EnvConfig:
    description: str = ""
    source: str = "synthetic"  # "synthetic", a Hub dataset id, a snapshot folder, or a data file
    subset: str | None = None  # None: by the steps-N / steps-N-lr convention, see rxmrl.env.episodes
    split: str = "train"
    eval_split: str = "validation"
    strategy: Literal["single", "cumulative", "long_range", "mixed"] = "mixed"
    steps: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])  # episode lengths on offer
    reward: str = "mrl-composite"
    reward_intermediate: bool = True  # reward long-range intermediate answers (mode "negative")
    synthetic_episodes: int = 256  # per strategy and length, for source = "synthetic"
    max_query_len: int = 64  # tokens, vector env
    max_answer_len: int = 64

    def __post_init__(self) -> None:
        if not self.steps or any(n < 1 for n in self.steps):
            raise ConfigError(f"steps: episode lengths must be a non-empty list of integers >= 1, got {self.steps}")
        if self.synthetic_episodes < 1:
            raise ConfigError(f"synthetic_episodes: must be >= 1, got {self.synthetic_episodes}")
        for name in ("max_query_len", "max_answer_len"):
            if getattr(self, name) < 4:
                raise ConfigError(f"{name}: must be >= 4 tokens (room for the special tokens)")

    def env_kwargs(self, *, evaluation: bool = False) -> dict[str, Any]:
        """Keyword arguments for `MemoryRetentionEnv` (the training split, or `eval_split`)."""
        return {"source": self.source, "subset": self.subset,
                "split": self.eval_split if evaluation else self.split, "steps": list(self.steps),
                "strategy": self.strategy, "reward": self.reward, "synthetic_episodes": self.synthetic_episodes,
                "reward_intermediate": self.reward_intermediate}

    def vector_env_kwargs(self, *, evaluation: bool = False) -> dict[str, Any]:
        """Keyword arguments for `VectorMemoryEnv` (add num_envs, tokenizer, seed)."""
        return self.env_kwargs(evaluation=evaluation) | {"max_query_len": self.max_query_len,
                                                         "max_answer_len": self.max_answer_len}


def load_env_config(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> EnvConfig:
    """A preset of the `envs` catalog by name (`synthetic`) or a TOML path, with `--set` overrides."""
    from rxmrl.catalog import find_preset
    from rxmrl.config import load

    return load(EnvConfig, find_preset("envs", name_or_path), overrides)
