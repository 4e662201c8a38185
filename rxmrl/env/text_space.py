"""Gymnasium `Text` spaces over printable ASCII, and folding any text into that charset for observations.

Datasets hold curly quotes, dashes and accents; an observation must lie in its space, so the env shows the
agent a folded copy (rewards still compare the original texts).
"""

from __future__ import annotations

import string
import unicodedata

from gymnasium.spaces import Text

CHARSET = "".join(c for c in string.printable if c not in "\r\x0b\x0c")  # letters, digits, punctuation, space, \t, \n
_CHARSET_SET = frozenset(CHARSET)
_PUNCTUATION = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                              "\u2014": "-", "\u2026": "...", "\u00a0": " ", "\r": ""})


def text_space(max_chars: int) -> Text:
    return Text(max_length=max_chars, min_length=0, charset=CHARSET)


def to_charset(text: str, max_chars: int) -> str:
    """`text` with typographic punctuation made ASCII, accents dropped, other characters removed, cut."""
    folded = unicodedata.normalize("NFKD", text.translate(_PUNCTUATION))
    return "".join(c for c in folded if c in _CHARSET_SET)[:max_chars]
