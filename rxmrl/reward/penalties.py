"""Penalties in [0, 1] (0 = no penalty): answer length against the reference, and repetition.

Length: with r = words(answer) / words(reference), no penalty while r is within [1/tolerance, tolerance];
beyond, the penalty grows linearly in |ln r| and reaches 1 at r = limit or r = 1/limit:
    penalty = clamp((|ln r| - ln tolerance) / (ln limit - ln tolerance), 0, 1).
An empty answer gets 1; an empty reference gives no length information, so 0.

Repetition: 1 - distinct n-grams / n-grams of the answer's words (n = 2 by default), so "the kite is red
the kite is red" (7 bigrams, 4 distinct) scores 3/7. Answers shorter than n + 1 words cannot repeat: 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def length_penalty(n_answer: int, n_reference: int, *, tolerance: float = 1.5, limit: float = 4.0) -> float:
    if not 1.0 <= tolerance < limit:
        raise ValueError(f"need 1 <= tolerance < limit, got tolerance={tolerance}, limit={limit}")
    if n_reference == 0:
        return 0.0
    if n_answer == 0:
        return 1.0
    excess = abs(math.log(n_answer / n_reference)) - math.log(tolerance)
    return min(1.0, max(0.0, excess / (math.log(limit) - math.log(tolerance))))


def repetition_rate(tokens: Sequence[str], n: int = 2) -> float:
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)]
    if len(grams) < 2:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)
