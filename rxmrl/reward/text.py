"""Text normalisation shared by the rewards: words, content words, sentences, and word ids for BLEU.

Everything is lower-cased and Unicode-normalised (NFKC, curly quotes made straight) so that "Lily's" and
"lily’s" read the same. A possessive "'s" is dropped ("lily's" -> "lily") because fact values are bare words.
"""

from __future__ import annotations

import re
import unicodedata

import torch

# Function words that carry no story content; kept short and explicit so results are easy to predict.
STOP_WORDS: frozenset[str] = frozenset(
    """
    a an the and or but if then so because as of at by for with about against between into through during
    before after above below to from up down in out on off over under again further once here there when where
    why how all any both each few more most other some such no nor not only own same than too very can will
    just should now i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom this that these
    those am is are was were be been being have has had having do does did doing would could shall may might
    must let lets s t d ll m re ve also yes oh okay ok really one day
    """.split()
)

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+|\n+")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")


def words(text: str) -> list[str]:
    """Lower-case words without punctuation; a possessive "'s" is dropped ("Lily's kite" -> lily, kite)."""
    out = []
    for w in _WORD_RE.findall(normalise(text)):
        out.append(w[:-2] if w.endswith("'s") else w)
    return out


def content_words(text: str) -> list[str]:
    """`words(text)` without stop words, in order (duplicates kept)."""
    return [w for w in words(text) if w not in STOP_WORDS]


def stem(word: str) -> str:
    """A light suffix stripper so inflections meet: walked/walking/walks -> walk, puppies -> puppy.

    Deliberately small (a handful of English suffixes, only on words of 5+ letters) so results stay easy to
    predict; used for content-word matching, never for fact values, which are matched as exact words.
    """
    if len(word) < 5:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    for suffix in ("ing", "ed"):
        if word.endswith(suffix):
            return word[: -len(suffix)]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_stems(text: str) -> list[str]:
    """`content_words(text)`, each passed through `stem`."""
    return [stem(w) for w in content_words(text)]


def bleu_tokens(text: str) -> list[str]:
    """Tokens for word-level BLEU: lower-case words and single punctuation marks ("Red." -> red, .)."""
    return _TOKEN_RE.findall(normalise(text))


def sentences(text: str) -> list[str]:
    """Split on sentence-final punctuation followed by space, and on line breaks; empty pieces dropped."""
    return [s.strip() for s in _SENTENCE_END_RE.split(text) if s.strip()]


def tokens_to_ids(*groups: list[list[str]], pad_id: int = 0) -> list[torch.Tensor]:
    """Map token lists to ids with one vocabulary shared by all groups; each group becomes `[B, T]`.

    Ids start above `pad_id` so a real token never reads as padding. Shared vocabulary matters: BLEU compares
    a candidate's ids with its reference's ids, so the same word must get the same id in both.
    """
    vocab: dict[str, int] = {}
    out = []
    for group in groups:
        width = max((len(toks) for toks in group), default=0)
        rows = [[vocab.setdefault(tok, pad_id + 1 + len(vocab)) for tok in toks] for toks in group]
        padded = [row + [pad_id] * (width - len(row)) for row in rows]
        out.append(torch.tensor(padded, dtype=torch.long).reshape(len(group), width))
    return out
