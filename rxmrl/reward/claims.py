"""What an answer claims about the remembered interaction, checked against the memory without ground truth.

TinyStories-MRL rows and user data carry no `facts`, so the composite cannot look a value up. Instead both
sides are read with the same cheap rules and compared: `extract_claims(text)` lists the values a text states,
each with its kind and, when a rule can tell, the object it describes; `score_claims` scores an answer's
claims against the reference answer's (what should be recalled) and the remembered interactions' (what the
memory says):
- a stated value that the reference states too is *correct*;
- a value of a kind the reference fills with another value ("blue" when the reference says "red"), or an
  attribute bound to an object the memory describes otherwise ("the blue ball" when the memory has "the red
  ball"), or a negated value the reference states ("the kite was not red") is a *contradiction*;
- any other value found nowhere in the memory, reference or question is a *hallucination* (it lowers
  precision, not the contradiction share);
- a reference value the answer leaves out lowers recall.
Values the question states are given, as in `rxmrl.reward.fact_recall.score_facts`.

Rules (deterministic, no model, no download):
- kinds and their vocabularies: colour, shape, size (canonical: little = small, large = big), number (words
  two..twelve, twenty, and digits; "one" is left out, it is mostly "one day"), place, plus the synthetic
  fact vocabulary's name, friend (read as name), animal, object, food, weather and feeling words;
- names: a capitalised word that is not at a sentence start and is no known word, or a known name, or a
  sentence-start word that `known_names` lists (the names found in the memory);
- binding: an adjective-like value (colour, shape, size, number) describes the next noun within three words
  ("a big red ball" -> ball: big, ball: red) or, after a copula, the last noun before it ("the kite was red"
  -> kite: red);
- negation: "not", "no", "never", "nothing" or an "n't" word earlier in the same sentence negates the values
  after it ("the bird was not sitting on a round stone", "it is not true that the ball was red"), and a
  negated copula negates the values before it ("a yellow star was not on the boat"); a "No" opening the
  sentence does not.
Limits: single words only ("light blue" is blue; "New York" is two names), no coreference ("it was red"
binds to nothing), a negation reaches past "because" or "and" to the sentence's end, no synonyms beyond the size pairs, English only, and a value outside the vocabularies that
is not a capitalised name is invisible. A model-based judge can replace the rules: any callable with
`extract_claims`'s signature (see `CompositeReward(claim_extractor=...)` and the spec's [claims] table).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rxmrl.data.episode import Interaction
from rxmrl.data.facts import FACT_VALUES
from rxmrl.reward.text import STOP_WORDS

_SIZES = {"small": "small", "little": "small", "tiny": "small", "big": "big", "large": "big", "huge": "big",
          "giant": "big", "tall": "tall", "short": "short", "long": "long"}
_SHAPES = ("round", "square", "circle", "triangle", "star", "heart", "oval", "diamond", "rectangle", "striped",
           "spotted")
_EXTRA_COLOURS = ("grey", "gray", "gold", "violet")
_NUMBERS = {w: str(n) for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split()) if n >= 2}
_NUMBERS["twenty"] = "20"
_EXTRA_PLACES = ("home", "house", "shop", "store", "zoo", "pond", "sea", "mountain", "castle", "city", "town",
                 "woods", "playground", "yard", "field", "cave", "island", "bakery", "sky")

# word -> (kind, canonical value); single words, no word in two kinds
VOCABULARY: dict[str, tuple[str, str]] = {}
for _slot, _values in FACT_VALUES.items():
    if _slot != "number":
        for _v in _values:
            VOCABULARY[_v] = ("name" if _slot == "friend" else _slot, _v)
for _v in _EXTRA_COLOURS:
    VOCABULARY[_v] = ("colour", "grey" if _v == "gray" else _v)
for _v in _SHAPES:
    VOCABULARY[_v] = ("shape", _v)
for _w, _v in _SIZES.items():
    VOCABULARY[_w] = ("size", _v)
for _w, _v in _NUMBERS.items():
    VOCABULARY[_w] = ("number", _v)
for _v in _EXTRA_PLACES:
    VOCABULARY[_v] = ("place", _v)

ADJECTIVE_KINDS = frozenset({"colour", "shape", "size", "number"})
_COPULAS = frozenset({"was", "is", "were", "are", "looked", "became", "seemed", "felt"})
_NEGATIONS = frozenset({"not", "no", "never", "nothing"})
_NOT_NAMES = frozenset({"mom", "dad", "mum", "mommy", "daddy", "mr", "mrs", "miss", "grandma", "grandpa"})
_TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?|[.!?]")


@dataclass(frozen=True)
class Claim:
    kind: str  # colour, shape, size, number, place, name, animal, object, food, weather, feeling
    value: str  # canonical lower-case value ("small" for "little", "3" for "three")
    subject: str | None = None  # the noun an adjective-like value describes, when a rule binds it
    negated: bool = False


# text, known names -> claims; the plug-in point for a model-based judge
ClaimExtractor = Callable[[str, frozenset[str]], list[Claim]]


def _tokens(text: str) -> list[tuple[str, bool, bool]]:
    """(lower-case word, starts a sentence, capitalised) triples; possessive "'s" dropped; "." "!" "?" only mark starts."""
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'")
    out, start = [], True
    for tok in _TOKEN_RE.findall(text):
        if tok in ".!?":
            start = True
            continue
        low = tok.lower()
        if low.endswith("'s"):
            low, tok = low[:-2], tok[:-2]
        out.append((low, start, tok[:1].isupper()))
        start = False
    return out


def _is_noun(word: str) -> bool:
    kind = VOCABULARY.get(word, (None,))[0]
    return word not in STOP_WORDS and word not in _COPULAS and kind not in ADJECTIVE_KINDS


def extract_claims(text: str, known_names: frozenset[str] = frozenset()) -> list[Claim]:
    """The values `text` states, in order (see the module docstring for the rules)."""
    toks = _tokens(text)
    plain = [w for w, _, _ in toks]
    claims = []
    sentence_start = 0
    for i, (word, starts, capital) in enumerate(toks):
        if starts:
            sentence_start = i  # negation and binding stay within a sentence
        if word in VOCABULARY:
            kind, value = VOCABULARY[word]
        elif word.isdigit():
            kind, value = "number", str(int(word))
        elif capital and len(word) > 1 and word not in STOP_WORDS and word not in _NOT_NAMES and (
                not starts or word in known_names):
            kind, value = "name", word
        else:
            continue
        # "No, ..." opening a sentence answers the question; it does not negate what follows
        before = plain[sentence_start + (plain[sentence_start] == "no"): i]
        negated = any(w in _NEGATIONS or w.endswith("n't") for w in before) or _denied_after(plain, toks, i)
        subject = None
        if kind in ADJECTIVE_KINDS:
            subject = _bound_subject(plain, i, sentence_start, [t[1] for t in toks])
        claims.append(Claim(kind, value, subject, negated))
    return claims


def _denied_after(plain: list[str], toks: list[tuple[str, bool, bool]], i: int) -> bool:
    """True when the next copula after `i` in its sentence is negated: "a yellow star was not on the boat"."""
    for k in range(i + 1, len(plain) - 1):
        if toks[k][1]:
            return False
        if plain[k] in _COPULAS:
            return plain[k + 1] in _NEGATIONS
    return False


def _bound_subject(plain: list[str], i: int, lo: int, starts: list[bool]) -> str | None:
    """The noun the adjective-like word at `i` describes: the next noun within 3 words, or after a copula
    ("the kite was (not) red") the last noun before it, not looking back past `lo` (the sentence start)."""
    j = i - 1
    while j >= lo and plain[j] in ("not", "very", "so", "all"):
        j -= 1
    if j >= lo and plain[j] in _COPULAS:
        for k in range(j - 1, max(lo - 1, j - 4), -1):
            if _is_noun(plain[k]):
                return plain[k]
        return None
    for k in range(i + 1, min(len(plain), i + 4)):
        if starts[k] or plain[k] in _COPULAS or plain[k] in ("and", "or", "but"):
            return None
        if _is_noun(plain[k]):
            return plain[k]
    return None


@dataclass(frozen=True)
class ClaimScore:
    precision: float
    recall: float
    f1: float
    contradiction: float  # contradicted slots / scored slots, in [0, 1]
    hallucination: float  # share of the stated values found nowhere in memory, reference or question
    scored: tuple[str, ...]  # the reference values the answer had to recall
    stated: tuple[str, ...]  # the values the answer states (neutral ones left out)
    contradicting: tuple[str, ...]
    hallucinated: tuple[str, ...]


def _names(texts: Iterable[str]) -> frozenset[str]:
    found = set()
    for text in texts:
        found.update(c.value for c in extract_claims(text) if c.kind == "name")
    return frozenset(found)


def score_claims(answer: str, query: str, reference: str, remember: Sequence[Interaction],
                 extractor: ClaimExtractor = extract_claims) -> ClaimScore | None:
    """Claim precision/recall/F1, contradiction and hallucination of `answer`; None when the reference
    states no value (there is then nothing to check the answer against)."""
    memory = [t for it in remember for t in (it.query, it.answer)]
    names = _names(memory + [reference, query])
    ref = [c for c in extractor(reference, names) if not c.negated]
    if not ref:
        return None
    expected = {c.value: c.kind for c in ref}
    asked = {c.value for c in extractor(query, names)}
    scored = {v: k for v, k in expected.items() if v not in asked} or expected
    memory_claims = [c for text in memory for c in extractor(text, names)]
    known = {c.value for c in memory_claims} | set(expected) | asked
    neutral = (asked | set(expected)) - set(scored)
    # subject -> kind -> values, from the memory and the reference (what the story says each object is like)
    bound: dict[str, dict[str, set[str]]] = {}
    for c in memory_claims + ref:
        if c.subject is not None and not c.negated:
            bound.setdefault(c.subject, {}).setdefault(c.kind, set()).add(c.value)

    said = extractor(answer, names)
    stated = {c.value for c in said if not c.negated} - neutral
    correct = stated & set(scored)
    contradicting, slots = set(), set()
    for c in said:
        if c.negated:
            if c.value in scored:
                contradicting.add(c.value)
                slots.add(("not", c.value))
            continue
        if c.value in neutral:
            continue
        if c.kind in scored.values() and c.value not in scored:
            contradicting.add(c.value)
            slots.add((None, c.kind))
        told = bound.get(c.subject, {}).get(c.kind) if c.subject is not None else None
        if told and c.value not in told:
            contradicting.add(c.value)
            slots.add((c.subject, c.kind))
    hallucinated = stated - correct - contradicting - known

    precision = len(correct) / len(stated) if stated else 0.0
    recall = len(correct) / len(scored)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return ClaimScore(
        precision=precision,
        recall=recall,
        f1=f1,
        contradiction=min(1.0, len(slots) / len(scored)),
        hallucination=len(hallucinated) / len(stated) if stated else 0.0,
        scored=tuple(sorted(scored)),
        stated=tuple(sorted(stated)),
        contradicting=tuple(sorted(contradicting)),
        hallucinated=tuple(sorted(hallucinated)),
    )
