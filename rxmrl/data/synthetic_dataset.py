"""The synthetic dataset as `rxmrl data synth` writes it: TinyStories-MRL's subsets, layout and schema.

Subsets: `steps-1` (single), `steps-N` (cumulative) and `steps-N-lr` (long-range) for N >= 2, each with
`train`, `validation` (and optionally `test`) splits of held-out combinations; plus, on request, `stories`
(a `text` column) and `qa` (`query`, `answer`) for the supervised stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rxmrl.data.rows import episode_to_row
from rxmrl.data.snapshot import write_snapshot
from rxmrl.data.synthetic import synthesize_episodes, synthesize_pairs, synthesize_stories

STORIES_SUBSET = "stories"
PAIRS_SUBSET = "qa"


def subset_plan(steps: Sequence[int], long_range: bool = True) -> list[tuple[str, str, int]]:
    """(subset name, strategy, steps) for every subset of episodes, in the order they are written."""
    plan = []
    for n in sorted(set(steps)):
        if n < 1:
            raise ValueError(f"episode lengths must be >= 1, got {n}")
        if n == 1:
            plan.append(("steps-1", "single", 1))
            continue
        plan.append((f"steps-{n}", "cumulative", n))
        if long_range:
            plan.append((f"steps-{n}-lr", "long_range", n))
    return plan


def synthetic_tables(steps: Sequence[int], episodes: int, *, seed: int = 0, eval_episodes: int | None = None,
                     test_episodes: int = 0, long_range: bool = True, stories: int = 0,
                     pairs: int = 0) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """subset -> split -> rows. Evaluation splits default to a tenth of `episodes` (at least 1)."""
    eval_episodes = max(1, episodes // 10) if eval_episodes is None else eval_episodes
    counts = {"train": episodes, "validation": eval_episodes, "test": test_episodes}

    def per_split(total: int) -> dict[str, int]:
        scaled = {"train": total, "validation": max(1, total // 10) if total else 0,
                  "test": max(1, total // 10) if total and test_episodes else 0}
        return {split: n for split, n in scaled.items() if n > 0}

    tables: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for subset, strategy, n in subset_plan(steps, long_range):
        tables[subset] = {split: [episode_to_row(e) for e in synthesize_episodes(
            count, steps=n, strategy=strategy, split=split, seed=seed)] for split, count in counts.items() if count > 0}
    if stories:
        tables[STORIES_SUBSET] = {split: [{"text": t} for t in synthesize_stories(count, split=split, seed=seed)]
                                  for split, count in per_split(stories).items()}
    if pairs:
        tables[PAIRS_SUBSET] = {split: [{"query": p.query, "answer": p.answer}
                                        for p in synthesize_pairs(count, split=split, seed=seed)]
                                for split, count in per_split(pairs).items()}
    return tables


def write_synthetic_dataset(out: str | Path, steps: Sequence[int], episodes: int, *, seed: int = 0,
                            eval_episodes: int | None = None, test_episodes: int = 0, long_range: bool = True,
                            stories: int = 0, pairs: int = 0, fmt: str = "parquet",
                            overwrite: bool = False) -> Path:
    tables = synthetic_tables(steps, episodes, seed=seed, eval_episodes=eval_episodes, test_episodes=test_episodes,
                              long_range=long_range, stories=stories, pairs=pairs)
    description = (
        f"Synthetic memory-retention episodes written by rxmrl (seed {seed}, {episodes} training episodes per "
        f"subset). Rows follow ReactiveAI/TinyStories-MRL: `query`/`answer` is the interaction to remember, "
        f"`interactions` the follow-ups; `strategy` names the curriculum strategy and `facts` (JSON) the ground "
        f"truth. Evaluation splits use (name, object, colour, place) combinations absent from train."
    )
    return write_snapshot(out, tables, title="rxmrl synthetic MRL episodes", description=description, fmt=fmt,
                          overwrite=overwrite)
