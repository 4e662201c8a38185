"""The reward audit: score hostile variants of real reference answers and check that each ranks where it should.

For every rewarded follow-up of the episodes (single and cumulative: each follow-up, remembering what came
before it; long-range: the last follow-up, in long_range mode) the variants of `rxmrl.reward.variants` are
scored together in one batch. Rules, per case:
  - every hostile variant scores below the reference answer itself (margin = reference - variant > 0);
  - a value swap scores at least `SWAP_GAP` points below the correct paraphrase.
The report gives, per variant, the mean score, the smallest margin and the cases that pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rxmrl.atomic import atomic_file, atomic_write_text
from rxmrl.data.episode import Episode, Interaction
from rxmrl.reward.base import RewardBatch
from rxmrl.reward.variants import HOSTILE, build_variants

SWAP_GAP = 2.0  # points (0-10) a value swap must lose against the correct paraphrase


@dataclass(frozen=True)
class AuditCase:
    query: str
    reference: str
    remember: tuple[Interaction, ...]
    facts: dict[str, str] | None
    mode: str


def audit_cases(episodes: Sequence[Episode]) -> list[AuditCase]:
    """The rewarded follow-ups of `episodes`, each with what it should remember."""
    cases = []
    for ep in episodes:
        if ep.strategy == "long_range":
            cases.append(AuditCase(ep.follow_ups[-1].query, ep.follow_ups[-1].answer, (ep.first,), ep.facts,
                                   "long_range"))
            continue
        for k, step in enumerate(ep.follow_ups):
            cases.append(AuditCase(step.query, step.answer, (ep.first, *ep.follow_ups[:k]), ep.facts, "standard"))
    return cases


def run_audit(reward: Callable[[RewardBatch], Any], cases: Sequence[AuditCase]) -> dict[str, Any]:
    """Score every variant of every case; return the per-case scores and the per-variant summary."""
    if len(cases) < 2:
        raise ValueError("the audit needs at least 2 cases (the unrelated answer is another case's reference)")
    rows = []
    for i, case in enumerate(cases):
        other = cases[(i + 1) % len(cases)].reference
        variants = build_variants(case.query, case.reference, case.remember, other)
        size = len(variants)
        batch = RewardBatch(query=[case.query] * size, generated=list(variants.values()),
                            reference=[case.reference] * size, remember=[list(case.remember)] * size,
                            facts=[case.facts] * size, mode=[case.mode] * size)
        out = reward(batch)
        scores = dict(zip(variants, [float(v) for v in out.total.tolist()]))
        rows.append({"query": case.query, "reference": case.reference, "answers": variants, "scores": scores})
    return {"cases": rows, "summary": summarise(rows)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant: mean score, smallest margin below the reference, passing cases; and the overall verdict."""
    variants: dict[str, dict[str, Any]] = {}
    for name in ("reference", "paraphrase", *HOSTILE):
        scores = [r["scores"][name] for r in rows]
        entry: dict[str, Any] = {"mean": sum(scores) / len(scores)}
        if name in HOSTILE:
            margins = [r["scores"]["reference"] - r["scores"][name] for r in rows]
            entry.update(min_margin=min(margins), passed=sum(m > 0 for m in margins))
        variants[name] = entry
    gaps = [r["scores"]["paraphrase"] - r["scores"]["value_swap"] for r in rows]
    swap = {"min_gap": min(gaps), "mean_gap": sum(gaps) / len(gaps), "passed": sum(g >= SWAP_GAP for g in gaps),
            "required": SWAP_GAP}
    ok = all(variants[n]["passed"] == len(rows) for n in HOSTILE) and swap["passed"] == len(rows)
    return {"cases": len(rows), "variants": variants, "swap_vs_paraphrase": swap, "passed": ok}


def markdown_table(summary: dict[str, Any], spec_name: str) -> str:
    n = summary["cases"]
    lines = [f"Reward audit of `{spec_name}` on {n} cases (scores 0-10; margin = reference - variant)", "",
             "| variant | mean score | min margin below reference | cases below reference |",
             "|---|---:|---:|---:|"]
    for name, v in summary["variants"].items():
        if "min_margin" in v:
            lines.append(f"| {name} | {v['mean']:.2f} | {v['min_margin']:+.2f} | {v['passed']}/{n} |")
        else:
            lines.append(f"| {name} | {v['mean']:.2f} | - | - |")
    s = summary["swap_vs_paraphrase"]
    lines += ["", f"Value swap below paraphrase by >= {s['required']:.1f}: {s['passed']}/{n} cases "
              f"(min gap {s['min_gap']:+.2f}, mean gap {s['mean_gap']:+.2f}).",
              f"Verdict: {'PASS' if summary['passed'] else 'FAIL'}", ""]
    return "\n".join(lines)


def write_report(result: dict[str, Any], spec_name: str, out: Path, *, plot: bool = True) -> list[Path]:
    """summary.md, audit.json and (when matplotlib is installed and `plot`) audit.png under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    written = [atomic_write_text(out / "summary.md", markdown_table(result["summary"], spec_name)),
               atomic_write_text(out / "audit.json", json.dumps({"spec": spec_name, **result}, indent=2) + "\n")]
    if plot:
        written.append(plot_audit(result["summary"], spec_name, out / "audit.png"))
    return written


def plot_audit(summary: dict[str, Any], spec_name: str, path: Path) -> Path:
    """Mean score per variant, bars; raises ImportError when matplotlib is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["variants"])
    means = [summary["variants"][n]["mean"] for n in names]
    colours = ["tab:green" if n in ("reference", "paraphrase") else "tab:red" for n in names]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(names, means, color=colours)
    ax.set_ylim(0, 10)
    ax.set_ylabel("mean score (0-10)")
    ax.set_title(f"reward audit: {spec_name} ({summary['cases']} cases)")
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return path
