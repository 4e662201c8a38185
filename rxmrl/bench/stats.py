"""Mean and confidence interval of a few per-seed figures (Student's t: with 3 seeds the normal 1.96 would
claim far more certainty than three numbers carry)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# Two-sided 95% quantiles of Student's t, t_{0.975, df}, for df = 1..30 (standard tables); 1.96 beyond.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t_quantile_975(df: int) -> float:
    """t_{0.975} with `df` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """{mean, std (sample), n, ci95: [low, high] or None for a single value, values}."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return {"mean": mean, "std": None, "n": 1, "ci95": None, "values": list(values)}
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "ci95": [mean - half, mean + half], "values": list(values)}
