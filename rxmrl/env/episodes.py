"""The pool of episodes an environment draws from, chosen by source, split, lengths and strategy.

`source` is `None`/"synthetic" (the built-in generator, `synthetic_episodes` per strategy and length), or
anything `rxmrl.data.load_episodes` reads. Without an explicit `subset`, a multi-subset source is read by the
TinyStories-MRL naming convention: `steps-N` holds N-step episodes (cumulative; single for N = 1) and
`steps-N-lr` long-range ones; the subsets matching `steps` and `strategy` are loaded.
`strategy` is one of `ENV_STRATEGIES`; "mixed" keeps every episode's own strategy tag.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from rxmrl.data.episode import STRATEGIES, Episode
from rxmrl.errors import ConfigError, DataError

ENV_STRATEGIES = (*STRATEGIES, "mixed")
DEFAULT_SYNTHETIC_STEPS = (1, 2, 4, 8, 16)
_SUBSET_NAME = re.compile(r"steps-(\d+)(-lr)?")


def normalize_steps(steps: int | Iterable[int] | None) -> tuple[int, ...] | None:
    """`4` -> (4,); `[2, 4]` -> (2, 4); None -> None (any length)."""
    if steps is None:
        return None
    lengths = (steps,) if isinstance(steps, int) else tuple(steps)
    if not lengths or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in lengths):
        raise ConfigError(f"steps must be a positive integer or a list of them, got {steps!r}")
    return tuple(sorted(set(lengths)))


def select_episodes(*, episodes: Sequence[Episode] | None = None, source: str | Path | None = None,
                    subset: str | None = None, split: str = "train", steps: int | Iterable[int] | None = None,
                    strategy: str = "mixed", seed: int | None = None, synthetic_episodes: int = 64) -> list[Episode]:
    """Episodes given directly, generated, or loaded; then kept if their strategy and length match."""
    if strategy not in ENV_STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(ENV_STRATEGIES)}, got {strategy!r}")
    lengths = normalize_steps(steps)
    if episodes is not None:
        pool = list(episodes)
    elif source is None or source == "synthetic":
        pool = _synthetic_pool(lengths or DEFAULT_SYNTHETIC_STEPS, strategy, split, seed or 0, synthetic_episodes)
    else:
        pool = _loaded_pool(source, subset, split, lengths, strategy)
    kept = [e for e in pool
            if (strategy == "mixed" or e.strategy == strategy) and (lengths is None or e.steps in lengths)]
    if not kept:
        available = Counter((e.strategy, e.steps) for e in pool)
        listing = ", ".join(f"{c} {s} with {n} steps" for (s, n), c in sorted(available.items())) or "none"
        raise DataError(f"no episodes with strategy {strategy} and steps {list(lengths) if lengths else 'any'} "
                        f"(available: {listing})")
    return kept


def _synthetic_pool(lengths: Sequence[int], strategy: str, split: str, seed: int, count: int) -> list[Episode]:
    from rxmrl.data.synthetic import SPLITS, synthesize_episodes

    if split not in SPLITS:
        raise ConfigError(f"synthetic episodes have splits {', '.join(SPLITS)}, not '{split}'")
    if count < 1:
        raise ConfigError(f"synthetic_episodes must be >= 1, got {count}")
    pool = []
    for n in lengths:
        for s in _strategies_for(n, strategy):
            pool += synthesize_episodes(count, steps=n, strategy=s, split=split, seed=seed)
    if not pool:
        raise ConfigError(f"strategy '{strategy}' has no episodes of {list(lengths)} steps "
                          f"(single has exactly 1 follow-up; cumulative and long_range 2 or more)")
    return pool


def _strategies_for(steps: int, strategy: str) -> list[str]:
    valid = ["single"] if steps == 1 else ["cumulative", "long_range"]
    return valid if strategy == "mixed" else [s for s in valid if s == strategy]


def _loaded_pool(source: str | Path, subset: str | None, split: str, lengths: tuple[int, ...] | None,
                 strategy: str) -> list[Episode]:
    from rxmrl.data.loader import load_episodes
    from rxmrl.data.sources import list_splits, list_subsets

    if subset is not None:
        return load_episodes(source, subset, split)
    subsets = list_subsets(source)
    if len(subsets) == 1:
        return load_episodes(source, subsets[0], split)
    chosen = [name for name in subsets if name is not None and _subset_matches(name, lengths, strategy)]
    if not chosen:
        raise DataError(f"{source}: no subset named steps-N / steps-N-lr matches steps {list(lengths or [])} and "
                        f"strategy {strategy} (subsets: {', '.join(map(str, subsets))}); pass subset=")
    with_split = [name for name in chosen if split in list_splits(source, name)]
    if not with_split:
        raise DataError(f"{source}: none of the subsets {', '.join(chosen)} has a split '{split}'")
    return [e for name in with_split for e in load_episodes(source, name, split)]


def _subset_matches(name: str, lengths: tuple[int, ...] | None, strategy: str) -> bool:
    match = _SUBSET_NAME.fullmatch(name)
    if not match:
        return False
    n = int(match.group(1))
    tag = "long_range" if match.group(2) else ("single" if n == 1 else "cumulative")
    return (lengths is None or n in lengths) and strategy in ("mixed", tag)
