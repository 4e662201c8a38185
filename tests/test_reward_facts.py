"""Fact recall, content-word recall, memory overlap and penalties against hand-computed values."""

import math

import pytest

from rxmrl.data.episode import Interaction
from rxmrl.reward.fact_recall import content_recall, expected_facts, memory_overlap, score_facts
from rxmrl.reward.penalties import length_penalty, repetition_rate
from rxmrl.reward.text import content_words, sentences, words

STORY = Interaction(
    "Tell me a story about a girl and her kite.",
    "Once upon a time, a girl named Lily had a red kite. One windy day she took her kite to the park with "
    "her dog. Her friend Bella came too.",
)
FACTS = {"name": "lily", "object": "kite", "colour": "red", "weather": "windy", "place": "park",
         "animal": "dog", "friend": "bella"}
QUESTION = "What colour was Lily's kite?"
REFERENCE = "Lily's kite was red."


def test_text_normalisation():
    assert words("Lily’s KITE, was red!") == ["lily", "kite", "was", "red"]
    assert content_words("The kite was red and she was happy") == ["kite", "red", "happy"]
    assert sentences("It was red. She smiled!\nThe end") == ["It was red.", "She smiled!", "The end"]


def test_expected_facts_are_those_the_reference_states():
    assert expected_facts(FACTS, REFERENCE) == {"name": "lily", "object": "kite", "colour": "red"}


def test_correct_answer_scores_full_marks_and_question_values_are_given():
    # lily and kite are in the question: given, so only colour is scored.
    s = score_facts("Lily's kite was red.", REFERENCE, QUESTION, FACTS)
    assert (s.precision, s.recall, s.f1, s.contradiction) == (1.0, 1.0, 1.0, 0.0)
    assert s.scored == ("red",) and s.stated == ("red",)
    # Echoing the question recalls nothing.
    echo = score_facts("Lily's kite.", REFERENCE, QUESTION, FACTS)
    assert (echo.precision, echo.recall, echo.f1) == (0.0, 0.0, 0.0)


def test_wrong_value_contradicts():
    s = score_facts("Lily's kite was blue.", REFERENCE, QUESTION, FACTS)
    assert (s.precision, s.recall, s.f1, s.contradiction) == (0.0, 0.0, 0.0, 1.0)
    assert s.contradicting == ("blue",)


def test_keyword_spam_hand_computed():
    # stated (question words lily/kite are neutral): red, blue, park, dog -> correct {red}
    s = score_facts("red blue park dog lily kite", REFERENCE, QUESTION, FACTS)
    assert s.stated == ("blue", "dog", "park", "red")
    assert s.precision == pytest.approx(1 / 4)
    assert s.recall == 1.0
    assert s.f1 == pytest.approx(2 * 0.25 * 1 / 1.25)
    assert s.contradiction == 1.0  # the colour slot is contradicted by "blue" even though "red" is there too


def test_extra_true_facts_lower_precision():
    s = score_facts("Lily's kite was red and she was in the park with her dog.", REFERENCE, QUESTION, FACTS)
    assert s.precision == pytest.approx(1 / 3)  # red, park, dog stated; red scored
    assert s.recall == 1.0 and s.contradiction == 0.0


def test_all_values_given_scores_all_expected_facts():
    # "Was Lily's kite red?": every expected value is in the question, so all of them are scored.
    s = score_facts("Yes, Lily's kite was red.", "Yes, Lily's kite was red.", "Was Lily's kite red?", FACTS)
    assert s.scored == ("kite", "lily", "red") and s.f1 == 1.0
    # Expected facts come from the reference only: "Yes, it was." states none, so there is nothing to score.
    assert score_facts("It was red.", "Yes, it was.", "Was it red?", FACTS) is None


def test_no_fact_in_reference_returns_none():
    assert score_facts("anything", "I do not know.", QUESTION, FACTS) is None


def test_content_recall_uses_reference_words_as_relevance():
    # Targets in the reference: {red} (lily and kite are question words) -> answering "red" recalls all.
    assert content_recall("It was red.", QUESTION, REFERENCE, [STORY]) == 1.0
    assert content_recall("It was blue.", QUESTION, REFERENCE, [STORY]) == 0.0


