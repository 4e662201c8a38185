"""A stage's training and held-out examples, tokenized: stories (joint-lm), pairs (sft), episodes (memory).

`source = "synthetic"` draws them from the in-memory generator (`rxmrl.data.synthetic`): the held-out split
uses story fact combinations that never occur in training. Any other source is read with the loaders of
`rxmrl.data` (a Hub id, a local snapshot, or a file), whose errors name the file and row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rxmrl.errors import ConfigError
from rxmrl.train.warmstart.batches import (
    TokenizedExamples, tokenize_episodes, tokenize_pairs, tokenize_stories,
)
from rxmrl.train.warmstart.config import WarmStartData

KIND = {"joint-lm": "stories", "sft": "pairs", "memory-attention": "episodes", "smat": "episodes"}


def raw_examples(stage: str, data: WarmStartData, *, held_out: bool) -> list[Any]:
    """Untokenized examples: `str` stories, `Interaction` pairs or `Episode`s."""
    kind = KIND[stage]
    count = data.eval_examples if held_out else data.examples
    source, split = data.source_and_split(held_out=held_out)
    if source == "synthetic":
        return _synthetic(kind, count, data, split=split)
    from rxmrl.data import load_episodes, load_interactions, load_texts

    loader = {"stories": load_texts, "pairs": load_interactions, "episodes": load_episodes}[kind]
    items = loader(source, data.subset, split)
    return items[:count] if count > 0 else items


def _synthetic(kind: str, count: int, data: WarmStartData, *, split: str) -> list[Any]:
    from rxmrl.data.synthetic import SPLITS, synthesize_episodes, synthesize_pairs, synthesize_stories

    if split not in SPLITS:
        key = "data.eval_split" if split == data.eval_split else "data.split"
        raise ConfigError(f"{key}: synthetic data has the splits {', '.join(SPLITS)}, not '{split}'")
    if count < 1:
        raise ConfigError("data.examples: synthetic data needs a number of examples to generate (at least 1)")
    if kind == "stories":
        return synthesize_stories(count, split=split, seed=data.seed)
    if kind == "pairs":
        return synthesize_pairs(count, split=split, seed=data.seed)
    return synthesize_episodes(count, steps=data.steps, strategy=data.strategy, split=split, seed=data.seed)


def tokenized_examples(stage: str, data: WarmStartData, tokenizer: Any, max_seq_len: int, *, held_out: bool
                       ) -> TokenizedExamples:
    items = raw_examples(stage, data, held_out=held_out)
    kind = KIND[stage]
    if kind in ("stories", "pairs"):
        max_len = data.max_len or max_seq_len
        if max_len > max_seq_len:
            raise ConfigError(f"data.max_len: {max_len} is longer than the model's max_seq_len ({max_seq_len})")
        if kind == "stories":
            return tokenize_stories(tokenizer, items, max_len)
        return tokenize_pairs(tokenizer, items, max_len)
    if data.max_query_len + data.max_answer_len > max_seq_len:
        raise ConfigError(f"data.max_query_len + data.max_answer_len: {data.max_query_len} + {data.max_answer_len} "
                          f"is longer than the model's max_seq_len ({max_seq_len})")
    return tokenize_episodes(tokenizer, items, data.max_query_len, data.max_answer_len)


def tokenizer_corpus(data: WarmStartData, examples: int = 2000) -> Iterator[str]:
    """Texts to train a tokenizer on that covers every stage (stories, pairs and episodes alike)."""
    if data.source != "synthetic":
        from rxmrl.data import iter_all_texts

        yield from iter_all_texts(data.source, split=data.split)
        return
    from rxmrl.data.synthetic import synthesize_episodes, synthesize_pairs, synthesize_stories

    yield from synthesize_stories(examples, split="train", seed=data.seed)
    for pair in synthesize_pairs(examples, split="train", seed=data.seed):
        yield from (pair.query, pair.answer)
    for strategy, steps in (("single", 1), ("cumulative", 4), ("long_range", 4)):
        for episode in synthesize_episodes(examples // 3, steps=steps, strategy=strategy, seed=data.seed):
            for interaction in episode.interactions:
                yield from (interaction.query, interaction.answer)
