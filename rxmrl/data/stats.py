"""Summary statistics of a list of episodes, as `rxmrl data check` prints them (lengths in words)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rxmrl.data.episode import Episode


def summarize_episodes(episodes: Sequence[Episode]) -> dict[str, Any]:
    """Counts, follow-ups per episode, strategies, and word-length statistics of each text field."""
    follow_ups = [e.steps for e in episodes]
    return {
        "episodes": len(episodes),
        "follow_ups_per_episode": _spread(follow_ups) | {"counts": dict(sorted(Counter(follow_ups).items()))},
        "strategies": dict(sorted(Counter(e.strategy for e in episodes).items())),
        "with_facts": sum(e.facts is not None for e in episodes),
        "words": {
            "first_query": _spread([_words(e.first.query) for e in episodes]),
            "first_answer": _spread([_words(e.first.answer) for e in episodes]),
            "follow_up_query": _spread([_words(i.query) for e in episodes for i in e.follow_ups]),
            "follow_up_answer": _spread([_words(i.answer) for e in episodes for i in e.follow_ups]),
        },
    }


def format_summary(label: str, summary: dict[str, Any]) -> str:
    f = summary["follow_ups_per_episode"]
    counts = ", ".join(f"{k}: {v}" for k, v in f["counts"].items())
    lines = [
        f"{label}",
        f"  episodes: {summary['episodes']} ({summary['with_facts']} with facts)",
        f"  follow-ups per episode: min {f['min']}, median {f['median']:g}, max {f['max']} ({counts})",
        "  strategies: " + ", ".join(f"{k} {v}" for k, v in summary["strategies"].items()),
        "  words (min / mean / median / max):",
    ]
    for field, s in summary["words"].items():
        lines.append(f"    {field:<17} {s['min']} / {s['mean']:.1f} / {s['median']:g} / {s['max']}")
    return "\n".join(lines)


def _words(text: str) -> int:
    return len(text.split())


def _spread(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "mean": 0.0, "median": 0.0, "max": 0}
    return {"min": min(values), "mean": statistics.fmean(values), "median": statistics.median(values),
            "max": max(values)}
