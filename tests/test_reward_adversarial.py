"""The default composite (mrl-composite, with the real MiniLM model) against answers that try to game it.

Each question is asked about a hand-written synthetic-style story. A correct recall must beat, by a clear
margin on the 0-10 scale, every adversarial answer: a verbatim copy of the story, keyword spam, the correct
sentence repeated, fluent unrelated text, the right entities with a wrong value; an empty answer scores 0.
"""

import pytest

from rxmrl.data.episode import Interaction
from rxmrl.reward import RewardBatch, get_reward

KITE = Interaction(
    "Tell me a story about a girl and her kite.",
    "Once upon a time, a girl named Lily had a red kite. One windy day she took her kite to the park with her "
    "dog. Her friend Bella came too. They ate cake on the grass, and Lily felt happy.",
)
KITE_FACTS = {"name": "lily", "object": "kite", "colour": "red", "weather": "windy", "place": "park",
              "animal": "dog", "friend": "bella", "food": "cake", "feeling": "happy"}
PUPPY = Interaction(
    "Can you tell me about Tom and his pet?",
    "Tom had a little brown puppy. Every sunny morning they walked to the beach together. The puppy liked to "
    "eat a cookie after the walk, and Tom felt proud of him.",
)
PUPPY_FACTS = {"name": "tom", "animal": "puppy", "colour": "brown", "weather": "sunny", "place": "beach",
               "food": "cookie", "feeling": "proud"}
SPAM = "lily tom mia red blue green brown kite ball hat park beach forest dog cat puppy bella happy sad cake cookie"
UNRELATED = "The old train rolled slowly over the bridge while the farmer counted his sheep."

# (story, facts, question, reference answer, a correct answer in other words, the same with a wrong value)
QUESTIONS = [
    (KITE, KITE_FACTS, "What colour was Lily's kite?", "Lily's kite was red.", "The kite was red.",
     "The kite was green."),
    (KITE, KITE_FACTS, "Where did Lily take her kite?", "She took her kite to the park.",
     "Lily took it to the park.", "Lily took it to the forest."),
    (KITE, KITE_FACTS, "Who came with Lily?", "Her friend Bella came with her.", "Bella, her friend, came along.",
     "Her friend Rosa came with her."),
    (PUPPY, PUPPY_FACTS, "What colour was Tom's puppy?", "Tom's puppy was brown.", "His puppy was brown.",
     "His puppy was white."),
    (PUPPY, PUPPY_FACTS, "Where did Tom and the puppy walk?", "They walked to the beach.",
     "They went to the beach.", "They went to the river."),
]
MARGIN = 2.0  # "clearly below" on the 0-10 scale


@pytest.fixture(scope="module")
def composite():
    return get_reward("mrl-composite")


def score_cases(reward, story, facts, question, reference, cases, mode):
    size = len(cases)
    batch = RewardBatch(query=[question] * size, generated=list(cases.values()), reference=[reference] * size,
                        remember=[[story]] * size, facts=[facts] * size, mode=[mode] * size)
    out = reward(batch)
    assert set(out.components) >= {"bleu", "reference_similarity", "memory_similarity", "fact_recall",
                                   "contradiction", "length", "repetition"}
    return dict(zip(cases, out.total.tolist()))


def adversarial_cases(story, correct, wrong):
    return {
        "correct": correct,
        "copy": story.answer,
        "spam": SPAM,
        "repeat": " ".join([correct] * 4),
        "unrelated": UNRELATED,
        "wrong_value": wrong,
        "empty": "",
    }


@pytest.mark.parametrize("mode", ["standard", "long_range"])
@pytest.mark.parametrize("question", QUESTIONS, ids=[q[2] for q in QUESTIONS])
def test_correct_recall_beats_every_adversarial_answer_with_facts(composite, question, mode):
    story, facts, text, reference, correct, wrong = question
    scores = score_cases(composite, story, facts, text, reference, adversarial_cases(story, correct, wrong), mode)
    assert scores["empty"] == 0.0
    assert scores["correct"] >= 6.0, scores
    for name, value in scores.items():
        if name != "correct":
            assert value <= scores["correct"] - MARGIN, (name, scores)
    # With facts, contradictions leave the wrong value and the keyword spam near nothing.
    assert scores["wrong_value"] < 1.0 and scores["spam"] < 1.0, scores


@pytest.mark.parametrize("question", QUESTIONS, ids=[q[2] for q in QUESTIONS])
def test_without_facts_copy_spam_repetition_and_unrelated_still_lose(composite, question):
    # TinyStories-MRL rows have no facts: content-word F1 replaces fact F1, and there is no contradiction
    # check, so a wrong value only loses its recall; the other adversarial answers must still lose clearly.
    story, _, text, reference, correct, wrong = question
    scores = score_cases(composite, story, None, text, reference, adversarial_cases(story, correct, wrong), "standard")
    assert scores["empty"] == 0.0
    for name in ("copy", "spam", "repeat", "unrelated"):
        assert scores[name] <= scores["correct"] - MARGIN, (name, scores)
    assert scores["wrong_value"] < scores["correct"] - 1.0, scores


def test_negative_mode_rewards_a_topic_change_over_repeating_memory(composite):
    question = "What do you like to eat for breakfast?"
    reference = "I like to eat warm bread with honey."
    cases = {
        "on_topic": "I like warm bread and honey.",
        "copy_memory": KITE.answer,
        "recall_memory": "Lily had a red kite and went to the park.",
        "empty": "",
    }
    scores = score_cases(composite, KITE, KITE_FACTS, question, reference, cases, "negative")
    assert scores["empty"] == 0.0
    assert scores["on_topic"] >= 4.0, scores
    assert scores["copy_memory"] <= scores["on_topic"] - MARGIN, scores
    assert scores["recall_memory"] <= scores["on_topic"] - MARGIN, scores


def test_long_range_weighs_memory_more_than_standard(composite):
    # The same imperfect answer (right fact, few reference words) gains in long_range mode, where fact recall
    # and memory similarity weigh more than the reference's wording.
    story, facts, text, reference = KITE, KITE_FACTS, "What colour was Lily's kite?", "Lily's kite was red."
    cases = {"loose": "It was a lovely red one, the one she flew on windy days."}
    standard = score_cases(composite, story, facts, text, reference, cases, "standard")["loose"]
    long_range = score_cases(composite, story, facts, text, reference, cases, "long_range")["loose"]
    assert long_range > standard
