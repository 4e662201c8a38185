"""Hostile variants of a reference answer, for the reward audit: pure functions of text, deterministic.

Each builder takes the reference answer and what it needs (the question, the remembered interactions, an
unrelated answer) and returns the answer text a reward should rank below the reference. `paraphrase` is the
one friendly variant: the same claims in other words, which a good reward keeps close to the reference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rxmrl.data.episode import Interaction
from rxmrl.reward.claims import VOCABULARY, extract_claims
from rxmrl.reward.text import STOP_WORDS, content_words

# words a paraphrase may swap without changing what is claimed (no value word of `claims.VOCABULARY`)
_SYNONYMS = {"took": "brought", "went": "walked", "saw": "spotted", "liked": "loved", "found": "discovered",
             "said": "told", "gave": "handed", "got": "received", "made": "built", "ran": "hurried",
             "had": "owned", "wanted": "wished for", "looked": "seemed", "played": "played", "ate": "had"}
_COPULA_RE = re.compile(r"\b(was|is|were|are)\b")
_WORD_RE = re.compile(r"[A-Za-z0-9]+")
# per kind, the values a swap picks from (in this order), so a swap is deterministic
_BY_KIND: dict[str, list[str]] = {}
for _word, (_kind, _value) in VOCABULARY.items():
    if _word == _value and _value not in _BY_KIND.setdefault(_kind, []):
        _BY_KIND[_kind].append(_value)
_SWAP_NAMES = ["Rosa", "Hugo", "Nora", "Omar", "Ivy"]


def paraphrase(reference: str) -> str:
    """"Lily took her red kite." -> "As I remember it, Lily brought her red kite." (values untouched)."""
    def swap(match: re.Match) -> str:
        word = match.group(0)
        new = _SYNONYMS.get(word.lower())
        if new is None:
            return word
        return new.capitalize() if word[0].isupper() else new

    text = _WORD_RE.sub(swap, reference.strip())
    return "As I remember it, " + _lower_first(text) if text else ""


def _lower_first(text: str) -> str:
    """Lower-case the first word when it is a function word ("The", "She"), so it can follow a prefix;
    names and other words keep their capital."""
    first = text.split()[0] if text.split() else ""
    return text[0].lower() + text[1:] if first.lower() in STOP_WORDS else text


def value_swap(reference: str, query: str, remember: Sequence[Interaction]) -> str:
    """Replace each value the reference states (not one the question gives) with another value of its kind
    that the memory never mentions: "Lily's kite was red." -> "Lily's kite was blue." Values of every kind
    are swapped when the question gives them all."""
    memory = " ".join(t for it in remember for t in (it.query, it.answer)) + " " + reference + " " + query
    used = {c.value for c in extract_claims(memory)} | {w.lower() for w in _WORD_RE.findall(memory)}
    asked = {c.value for c in extract_claims(query)}
    claimed = [c for c in extract_claims(reference) if not c.negated]
    targets = {c.value for c in claimed if c.value not in asked} or {c.value for c in claimed}
    kinds = {c.value: c.kind for c in claimed}

    def swap(match: re.Match) -> str:
        word = match.group(0)
        low = word.lower()
        value = VOCABULARY.get(low, (None, str(int(low)) if low.isdigit() else low))[1]
        if value not in targets:
            return word
        kind = kinds[value]
        pool = _SWAP_NAMES if kind == "name" else _BY_KIND.get(kind, [])
        if kind == "number":
            pool = [w for w, (k, _) in VOCABULARY.items() if k == "number"]
        for candidate in pool:
            if candidate.lower() not in used and VOCABULARY.get(candidate.lower(), (kind, candidate))[1] != value:
                return candidate.capitalize() if word[0].isupper() else candidate
        return word

    return _WORD_RE.sub(swap, reference)


def negation(reference: str) -> str:
    """"The kite was red." -> "The kite was not red."; without a copula, "It is not true that ..."."""
    if _COPULA_RE.search(reference):
        return _COPULA_RE.sub(lambda m: m.group(0) + " not", reference, count=1)
    return "It is not true that " + _lower_first(reference.strip())


def parrot_memory(remember: Sequence[Interaction]) -> str:
    """The remembered answers, copied verbatim."""
    return " ".join(it.answer for it in remember)


def parrot_query(query: str) -> str:
    """The question, echoed."""
    return query


def keyword_spam(remember: Sequence[Interaction]) -> str:
    """Every distinct content word of the remembered interactions, in order, as one list."""
    seen: list[str] = []
    for it in remember:
        for w in content_words(it.query + " " + it.answer):
            if w not in seen:
                seen.append(w)
    return " ".join(seen)


def repetition(reference: str, times: int = 4) -> str:
    """The reference said `times` times."""
    return " ".join([reference.strip()] * times)


def truncation(reference: str) -> str:
    """The first half of the reference's words (at least one), cut mid-sentence."""
    tokens = reference.split()
    return " ".join(tokens[: max(1, len(tokens) // 2)]).rstrip(".!?,")


def unrelated(other_reference: str) -> str:
    """A fluent answer to some other question (the caller passes another episode's reference)."""
    return other_reference


def empty() -> str:
    return ""


HOSTILE = ("value_swap", "negation", "parrot_memory", "parrot_query", "keyword_spam", "repetition",
           "truncation", "unrelated", "empty")


def build_variants(query: str, reference: str, remember: Sequence[Interaction], other_reference: str) -> dict[str, str]:
    """name -> answer: the reference itself, its paraphrase, then every hostile variant (`HOSTILE` order)."""
    return {
        "reference": reference,
        "paraphrase": paraphrase(reference),
        "value_swap": value_swap(reference, query, remember),
        "negation": negation(reference),
        "parrot_memory": parrot_memory(remember),
        "parrot_query": parrot_query(query),
        "keyword_spam": keyword_spam(remember),
        "repetition": repetition(reference),
        "truncation": truncation(reference),
        "unrelated": unrelated(other_reference),
        "empty": empty(),
    }
