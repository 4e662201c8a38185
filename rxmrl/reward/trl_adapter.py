"""Adapters between rxmrl rewards and TRL reward functions, both ways.

TRL's `GRPOTrainer` (trl 1.16) calls each item of `reward_funcs` as
    fn(prompts=..., completions=..., completion_ids=..., **columns, trainer_state=..., log_extra=...,
       log_metric=...) -> list[float | None]
where `prompts` and `completions` are plain strings, or, for conversational datasets, lists of
`{"role", "content"}` messages (a completion is `[{"role": "assistant", "content": ...}]`), `completion_ids`
are lists of token ids, and every other dataset column arrives as a list, one value per completion. It names
the function by `__name__`.

- `to_trl_reward(spec)`: any rxmrl reward as a TRL reward function. It reads the reference answer, the
  remembered interactions (a list of `{query, answer}` per row), facts and mode from dataset columns (names
  configurable); the query is the `query` column if present, else the last user message of the prompt. When
  TRL passes `log_metric`, the mean of each component is logged as `<name>/<component>`.
- `from_trl_reward(fn)`: a TRL-style function as an rxmrl reward. It is called with `prompts` (the
  queries), `completions` (the answers), `completion_ids` (the batch's `generated_ids` without padding, or
  word ids when the batch has none) and the columns `query`, `reference`, `remember` (lists of
  `{query, answer}` dicts), `facts`, `mode`, `step`. A function without `**kwargs` gets only the
  parameters it names. `None` in its result counts as non-finite (an error naming it).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

from rxmrl.data.episode import Interaction
from rxmrl.errors import RewardError
from rxmrl.reward.base import RewardBatch
from rxmrl.reward.bleu import sequence_lengths
from rxmrl.reward.text import bleu_tokens, tokens_to_ids


def message_text(value: Any, *, role: str) -> str:
    """Plain text of a TRL prompt or completion: a string, or conversational messages.

    For role "user" the last user message is taken (the question being answered); for "assistant" the
    assistant messages are joined. Content given as parts (`[{"type": "text", "text": ...}]`) is joined too.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and all(isinstance(m, dict) for m in value):
        chosen = [m for m in value if m.get("role") == role]
        if role == "user":
            chosen = chosen[-1:] or list(value[-1:])
        return "\n".join(_content_text(m.get("content", "")) for m in chosen)
    raise RewardError(f"expected a string or a list of chat messages, got {type(value).__name__}")


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
    return str(content)


def _interactions(value: Any, row: int) -> list[Interaction]:
    """A `remember` cell: None, one `{query, answer}`, or a list of them (or of `Interaction`)."""
    if value is None:
        return []
    items = [value] if isinstance(value, (dict, Interaction)) else list(value)
    out = []
    for item in items:
        if isinstance(item, Interaction):
            out.append(item)
        elif isinstance(item, dict) and isinstance(item.get("query"), str) and isinstance(item.get("answer"), str):
            out.append(Interaction(item["query"], item["answer"]))
        else:
            raise RewardError(f"row {row}: 'remember' items must be {{query, answer}} objects, got {item!r}")
    return out


def _facts(value: Any) -> dict[str, str] | None:
    """A `facts` cell. Arrow/`datasets` structs fill absent slots with None; those are dropped."""
    if not value:
        return None
    facts = {k: v for k, v in dict(value).items() if v is not None}
    return facts or None


