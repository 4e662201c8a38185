"""The reward audit's variant builders (`rxmrl.reward.variants`): pure and deterministic."""

from rxmrl.data.episode import Interaction
from rxmrl.reward.claims import extract_claims
from rxmrl.reward.variants import (HOSTILE, build_variants, empty, keyword_spam, negation, paraphrase,
                                   parrot_memory, parrot_query, repetition, truncation, unrelated, value_swap)

STORY = Interaction("Tell me about Lily.", "Lily had a big red ball. She took it to the park with Bella.")
QUERY = "What did Lily have?"
REFERENCE = "Lily had a big red ball."


def test_paraphrase_changes_words_not_claims():
    assert paraphrase(REFERENCE) == "As I remember it, Lily owned a big red ball."
    assert paraphrase("She took it home.") == "As I remember it, she brought it home."
    assert extract_claims(paraphrase(REFERENCE)) == extract_claims(REFERENCE)
    assert paraphrase("") == ""


def test_value_swap_replaces_each_recalled_value_with_one_the_memory_never_says():
    assert value_swap(REFERENCE, QUERY, [STORY]) == "Lily had a small blue kite."  # lily is given: kept
    assert value_swap("She took it to the park with Bella.", "Where did Lily go?", [STORY]) == \
        "She took it to the garden with Rosa."
    assert value_swap("There were three square boxes.", "How many?", [STORY]) == "There were two round boxes."
    assert value_swap(REFERENCE, QUERY, [STORY]) == value_swap(REFERENCE, QUERY, [STORY])


def test_negation():
    assert negation("The kite was red.") == "The kite was not red."
    assert negation("She ran home.") == "It is not true that she ran home."
    assert negation("Lily ran home.") == "It is not true that Lily ran home."


def test_parrots_spam_repetition_truncation_unrelated_empty():
    assert parrot_memory([STORY, Interaction("q", "More.")]) == STORY.answer + " More."
    assert parrot_query(QUERY) == QUERY
    assert keyword_spam([STORY]) == "tell lily big red ball took park bella"
    assert repetition("Hi.", times=3) == "Hi. Hi. Hi."
    assert truncation(REFERENCE) == "Lily had a"
    assert truncation("Yes.") == "Yes"
    assert unrelated("The train was late.") == "The train was late."
    assert empty() == ""


def test_build_variants_names_every_variant_in_order():
    variants = build_variants(QUERY, REFERENCE, [STORY], "The train was late.")
    assert list(variants) == ["reference", "paraphrase", *HOSTILE]
    assert variants["reference"] == REFERENCE and variants["unrelated"] == "The train was late."
