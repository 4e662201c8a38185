"""How much of the remembered interaction an answer recalls, with or without ground-truth facts.

With facts (synthetic episodes, `facts` = slot -> value). The expected facts are those whose value occurs as
a word in the reference answer. Values the question itself states are *given*: they neither count as
recalled nor against precision (echoing "What colour is Lily's kite?" as "Lily's kite" recalls nothing),
unless every expected value is given, in which case all of them are scored. Over the scored facts:
- stated    = fact-vocabulary words in the answer, less neutral ones (words of the question, and fact-like
              words of the reference that are not episode facts);
- precision = |stated ∩ scored values| / |stated|   (0 when nothing is stated),
- recall    = |stated ∩ scored values| / |scored|,
- F1        = harmonic mean;
- contradiction = share of scored slots for which the answer states another value of the same slot
              ("blue" when the kite is red), even if it also states the right one (keyword spam).

Without facts (TinyStories-MRL rows), content-word recall. The targets are the remembered interactions'
content words (stop words removed, and the question's words removed: they are not memory), each weighted by
its relevance to the question:
- the reference answer is the first evidence of relevance: when it uses some of the targets, those weigh 1
  and the rest 0 (the answer should recall what the reference recalls, not the whole story);
- otherwise a target weighs the share of the question's content words that its sentence contains (the
  kite sentence matters for a question about the kite), its best sentence counting;
- if still no target has weight, all weigh 1.
Recall = weight of the targets the answer contains / total weight. Words are compared after a light
stemming (`text.stem`: walked = walk), so an inflected paraphrase still counts.
The composite scores the F1 of that recall with a precision: the share of the answer's content words (less
the question's) that are relevant, i.e. weighted targets or words of the reference. Recall alone would give
full marks to a copy of the whole story or a list of all its words; precision is what tells them apart
from a short answer when there are no facts to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rxmrl.data.episode import Interaction
from rxmrl.data.facts import VALUE_TO_SLOT
from rxmrl.reward.text import content_stems, sentences, words


@dataclass(frozen=True)
class FactScore:
    precision: float
    recall: float
    f1: float
    contradiction: float
    scored: tuple[str, ...]  # the fact values the answer had to recall
    stated: tuple[str, ...]  # the fact values the answer states (neutral ones left out)
    contradicting: tuple[str, ...]  # stated values that contradict a scored fact


def expected_facts(facts: dict[str, str], reference: str) -> dict[str, str]:
    """The episode facts (slot -> value) whose value occurs as a word in the reference answer."""
    ref_words = set(words(reference))
    return {slot: value for slot, value in facts.items() if value in ref_words}


def score_facts(answer: str, reference: str, query: str, facts: dict[str, str]) -> FactScore | None:
    """Fact precision/recall/F1 and contradiction of `answer`; None when the reference states no fact."""
    expected = expected_facts(facts, reference)
    if not expected:
        return None
    question_words = set(words(query))
    to_recall = {slot: v for slot, v in expected.items() if v not in question_words}
    scored = to_recall or expected
    scored_values = set(scored.values())

    fact_words_around = (question_words | set(words(reference))) & VALUE_TO_SLOT.keys()
    neutral = fact_words_around - scored_values
    stated = {w for w in words(answer) if w in VALUE_TO_SLOT} - neutral
    correct = stated & scored_values

    precision = len(correct) / len(stated) if stated else 0.0
    recall = len(correct) / len(scored)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    contradicting = {v for v in stated if VALUE_TO_SLOT[v] in scored and scored[VALUE_TO_SLOT[v]] != v}
    contradicted_slots = {VALUE_TO_SLOT[v] for v in contradicting}
    return FactScore(
        precision=precision,
        recall=recall,
        f1=f1,
        contradiction=len(contradicted_slots) / len(scored),
        scored=tuple(sorted(scored_values)),
        stated=tuple(sorted(stated)),
        contradicting=tuple(sorted(contradicting)),
    )


@dataclass(frozen=True)
class ContentScore:
    precision: float
    recall: float
    f1: float


def score_content(answer: str, query: str, reference: str, remember: Sequence[Interaction]) -> ContentScore:
    """Relevance-weighted recall of the remembered content words, its precision and F1 (all 0 when the
    remembered interactions have no content word to recall)."""
    question = set(content_stems(query))
    by_question: dict[str, float] = {}  # target -> relevance of its best sentence to the question
    for interaction in remember:
        for sentence in sentences(interaction.query) + sentences(interaction.answer):
            sentence_words = set(content_stems(sentence))
            relevance = len(sentence_words & question) / len(question) if question else 0.0
            for w in sentence_words - question:
                by_question[w] = max(by_question.get(w, 0.0), relevance)
    if not by_question:
        return ContentScore(0.0, 0.0, 0.0)
    reference_words = set(content_stems(reference))
    in_reference = reference_words & by_question.keys()
    if in_reference:
        weights = {w: 1.0 for w in in_reference}
    elif any(by_question.values()):
        weights = by_question
    else:
        weights = dict.fromkeys(by_question, 1.0)
    said = set(content_stems(answer))
    recall = sum(weight for w, weight in weights.items() if w in said) / sum(weights.values())

    relevant = {w for w, weight in weights.items() if weight > 0} | reference_words
    own_words = said - question
    precision = len(own_words & relevant) / len(own_words) if own_words else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return ContentScore(precision=precision, recall=recall, f1=f1)


def content_recall(answer: str, query: str, reference: str, remember: Sequence[Interaction]) -> float:
    """Relevance-weighted recall in [0, 1] of the remembered content words (0 when there is nothing to recall)."""
    return score_content(answer, query, reference, remember).recall


def memory_overlap(answer: str, query: str, reference: str, remember: Sequence[Interaction]) -> float:
    """Share in [0, 1] of the answer's content words that come only from the remembered interactions.

    Words of the current question or reference are left out of the "remembered" set: using them is on topic.
    A topic-change answer ("negative" mode) should score near 0; a copy of the remembered story near 1.
    """
    remembered = set()
    for interaction in remember:
        remembered.update(content_stems(interaction.query), content_stems(interaction.answer))
    remembered -= set(content_stems(query)) | set(content_stems(reference))
    said = content_stems(answer)
    if not said:
        return 0.0
    return sum(1 for w in said if w in remembered) / len(said)
