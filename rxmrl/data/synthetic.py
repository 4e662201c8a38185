"""Deterministic TinyStories-style episodes with known facts, for training and testing memory retention.

Strategies (the follow-ups after the remembered story):
- `single`: one question about the story.
- `cumulative`: every follow-up stays on the story. Some questions also *tell* a new fact ("Then a friend
  named Bella came to play."); a later question asks about it, so each step builds on the earlier ones.
- `long_range`: unrelated questions (see `distractors.py`), then a last question back to the story.

Held-out splits: each (name, object, colour, place) combination belongs to exactly one of `SPLITS`, by a
stable hash, so validation/test stories never repeat a training combination (each single value is seen in
training; only the combination is new).

Every episode is drawn from its own seed, derived from (seed, split, strategy, steps, index): episode `i` is
the same whether 10 or 10,000 are generated, and in whatever order subsets are written.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter

from rxmrl.data.distractors import DISTRACTORS
from rxmrl.data.episode import Episode, Interaction
from rxmrl.data.facts import FACT_VALUES
from rxmrl.data.story_templates import (
    FILLERS, FIRST_QUERIES, INTRODUCTIONS, RECALL_PREFIXES, RECALL_TOPICS, STORIES, STORY_FEELING, TOPICS, Topic,
    words_for,
)
from rxmrl.seeding import derive_seed

SPLITS = ("train", "validation", "test")
COMBINATION_SLOTS = ("name", "object", "colour", "place")
_HELD_OUT_BUCKETS = {8: "validation", 9: "test"}  # of 10: 80% train, 10% validation, 10% test
_FEELING_IN_STORY = 0.3  # share of stories that also state a feeling
_TOPICS_BY_NAME = {t.name: t for t in TOPICS}


def combination_split(facts: dict[str, str]) -> str:
    """The split that owns this (name, object, colour, place) combination."""
    key = "|".join(facts[slot] for slot in COMBINATION_SLOTS).encode()
    bucket = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % 10
    return _HELD_OUT_BUCKETS.get(bucket, "train")


def check_strategy_steps(strategy: str, steps: int) -> None:
    """`single` has exactly 1 follow-up; `cumulative` and `long_range` have 2 or more."""
    if strategy == "single" and steps != 1:
        raise ValueError(f"strategy 'single' has exactly 1 follow-up, not {steps}")
    if strategy in ("cumulative", "long_range") and steps < 2:
        raise ValueError(f"strategy '{strategy}' needs 2 or more follow-ups, not {steps} (use 'single' for 1)")
    if strategy not in ("single", "cumulative", "long_range"):
        raise ValueError(f"unknown strategy {strategy!r}")


def synthesize_episodes(count: int, *, steps: int, strategy: str, split: str = "train", seed: int = 0) -> list[Episode]:
    """`count` episodes with `steps` follow-ups each; facts drawn from `split`'s combinations."""
    check_strategy_steps(strategy, steps)
    _check_split(split)
    return [synthesize_episode(random.Random(derive_seed(seed, "episode", split, strategy, steps, i)),
                               strategy=strategy, steps=steps, split=split) for i in range(count)]


def synthesize_episode(rng: random.Random, *, strategy: str, steps: int, split: str = "train") -> Episode:
    facts = sample_story_facts(rng, split)
    first = story_interaction(rng, facts)
    if strategy == "single":
        follow_ups = [_ask(rng, rng.choice(_eligible(set(facts))), facts)]
    elif strategy == "cumulative":
        follow_ups = _cumulative_follow_ups(rng, facts, steps)
    else:
        follow_ups = _long_range_follow_ups(rng, facts, steps)
    return Episode(first=first, follow_ups=tuple(follow_ups), strategy=strategy, facts=dict(sorted(facts.items())))


def sample_story_facts(rng: random.Random, split: str) -> dict[str, str]:
    """The story's facts; the (name, object, colour, place) combination is redrawn until it is `split`'s."""
    while True:
        facts = {slot: rng.choice(FACT_VALUES[slot]) for slot in COMBINATION_SLOTS}
        if combination_split(facts) == split:
            break
    facts["animal"] = rng.choice(FACT_VALUES["animal"])
    facts["weather"] = rng.choice(FACT_VALUES["weather"])
    if rng.random() < _FEELING_IN_STORY:
        facts["feeling"] = rng.choice(FACT_VALUES["feeling"])
    return facts


