"""Claims without ground truth (`rxmrl.reward.claims`): hand-computed extraction and scores, and the composite."""

import pytest
import torch

from rxmrl.data.episode import Interaction
from rxmrl.reward import RewardBatch
from rxmrl.reward.claims import Claim, extract_claims, score_claims
from rxmrl.reward.composite import CompositeReward
from rxmrl.reward.spec import ClaimSettings, ModeWeights, RewardSpec, Weights

STORY = Interaction("Tell me about Lily.",
                    "Lily found a big red ball in the garden. She played with her friend Bella.")
QUERY = "What did Lily find in the garden?"
REFERENCE = "Lily found a big red ball in the garden."


def test_extraction_kinds_bindings_names_and_negation():
    claims = extract_claims("Lily saw three little green frogs. The kite was not blue. Then Zed came.")
    assert claims == [
        Claim("name", "lily"),
        Claim("number", "3", "frogs"),
        Claim("size", "small", "frogs"),  # little = small
        Claim("colour", "green", "frogs"),
        Claim("object", "kite", negated=True),  # the subject of a negated copula
        Claim("colour", "blue", "kite", negated=True),
        Claim("name", "zed"),  # capitalised, not at a sentence start
    ]
    assert extract_claims("It was red. Kites fly.")[0] == Claim("colour", "red")  # no binding across sentences
    assert extract_claims("Then Snow slept.") == [Claim("name", "snow")]
    assert extract_claims("Snow slept.") == []  # a sentence start is a name only when known
    assert extract_claims("Snow slept.", frozenset({"snow"})) == [Claim("name", "snow")]
    assert extract_claims("One day Mom came home.") == [Claim("place", "home")]  # "one", "Mom": no claims


def test_correct_answer_scores_full_and_a_swap_contradicts():
    right = score_claims("Lily found a big red ball.", QUERY, REFERENCE, [STORY])
    assert right.scored == ("ball", "big", "red")  # lily and garden are given by the question
    assert (right.precision, right.recall, right.contradiction, right.hallucination) == (1.0, 1.0, 0.0, 0.0)

    # blue: a colour where the reference says red (slot colour) and the memory's ball is red (slot ball/colour)
    swap = score_claims("Lily found a big blue ball.", QUERY, REFERENCE, [STORY])
    assert swap.contradicting == ("blue",)
    assert swap.precision == pytest.approx(2 / 3) and swap.recall == pytest.approx(2 / 3)
    assert swap.contradiction == pytest.approx(2 / 3)
    assert swap.hallucination == 0.0


def test_invented_name_is_a_hallucination_and_omission_lowers_recall():
    invented = score_claims("Lily found a big red ball with Zed.", QUERY, REFERENCE, [STORY])
    assert invented.hallucinated == ("zed",) and invented.contradiction == 0.0
    assert invented.hallucination == pytest.approx(1 / 4) and invented.precision == pytest.approx(3 / 4)
    assert invented.f1 == pytest.approx(6 / 7)
    omitted = score_claims("She found a ball.", QUERY, REFERENCE, [STORY])
    assert omitted.recall == pytest.approx(1 / 3) and omitted.precision == 1.0 and omitted.contradiction == 0.0


def test_negating_a_remembered_value_is_a_contradiction():
    score = score_claims("The ball was not red.", "What colour was the ball?", "The ball was red.", [STORY])
    assert score.contradicting == ("red",) and score.contradiction == 1.0 and score.recall == 0.0


def test_no_reference_value_means_no_claim_score():
    assert score_claims("She was happy.", "How did she feel?", "She felt fine.", [STORY]) is None


def _spec(extract=True, extractor=""):
    return RewardSpec(name="t", weights=ModeWeights(standard=Weights(fact_recall=1.0, contradiction=-1.0)),
                      scale=10.0, claims=ClaimSettings(extract=extract, extractor=extractor))


def _batch(answers, facts=None):
    n = len(answers)
    return RewardBatch(query=[QUERY] * n, generated=answers, reference=[REFERENCE] * n, remember=[[STORY]] * n,
                       facts=[facts] * n)


def test_composite_uses_claims_without_facts_and_can_switch_them_off():
    answers = ["Lily found a big red ball.", "Lily found a small blue kite."]
    on = CompositeReward(_spec())(_batch(answers))
    off = CompositeReward(_spec(extract=False))(_batch(answers))
    assert off.components["contradiction"].tolist() == [0.0, 0.0]
    assert on.components["contradiction"].tolist() == [0.0, 1.0]
    assert on.total[1] < off.total[1] - 2.0  # the swap loses more than 2 points
    assert on.total[0] >= off.total[0]


def test_episodes_with_facts_score_exactly_as_without_claims():
    facts = {"name": "lily", "object": "ball", "colour": "red", "place": "garden", "friend": "bella"}
    answers = ["Lily found a big red ball.", "A blue ball.", "She found it.", ""]
    on = CompositeReward(_spec())(_batch(answers, facts))
    off = CompositeReward(_spec(extract=False))(_batch(answers, facts))
    assert torch.equal(on.total, off.total)
    for name in on.components:
        assert torch.equal(on.components[name], off.components[name])


def judge(text, known_names):
    """A stand-in for a model-based judge: claims every word "moon" as the colour moon."""
    return [Claim("colour", "moon")] if "moon" in text else []


def test_a_plugged_in_judge_replaces_the_rules():
    batch = RewardBatch(query=[QUERY], generated=["no moon here"], reference=["the moon"], remember=[[STORY]])
    by_arg = CompositeReward(_spec(), claim_extractor=judge)(batch)
    by_spec = CompositeReward(_spec(extractor="tests.test_reward_claims:judge"))(batch)
    assert by_arg.components["contradiction"].tolist() == by_spec.components["contradiction"].tolist() == [0.0]
    assert by_arg.components["fact_recall"][0] > CompositeReward(_spec(extract=False))(batch).components["fact_recall"][0]
