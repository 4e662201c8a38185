"""The synthetic generator: determinism, held-out combinations, strategies, and facts that a reward can trust."""

import random
import re

import pytest

from rxmrl.data import FACT_VALUES, VALUE_TO_SLOT
from rxmrl.data.distractors import DISTRACTORS
from rxmrl.data.story_templates import INTRODUCTIONS, STORY_SLOTS, TOPICS, words_for
from rxmrl.data.synthetic import (
    COMBINATION_SLOTS, combination_split, synthesize_episodes, synthesize_pairs, synthesize_stories,
)

WORD = re.compile(r"[a-z]+")


def fact_words(text):
    """(slot, value) for every fact value written in `text` as a word."""
    return {(VALUE_TO_SLOT[w], w) for w in WORD.findall(text.lower()) if w in VALUE_TO_SLOT}


def episodes_of_every_kind(count=40, split="train", seed=0):
    kinds = [("single", 1), ("cumulative", 2), ("cumulative", 5), ("cumulative", 16), ("long_range", 2),
             ("long_range", 8)]
    return [e for s, n in kinds for e in synthesize_episodes(count, steps=n, strategy=s, split=split, seed=seed)]


def test_same_seed_same_episodes_and_prefix_stable():
    a = synthesize_episodes(30, steps=4, strategy="cumulative", seed=7)
    assert a == synthesize_episodes(30, steps=4, strategy="cumulative", seed=7)
    assert synthesize_episodes(10, steps=4, strategy="cumulative", seed=7) == a[:10]  # episode i is fixed
    assert a != synthesize_episodes(30, steps=4, strategy="cumulative", seed=8)
    assert synthesize_stories(5, seed=1) == synthesize_stories(5, seed=1)
    assert synthesize_pairs(5, seed=1) == synthesize_pairs(5, seed=1)


def test_held_out_splits_use_combinations_absent_from_train():
    combos = {}
    for split in ("train", "validation", "test"):
        episodes = episodes_of_every_kind(count=60, split=split)
        combos[split] = {tuple(e.facts[s] for s in COMBINATION_SLOTS) for e in episodes}
        assert all(combination_split(e.facts) == split for e in episodes)
    assert combos["train"].isdisjoint(combos["validation"])
    assert combos["train"].isdisjoint(combos["test"])
    assert combos["validation"].isdisjoint(combos["test"])
    # the split is a partition of all combinations, not a partition of single values
    names = {c[0] for c in combos["validation"]}
    assert names <= {c[0] for c in combos["train"]}


def test_combination_split_is_roughly_80_10_10():
    rng = random.Random(0)
    draws = [combination_split({s: rng.choice(FACT_VALUES[s]) for s in COMBINATION_SLOTS}) for _ in range(4000)]
    assert 0.75 < draws.count("train") / 4000 < 0.85
    assert 0.07 < draws.count("validation") / 4000 < 0.13


@pytest.mark.parametrize("strategy, steps", [("single", 1), ("cumulative", 2), ("cumulative", 16),
                                             ("long_range", 2), ("long_range", 9)])
def test_strategies_have_the_requested_number_of_follow_ups(strategy, steps):
    episodes = synthesize_episodes(20, steps=steps, strategy=strategy)
    assert all(e.steps == steps and e.strategy == strategy for e in episodes)


@pytest.mark.parametrize("strategy, steps", [("single", 2), ("cumulative", 1), ("long_range", 1), ("mixed", 2)])
def test_invalid_strategy_and_length_combinations_are_refused(strategy, steps):
    with pytest.raises(ValueError):
        synthesize_episodes(1, steps=steps, strategy=strategy)


def test_every_fact_word_in_every_text_is_the_episodes_own_value():
    """A fact word anywhere is the episode's value for its slot: no stray or conflicting fact words."""
    for e in episodes_of_every_kind():
        for interaction in e.interactions:
            for slot, value in fact_words(f"{interaction.query} {interaction.answer}"):
                assert e.facts.get(slot) == value, (slot, value, interaction)


def test_the_story_states_its_facts_in_30_to_60_words_and_the_request_states_none():
    for e in episodes_of_every_kind():
        assert 30 <= len(e.first.answer.split()) <= 60
        story_facts = {(s, v) for s, v in e.facts.items() if s in STORY_SLOTS}
        assert story_facts <= fact_words(e.first.answer)
        assert fact_words(e.first.query) == set()


def test_answers_cannot_be_copied_from_their_questions():
    """No follow-up question holds a value its reference answer states; every non-distractor answer states
    at least one fact, and every stated fact was known before the question (story or earlier questions)."""
    for e in episodes_of_every_kind():
        known = fact_words(e.first.answer)
        for f in e.follow_ups:
            stated = fact_words(f.answer)
            assert stated.isdisjoint(fact_words(f.query)), f
            assert stated <= known, (f, known)
            if e.strategy != "long_range" or f is e.follow_ups[-1]:
                assert stated, f
            known |= fact_words(f.query)


def test_cumulative_steps_build_on_facts_told_by_the_previous_question():
    told_then_asked = 0
    for e in synthesize_episodes(60, steps=6, strategy="cumulative"):
        for previous, current in zip(e.follow_ups, e.follow_ups[1:]):
            told = {slot for slot, _ in fact_words(previous.query)}
            if told:
                assert told & {slot for slot, _ in fact_words(current.answer)}, (previous, current)
                told_then_asked += 1
    assert told_then_asked >= 60  # 6 steps tell facts at steps 1, 3 and 5


def test_long_range_middle_is_unrelated_and_the_end_returns_to_the_story():
    distractor_answers = {answer for _, answer in DISTRACTORS}
    for e in synthesize_episodes(40, steps=6, strategy="long_range"):
        for f in e.follow_ups[:-1]:
            assert f.answer in distractor_answers and fact_words(f.query + f.answer) == set()
        last = e.follow_ups[-1]
        assert fact_words(last.answer) and fact_words(last.answer) <= fact_words(e.first.answer)


def test_each_topic_answer_states_exactly_its_slots():
    facts = {slot: values[0] for slot, values in FACT_VALUES.items()}
    words = words_for(facts)
    for topic in TOPICS:
        assert fact_words(topic.answer.format(**words)) == {(s, facts[s]) for s in topic.slots}, topic.name
        for question in topic.questions:
            assert fact_words(question) == set(), question
    for slot, sentences in INTRODUCTIONS.items():
        for sentence in sentences:
            assert {s for s, _ in fact_words(sentence.format(**words))} == {slot}


def test_supervised_stories_and_pairs():
    stories = synthesize_stories(20, split="validation", seed=3)
    assert len(stories) == 20 and all(30 <= len(s.split()) <= 60 for s in stories)
    pairs = synthesize_pairs(60, seed=3)
    with_context = [p for p in pairs if len(p.query.split()) > 30]  # story + question in the query
    assert with_context and all(fact_words(p.answer) <= fact_words(p.query) for p in with_context)
    distractors = {q for qs, _ in DISTRACTORS for q in qs}
    assert any(p.query in distractors for p in pairs)