def story_interaction(rng: random.Random, facts: dict[str, str]) -> Interaction:
    """A value-free request and a 30-60 word story stating the facts."""
    words = words_for(facts)
    story = rng.choice(STORIES).format(**words)
    if "feeling" in facts:
        story = f"{story} {STORY_FEELING.format(**words)}"
    return Interaction(rng.choice(FIRST_QUERIES), story)


def synthesize_stories(count: int, *, split: str = "train", seed: int = 0) -> list[str]:
    """Plain stories (no questions) for language-model pre-training."""
    _check_split(split)
    stories = []
    for i in range(count):
        rng = random.Random(derive_seed(seed, "story", split, i))
        stories.append(story_interaction(rng, sample_story_facts(rng, split)).answer)
    return stories


def synthesize_pairs(count: int, *, split: str = "train", seed: int = 0) -> list[Interaction]:
    """Single query/answer pairs for supervised fine-tuning: story requests, unrelated questions, and
    questions asked with the story in the query (reading facts from context, in the answers' style)."""
    _check_split(split)
    pairs = []
    for i in range(count):
        rng = random.Random(derive_seed(seed, "pair", split, i))
        kind = rng.choice(("story", "distractor", "context", "context"))
        if kind == "distractor":
            questions, answer = rng.choice(DISTRACTORS)
            pairs.append(Interaction(rng.choice(questions), answer))
            continue
        facts = sample_story_facts(rng, split)
        story = story_interaction(rng, facts)
        if kind == "story":
            pairs.append(story)
        else:
            asked = _ask(rng, rng.choice(_eligible(set(facts))), facts)
            pairs.append(Interaction(f"{story.answer} {asked.query}", asked.answer))
    return pairs


def _cumulative_follow_ups(rng: random.Random, facts: dict[str, str], steps: int) -> list[Interaction]:
    known = set(facts)
    # which new facts get told is random; they are told in story order (friend, food, stars, feeling)
    missing = [slot for slot in INTRODUCTIONS if slot not in facts]
    chosen = set(rng.sample(missing, min(len(missing), steps // 2)))
    to_introduce = [slot for slot in reversed(missing) if slot in chosen]  # popped from the end
    used: Counter[str] = Counter()
    previous_topic, just_introduced = None, None
    follow_ups = []
    for step in range(1, steps + 1):
        topics = [t for t in _eligible(known) if t.name != previous_topic]
        if just_introduced is not None:
            # build on the previous step: ask about what it told
            topics = [t for t in topics if just_introduced in t.slots] or topics
        fewest = min(used[t.name] for t in topics)
        topic = rng.choice([t for t in topics if used[t.name] == fewest])
        # every other step tells a new fact, while a later step is left to ask about it
        new_slot = to_introduce.pop() if to_introduce and step % 2 == 1 and step < steps else None
        if new_slot is not None:
            facts[new_slot] = rng.choice(FACT_VALUES[new_slot])
            prefix = rng.choice(INTRODUCTIONS[new_slot]).format(**words_for(facts))
        else:
            prefix = rng.choice(FILLERS) if step > 1 else ""
        follow_ups.append(_ask(rng, topic, facts, prefix))
        used[topic.name] += 1
        previous_topic, just_introduced = topic.name, new_slot
        if new_slot is not None:
            known.add(new_slot)
    return follow_ups


def _long_range_follow_ups(rng: random.Random, facts: dict[str, str], steps: int) -> list[Interaction]:
    n = steps - 1
    picks = rng.sample(DISTRACTORS, n) if n <= len(DISTRACTORS) else rng.choices(DISTRACTORS, k=n)
    follow_ups = [Interaction(rng.choice(questions), answer) for questions, answer in picks]
    recall = _TOPICS_BY_NAME[rng.choice(RECALL_TOPICS)]
    follow_ups.append(_ask(rng, recall, facts, rng.choice(RECALL_PREFIXES)))
    return follow_ups


def _eligible(known: set[str]) -> list[Topic]:
    return [t for t in TOPICS if set(t.slots) <= known]


def _ask(rng: random.Random, topic: Topic, facts: dict[str, str], prefix: str = "") -> Interaction:
    question = rng.choice(topic.questions)
    query = f"{prefix} {question}" if prefix else question
    return Interaction(query, topic.answer.format(**words_for(facts)))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"synthetic split must be one of {', '.join(SPLITS)}, not {split!r}")
