"""One table row <-> one `Episode`, with the TinyStories-MRL schema checked field by field.

A row holds `query` and `answer` (the interaction to remember) and `interactions`, a non-empty list of
`{query, answer}` follow-ups. Optional columns written by the synthetic generator: `strategy` (one of
`STRATEGIES`) and `facts` (slot -> value, as a JSON object, a struct, or a JSON string; `None` when unknown;
null slots of a struct are left out).

`RowError` carries what is wrong with one row; the loader adds the file and row number to it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rxmrl.data.episode import STRATEGIES, Episode, Interaction


class RowError(ValueError):
    """A row does not follow the schema; the message names the field (the caller adds file and row)."""


def episode_from_row(row: Any, default_strategy: str) -> Episode:
    """Check one row and build its `Episode`; `default_strategy` applies when the row has no `strategy`."""
    if not isinstance(row, Mapping):
        raise RowError(f"expected an object with query, answer and interactions, got {type(row).__name__}")
    first = Interaction(_text(row, "query", "query"), _text(row, "answer", "answer"))
    follow_ups = _follow_ups(row)
    strategy = _strategy(row, default_strategy)
    if strategy == "single" and len(follow_ups) != 1:
        raise RowError(f"strategy 'single' needs exactly 1 follow-up, got {len(follow_ups)}")
    if strategy == "long_range" and len(follow_ups) < 2:
        raise RowError("strategy 'long_range' needs at least 2 follow-ups (unrelated ones, then the recall)")
    return Episode(first=first, follow_ups=follow_ups, strategy=strategy, facts=_facts(row))


def interaction_from_row(row: Any) -> Interaction:
    """A supervised query/answer pair: a row with non-empty `query` and `answer` strings."""
    if not isinstance(row, Mapping):
        raise RowError(f"expected an object with query and answer, got {type(row).__name__}")
    return Interaction(_text(row, "query", "query"), _text(row, "answer", "answer"))


def text_from_row(row: Any) -> str:
    """A plain story: a row with a non-empty `text` string."""
    if not isinstance(row, Mapping):
        raise RowError(f"expected an object with text, got {type(row).__name__}")
    return _text(row, "text", "text")


def episode_to_row(episode: Episode) -> dict[str, Any]:
    """The row that `episode_from_row` reads back to an equal `Episode`; `facts` as a JSON string or None."""
    return {
        "query": episode.first.query,
        "answer": episode.first.answer,
        "interactions": [{"query": i.query, "answer": i.answer} for i in episode.follow_ups],
        "strategy": episode.strategy,
        "facts": None if episode.facts is None else json.dumps(episode.facts, sort_keys=True),
    }


def default_strategy_for(subset: str | None, steps: int | None = None) -> str:
    """Rows without a `strategy` column: TinyStories-MRL names long-range subsets `steps-N-lr`."""
    if subset is not None and subset.endswith("-lr"):
        return "long_range"
    if steps == 1:
        return "single"
    return "cumulative"


def _text(row: Mapping, key: str, label: str) -> str:
    if key not in row or row[key] is None:
        raise RowError(f"missing field '{label}'")
    value = row[key]
    if not isinstance(value, str):
        raise RowError(f"'{label}' must be a string, got {type(value).__name__}")
    if not value.strip():
        raise RowError(f"'{label}' is empty")
    return value


def _follow_ups(row: Mapping) -> tuple[Interaction, ...]:
    if "interactions" not in row or row["interactions"] is None:
        raise RowError("missing field 'interactions'")
    items = row["interactions"]
    # parquet hands back lists; numpy-backed readers may hand back arrays, so accept any non-string sequence
    if isinstance(items, (str, bytes, Mapping)) or not hasattr(items, "__len__"):
        raise RowError(f"'interactions' must be a list of {{query, answer}} objects, got {type(items).__name__}")
    if len(items) == 0:
        raise RowError("'interactions' is empty: an episode needs at least one follow-up")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise RowError(f"'interactions[{i}]' must be an object with query and answer, got {type(item).__name__}")
        out.append(Interaction(_text(item, "query", f"interactions[{i}].query"),
                               _text(item, "answer", f"interactions[{i}].answer")))
    return tuple(out)


def _strategy(row: Mapping, default: str) -> str:
    value = row.get("strategy")
    if value is None:
        return default
    if value not in STRATEGIES:
        raise RowError(f"'strategy' must be one of {', '.join(STRATEGIES)}, got {value!r}")
    return value


def _facts(row: Mapping) -> dict[str, str] | None:
    value = row.get("facts")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise RowError(f"'facts' is not valid JSON: {e}") from None
    if not isinstance(value, Mapping):
        raise RowError(f"'facts' must be an object of slot -> value strings, got {type(value).__name__}")
    facts = {}
    for slot, fact in value.items():
        if fact is None:
            continue  # a struct column (parquet, `datasets`) fills the slots a row lacks with null
        if not isinstance(slot, str) or not isinstance(fact, str) or not fact.strip():
            raise RowError(f"'facts.{slot}' must be a non-empty string, got {fact!r}")
        facts[slot] = fact
    return facts
