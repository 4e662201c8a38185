"""The optional `[benchmark]` table of a curriculum: the retention benchmark run once MRL has finished.

    [benchmark]
    episodes = 64          # held-out episodes
    steps = 8              # follow-ups per episode
    [benchmark.baseline]   # how the stateless baseline is trained (rxmrl.baseline.train.BaselineTraining)
    steps = 200

Systems compared (see `rxmrl.recipes.final_benchmark`): the final model (`rxt`), its memory ablation
(`rxt_memory_reset`), the model as the warm-start stages left it (`warmstart_only`, with its own ablation) and a
stateless decoder-only baseline trained on the same training episodes (`stateless`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rxmrl.baseline.train import BaselineTraining
from rxmrl.errors import ConfigError
from rxmrl.model.sampling import GREEDY, Sampling

STRATEGIES = ("single", "cumulative", "long_range", "mixed")


@dataclass
class BenchmarkConfig:
    """
    The retention benchmark after the last MRL stage (`[benchmark]`).

    Parameters:
        episodes (`int`, *optional*, defaults to `64`):
            Held-out episodes scored (the same ones for every system).
        steps (`int`, *optional*, defaults to `8`):
            Follow-ups per episode (the RxT paper's 8+1-step protocol).
        strategy (`str`, *optional*, defaults to `"cumulative"`):
            Episode strategy: every cumulative follow-up asks about the memory.
        split (`str`, *optional*, defaults to `"test"`):
            Split the episodes come from; `test` is held out from training and from the per-epoch evaluation.
        reward (`str` or `None`, *optional*, defaults to `None`):
            A reward spec (name, preset, TOML path...); left out = the curriculum's own reward.
        batch_size (`int`, *optional*, defaults to `16`):
            Episodes answered at once.
        greedy (`bool`, *optional*, defaults to `True`):
            Greedy decoding (reproducible scores); false samples with `temperature`.
        temperature (`float`, *optional*, defaults to `1.0`):
            Sampling temperature when `greedy = false`.
        max_query_len, max_answer_len, max_new_tokens (`int`, *optional*, default `0`):
            Token limits; 0 = those of the last MRL stage.
        warmstart_only (`bool`, *optional*, defaults to `True`):
            Also score the model as the warm-start stages left it (saved as `RUN_DIR/warmstart-final/`).
        stateless (`bool`, *optional*, defaults to `True`):
            Also train (TRL SFT) and score the stateless baseline (`RUN_DIR/benchmark/baseline/`).
        baseline (`BaselineTraining`):
            How the stateless baseline is trained (`[benchmark.baseline]`).
        samples (`int`, *optional*, defaults to `2`):
            Answered episodes per system kept in the JSON for reading.
        long_range_steps (`int`, *optional*, defaults to `0`):
            When set, the RxT systems also answer held-out long-range episodes of this many follow-ups (recall
            the first interaction after the others), in `retention-long_range-N.json`; 0 = not.
    """

    episodes: int = 64
    steps: int = 8
    strategy: str = "cumulative"
    split: str = "test"
    reward: str | None = None
    batch_size: int = 16
    greedy: bool = True
    temperature: float = 1.0
    max_query_len: int = 0
    max_answer_len: int = 0
    max_new_tokens: int = 0
    warmstart_only: bool = True
    stateless: bool = True
    baseline: BaselineTraining = field(default_factory=BaselineTraining)
    samples: int = 2
    long_range_steps: int = 0

    def __post_init__(self) -> None:
        for name in ("episodes", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("max_query_len", "max_answer_len", "max_new_tokens", "samples", "long_range_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be 0 or more, got {getattr(self, name)}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy: must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.strategy == "single" and self.steps != 1:
            raise ConfigError(f"steps: strategy 'single' has exactly 1 follow-up, got {self.steps}")
        if self.long_range_steps == 1:
            raise ConfigError("long_range_steps: a long-range episode has 2 or more follow-ups, got 1")
        if not self.temperature > 0:
            raise ConfigError(f"temperature: must be positive, got {self.temperature}")
        try:
            self.baseline.check()
        except ConfigError as e:
            raise ConfigError(f"baseline.{e}") from None

    @property
    def sampling(self) -> Sampling:
        return GREEDY if self.greedy else Sampling(temperature=self.temperature)
