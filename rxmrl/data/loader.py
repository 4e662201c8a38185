"""Load episodes (and supervised pairs and stories) from a source, checking every row.

`load_episodes` raises a `DataError` naming the file and row of the first bad row, or, with
`skip_invalid=True`, leaves bad rows out and warns how many. `read_episodes` never raises for a row: it
returns the episodes and every row error, which is what `rxmrl data check` prints.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rxmrl.data.episode import Episode, Interaction
from rxmrl.data.rows import RowError, default_strategy_for, episode_from_row, interaction_from_row, text_from_row
from rxmrl.data.sources import Table, list_splits, list_subsets, open_table, resolve_subset
from rxmrl.errors import DataError

T = TypeVar("T")
_STEPS_IN_NAME = re.compile(r"steps-(\d+)")


@dataclass
class LoadResult:
    """What one table held: the valid items and one message per bad row (file, row number, field)."""

    label: str
    items: list = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rows: int = 0


ROW_KINDS = ("episodes", "pairs", "stories")


def read_episodes(source: str | Path, subset: str | None = None, split: str = "train") -> LoadResult:
    """All valid episodes of `subset`/`split` and a message for each bad row; raises only if unreadable."""
    return read_table(source, subset, split, "episodes")


def read_table(source: str | Path, subset: str | None, split: str, kind: str) -> LoadResult:
    """Rows of one kind (`ROW_KINDS`: episodes, query/answer pairs, or stories), valid ones and errors."""
    subset = resolve_subset(source, subset)
    table = open_table(source, subset, split)
    if kind == "episodes":
        default = default_strategy_for(subset, _steps_in_name(subset))
        return _read(table, lambda row: episode_from_row(row, default))
    if kind == "pairs":
        return _read(table, interaction_from_row)
    if kind == "stories":
        return _read(table, text_from_row)
    raise ValueError(f"kind must be one of {ROW_KINDS}, not {kind!r}")


def load_episodes(source: str | Path, subset: str | None = None, split: str = "train", *,
                  skip_invalid: bool = False) -> list[Episode]:
    """Episodes of a Hub id, a local snapshot, or a `.jsonl`/`.json`/`.parquet` file (TinyStories-MRL rows).

    A bad row raises `DataError` naming the file and the row; `skip_invalid=True` drops bad rows instead and
    warns with their count.
    """
    return _checked(read_episodes(source, subset, split), skip_invalid)


def load_interactions(source: str | Path, subset: str | None = None, split: str = "train", *,
                      skip_invalid: bool = False) -> list[Interaction]:
    """Single query/answer pairs (for the supervised stages): rows with `query` and `answer`."""
    return _checked(read_table(source, subset, split, "pairs"), skip_invalid)


def load_texts(source: str | Path, subset: str | None = None, split: str = "train", *,
               skip_invalid: bool = False) -> list[str]:
    """Plain stories (for language-model pre-training): rows with a `text` column."""
    return _checked(read_table(source, subset, split, "stories"), skip_invalid)


def iter_all_texts(source: str | Path, split: str | None = "train") -> Iterator[str]:
    """Every string of every subset (queries, answers, follow-ups, stories), e.g. to train a tokenizer.

    `split=None` reads every split; a plain file has no splits and is read whole.
    """
    for subset in list_subsets(source):
        splits = list_splits(source, subset)
        chosen = splits if split is None else [s for s in splits if s == split]
        tables = [open_table(source, subset, s) for s in chosen] if splits else [open_table(source, subset)]
        for table in tables:
            for _, _, row in table.read():
                if isinstance(row, dict):
                    yield from _strings(row)


def _read(table: Table, parse: Callable[[Any], T]) -> LoadResult:
    result = LoadResult(label=table.label)
    for file_label, number, row in table.read():
        result.rows += 1
        unit = "line" if file_label.endswith(".jsonl") else "row"
        try:
            if isinstance(row, RowError):
                raise row
            result.items.append(parse(row))
        except RowError as e:
            result.errors.append(f"{file_label}: {unit} {number}: {e}")
    return result


def _checked(result: LoadResult, skip_invalid: bool) -> list:
    if result.errors and not skip_invalid:
        more = f" (and {len(result.errors) - 1} more bad rows)" if len(result.errors) > 1 else ""
        raise DataError(f"{result.errors[0]}{more}; pass skip_invalid=True to leave bad rows out")
    if result.errors:
        warnings.warn(f"{result.label}: skipped {len(result.errors)} of {result.rows} rows that are invalid; "
                      f"first: {result.errors[0]}", stacklevel=3)
    if not result.items:
        raise DataError(f"{result.label}: no valid rows")
    return result.items


def _steps_in_name(subset: str | None) -> int | None:
    match = _STEPS_IN_NAME.match(subset or "")
    return int(match.group(1)) if match else None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in ("strategy", "facts"):  # labels, not language
                yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