class TrlRewardFunction:
    """An rxmrl reward callable the way TRL calls reward functions (see the module docstring)."""

    def __init__(self, reward: Any, *, name: str | None = None, query_column: str = "query",
                 reference_column: str = "reference", remember_column: str = "remember",
                 facts_column: str = "facts", mode_column: str = "mode", step_column: str = "step",
                 log_components: bool = True) -> None:
        from rxmrl.reward.registry import get_reward

        self.reward = get_reward(reward)
        self.__name__ = name or self.reward.name
        self.columns = dict(query=query_column, reference=reference_column, remember=remember_column,
                            facts=facts_column, mode=mode_column, step=step_column)
        self.log_components = log_components

    def __call__(self, prompts: list[Any], completions: list[Any], completion_ids: Any = None,
                 **kwargs: Any) -> list[float]:
        size = len(completions)
        col = self.columns
        if kwargs.get(col["reference"]) is None:
            raise RewardError(
                f"TRL reward '{self.__name__}': the dataset has no '{col['reference']}' column "
                f"(the reference answer); columns passed: {sorted(k for k in kwargs if k not in _TRL_EXTRAS)}"
            )
        queries = kwargs.get(col["query"]) or [message_text(p, role="user") for p in prompts]
        remember = kwargs.get(col["remember"]) or [None] * size
        facts = kwargs.get(col["facts"])
        steps = kwargs.get(col["step"]) or []
        modes = kwargs.get(col["mode"]) or []
        batch = RewardBatch(
            query=[str(q) for q in queries],
            generated=[message_text(c, role="assistant") for c in completions],
            reference=[str(r) for r in kwargs[col["reference"]]],
            remember=[_interactions(cell, row) for row, cell in enumerate(remember)],
            facts=[_facts(f) for f in facts] if facts is not None else [],
            step=[int(s) for s in steps] if all(s is not None for s in steps) else [],
            mode=[str(m) if m else "standard" for m in modes],
        )
        out = self.reward(batch)
        log_metric = kwargs.get("log_metric")
        if self.log_components and callable(log_metric):
            for component, values in out.components.items():
                log_metric(f"{self.__name__}/{component}", float(values.mean()))
        return [float(v) for v in out.total.tolist()]


_TRL_EXTRAS = ("trainer_state", "log_extra", "log_metric", "environments")


def to_trl_reward(reward: Any, **options: Any) -> TrlRewardFunction:
    """Any reward spec `get_reward` accepts, as an item for TRL's `reward_funcs` (options: see the class)."""
    return TrlRewardFunction(reward, **options)


class TrlStyleReward:
    """A TRL-style function `fn(prompts, completions, **kwargs) -> list[float]` as an rxmrl reward."""

    def __init__(self, fn: Callable[..., Sequence[float | None]], *, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        params = inspect.signature(fn).parameters
        self._takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self._params = set(params)

    def __call__(self, batch: RewardBatch) -> list[float]:
        size = len(batch)
        kwargs = dict(
            prompts=list(batch.query),
            completions=list(batch.generated),
            completion_ids=_completion_ids(batch),
            query=list(batch.query),
            reference=list(batch.reference),
            remember=[[{"query": it.query, "answer": it.answer} for it in group] for group in batch.remember],
            facts=[batch.facts_at(i) for i in range(size)],
            mode=[batch.mode_at(i) for i in range(size)],
            step=list(batch.step) if batch.step else [None] * size,
        )
        if not self._takes_any:
            kwargs = {k: v for k, v in kwargs.items() if k in self._params}
        result = self.fn(**kwargs)
        if result is None:
            raise RewardError(f"reward '{self.name}' returned None; expected a list of floats")
        return [math.nan if v is None else v for v in result]


def from_trl_reward(fn: Callable[..., Sequence[float | None]], *, name: str | None = None) -> TrlStyleReward:
    return TrlStyleReward(fn, name=name)


def _completion_ids(batch: RewardBatch) -> list[list[int]]:
    if batch.generated_ids is not None:
        lengths = sequence_lengths(batch.generated_ids, batch.pad_id).tolist()
        return [row[:n] for row, n in zip(batch.generated_ids.tolist(), lengths)]
    (ids,) = tokens_to_ids([bleu_tokens(t) for t in batch.generated])
    lengths = sequence_lengths(ids, 0).tolist()
    return [row[:n] for row, n in zip(ids.tolist(), lengths)]