def test_content_recall_falls_back_to_question_relevance():
    # The reference shares no content word with the story, so sentences are weighted by the question:
    # question content = {bella, come} -> "Her friend Bella came too." has relevance 1/2 ("bella"), its
    # other targets: friend, came (0.5 each). Sentence 2 words (windy, took, park, dog) have relevance 0;
    # sentence 1 has relevance 0 too. Answer "her friend came" -> (0.5 + 0.5) / (0.5 + 0.5) = 1.
    q = "Did Bella come?"
    assert content_recall("Her friend came.", q, "Yes.", [STORY]) == pytest.approx(1.0)
    assert content_recall("Her friend.", q, "Yes.", [STORY]) == pytest.approx(0.5)


def test_content_recall_uniform_when_nothing_is_relevant():
    story = Interaction("Tell me.", "Cats purr softly.")
    # targets: tell, cats, purr, softly; none relevant to the question -> uniform weights
    assert content_recall("Cats purr.", "What now?", "Nothing.", [story]) == pytest.approx(2 / 4)
    assert content_recall("x", "q", "r", []) == 0.0


def test_memory_overlap_counts_answer_words_copied_from_memory_only():
    # remembered-only words exclude the current question and reference ("kite" is in the question).
    answer = "Lily had a kite in the park."  # content: lily, kite, park -> lily and park are memory-only
    assert memory_overlap(answer, "Tell me about a kite.", "Kites fly high.", [STORY]) == pytest.approx(2 / 3)
    assert memory_overlap("I like soup.", "What food do you like?", "I like soup.", [STORY]) == 0.0
    assert memory_overlap("", "q", "r", [STORY]) == 0.0


def test_length_penalty_hand_computed():
    assert length_penalty(4, 4) == 0.0
    assert length_penalty(6, 4) == 0.0  # ratio 1.5 = tolerance
    assert length_penalty(16, 4) == 1.0  # ratio 4 = limit
    assert length_penalty(12, 4) == pytest.approx((math.log(3) - math.log(1.5)) / (math.log(4) - math.log(1.5)))
    assert length_penalty(2, 6) == pytest.approx((math.log(3) - math.log(1.5)) / (math.log(4) - math.log(1.5)))
    assert length_penalty(0, 4) == 1.0 and length_penalty(5, 0) == 0.0
    with pytest.raises(ValueError):
        length_penalty(1, 1, tolerance=5.0, limit=4.0)


def test_repetition_rate_hand_computed():
    assert repetition_rate("the kite is red the kite is red".split()) == pytest.approx(3 / 7)
    assert repetition_rate("red red red red".split()) == pytest.approx(1 - 1 / 3)
    assert repetition_rate("lily has a red kite".split()) == 0.0
    assert repetition_rate(["red", "red"]) == 0.0  # one bigram cannot repeat
    assert repetition_rate("a b a b".split(), n=1) == pytest.approx(0.5)


def test_light_stemming_joins_inflections():
    from rxmrl.reward.text import stem

    assert [stem(w) for w in ["walked", "walks", "walking", "puppies", "grass", "red", "kite"]] == [
        "walk", "walk", "walk", "puppy", "grass", "red", "kite"]
    # "walked" in the story meets "walk" in the question, so it is a question word, not a target.
    story = [Interaction("q", "They walked to the beach.")]
    assert content_recall("The beach.", "Where did they walk?", "They walked to the beach.", story) == 1.0


def test_content_f1_precision_hand_computed():
    from rxmrl.reward.fact_recall import score_content

    # question stems {came, lily}; targets the reference uses: friend, bella (weight 1 each).
    # answer stems less the question's: {bella, friend, along} -> 2 of 3 relevant.
    s = score_content("Bella, her friend, came along.", "Who came with Lily?", "Her friend Bella came with her.",
                      [STORY])
    assert s.recall == 1.0
    assert s.precision == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(0.8)
    # A copy of the whole story recalls everything but is mostly irrelevant words.
    copy = score_content(STORY.answer, "Who came with Lily?", "Her friend Bella came with her.", [STORY])
    assert copy.recall == 1.0 and copy.precision < 0.25
