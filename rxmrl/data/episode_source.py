"""Where a stage's episodes come from, and how long their token sequences may be: the keys an MRL stage's
`[data]` table and a warm-start stage's `data` table share.

Each context extends `EpisodeSource` with what only it has: an MRL stage counts `episodes`
(`rxmrl.recipes.curriculum_config.MrlDataConfig`), a warm-start stage `examples` (stories, pairs or episodes)
and describes the synthetic episodes it generates (`rxmrl.train.warmstart.config.WarmStartData`). The keys,
their documentation and their checks are here once; a context may only give a key another default.
"""

from __future__ import annotations

from dataclasses import dataclass

from rxmrl.errors import ConfigError


@dataclass
class EpisodeSource:
    """
    An episode source and its token limits.

    Parameters:
        source (`str`, *optional*, defaults to `"synthetic"`):
            `"synthetic"` (the built-in generator, no files), a Hub dataset id, a local snapshot folder, or a
            `.jsonl`/`.json`/`.parquet` file of TinyStories-MRL rows.
        subset (`str` or `None`, *optional*, defaults to `None`):
            Dataset subset. In an MRL stage `{steps}` is replaced by the stage's follow-up count (e.g.
            `"steps-{steps}"`).
        split (`str`, *optional*, defaults to `"train"`):
            Training split.
        eval_source (`str` or `None`, *optional*, defaults to `None`):
            Held-out data from elsewhere (default: `source`).
        eval_split (`str`, *optional*, defaults to `"validation"`):
            Held-out split.
        max_query_len (`int`, *optional*, defaults to `32`):
            Tokens of a query, `[BOS][Q] ... [A]` included.
        max_answer_len (`int`, *optional*, defaults to `48`; `96` in a warm-start stage):
            Tokens of a reference answer, `[EOS]` included.
    """

    source: str = "synthetic"
    subset: str | None = None
    split: str = "train"
    eval_source: str | None = None
    eval_split: str = "validation"
    max_query_len: int = 32
    max_answer_len: int = 48

    def __post_init__(self) -> None:
        for key in ("max_query_len", "max_answer_len"):
            if getattr(self, key) < 4:
                raise ConfigError(f"{key}: must be at least 4 tokens, got {getattr(self, key)}")

    def source_and_split(self, *, held_out: bool) -> tuple[str, str]:
        """Where the training items, or the held-out ones, are read from."""
        if held_out:
            return self.eval_source or self.source, self.eval_split
        return self.source, self.split


def check_counts(config: EpisodeSource, train: str, held_out: str) -> None:
    """The two counts a context names (`episodes`, `examples`): 0 (all of a dataset) or more to train on, at
    least 1 held out (every stage reports held-out metrics)."""
    if getattr(config, train) < 0:
        raise ConfigError(f"{train}: must be 0 (all) or more, got {getattr(config, train)}")
    if getattr(config, held_out) < 1:
        raise ConfigError(f"{held_out}: must be at least 1, got {getattr(config, held_out)}")
