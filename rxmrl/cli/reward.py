"""`rxmrl reward ...`: score answers with a reward spec, and list the rewards available.

    rxmrl reward score --spec mrl-composite --cases cases.jsonl --json
    rxmrl reward audit --spec mrl-composite --data builtin --out runs/audit
    rxmrl reward list

Each line of the cases file is one JSON object:
    {"query": str, "generated": str, "reference": str, "remember": [{"query": str, "answer": str}, ...],
     "facts": {slot: value} (optional), "mode": "standard" | "negative" | "long_range" (optional),
     "step": int (optional), "id" or "name": str | int (optional, echoed in the results)}
Cases carry text only, so BLEU uses the word-level fallback (see `rxmrl.reward.composite`).

`audit` scores hostile variants of each reference answer (`rxmrl.reward.audit`) and exits 1 when one ranks
where it should not, so it can gate a reward change in CI.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

CASE_KEYS = {"query", "generated", "reference", "remember", "facts", "mode", "step", "id", "name"}
LABEL_KEYS = ("id", "name")  # optional case labels, echoed in the results
REQUIRED_KEYS = ("query", "generated", "reference", "remember")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reward", help="score answers with a reward; list rewards")
    sub = parser.add_subparsers(dest="reward_command", metavar="ACTION", required=True)

    score = sub.add_parser("score", help="score the cases of a JSONL file; print one result per case")
    score.add_argument("--spec", default="mrl-composite",
                       help="preset name, TOML path, registered name, module:function or file.py[:function] "
                            "(default: mrl-composite)")
    score.add_argument("--cases", required=True, type=Path, help="JSONL file, one case per line")
    score.add_argument("--json", action="store_true", help="print a JSON array of {total, components}")
    score.add_argument("--batch-size", type=int, default=64, help="cases scored per call (default: 64)")
    score.set_defaults(handler=_score)

    audit = sub.add_parser(
        "audit", help="score hostile variants of reference answers; check each ranks below the reference",
        description="Builds a paraphrase and hostile variants (value swap, negation, parroting, keyword spam, "
                    "repetition, truncation, unrelated, empty) of each reference answer, scores them and checks "
                    "that every hostile variant scores below the reference and a value swap >= 2 points below "
                    "the paraphrase. Writes summary.md, audit.json and audit.png (needs matplotlib) to --out.")
    audit.add_argument("--spec", default="mrl-composite", help="reward spec, as for 'score' (default: mrl-composite)")
    audit.add_argument("--data", default="builtin",
                       help="'builtin' (default: shipped TinyStories-style episodes without facts) or any source "
                            "rxmrl.data.load_episodes reads")
    audit.add_argument("--subset", default=None, help="subset of the source")
    audit.add_argument("--split", default="train", help="split (default train)")
    audit.add_argument("--limit", type=int, default=None, help="audit only the first N episodes")
    audit.add_argument("--out", required=True, type=Path, help="output folder (must be new or empty)")
    audit.add_argument("--overwrite", action="store_true", help="replace an earlier audit in --out")
    audit.add_argument("--no-claims", action="store_true",
                       help="composite specs: switch off claim extraction (the scores before rxmrl.reward.claims)")
    audit.add_argument("--no-plot", action="store_true", help="skip audit.png")
    audit.set_defaults(handler=_audit)

    listing = sub.add_parser("list", help="list reward names: built-ins, presets, plug-ins, entry points")
    listing.set_defaults(handler=_list)


def _score(args: argparse.Namespace) -> int:
    from rxmrl.errors import ConfigError
    from rxmrl.reward import get_reward

    if args.batch_size < 1:
        raise ConfigError("--batch-size must be >= 1")
    cases = read_cases(args.cases)
    reward = get_reward(args.spec)
    results: list[dict[str, Any]] = []
    for start in range(0, len(cases), args.batch_size):
        batch = cases_to_batch(cases[start: start + args.batch_size])
        out = reward(batch)
        for i in range(len(batch)):
            case = cases[start + i]
            labels = {key: case[key] for key in LABEL_KEYS if key in case}
            results.append({
                **labels,
                "total": float(out.total[i]),
                "components": {name: float(values[i]) for name, values in out.components.items()},
            })
    outside = [i for i, r in enumerate(results, start=1) if not 0.0 <= r["total"] <= 10.0]
    if outside:  # scored as given here; training clips them (rxmrl.train.guard)
        print(f"rxmrl: warning: reward '{reward.name}' gave {len(outside)} of {len(results)} totals outside the 0-10 "
              f"scale (cases {', '.join(map(str, outside[:5]))}); training clips them to 0-10", file=sys.stderr)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for number, result in enumerate(results, start=1):
            parts = "  ".join(f"{k}={v:.3f}" for k, v in result["components"].items())
            label = "".join(f" {key}={result[key]}" for key in LABEL_KEYS if key in result)
            print(f"case {number}{label}: total {result['total']:.3f}  {parts}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from rxmrl.atomic import atomic_dir, check_output_dir
    from rxmrl.errors import ConfigError
    from rxmrl.reward import CompositeReward, get_reward
    from rxmrl.reward.audit import audit_cases, markdown_table, run_audit, write_report

    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be >= 1")
    check_output_dir(args.out, overwrite=args.overwrite)  # before loading a model
    if args.data == "builtin":
        from rxmrl.reward.audit_set import AUDIT_EPISODES

        episodes = list(AUDIT_EPISODES)
    else:
        from rxmrl.data.loader import load_episodes

        episodes = load_episodes(args.data, args.subset, args.split)
    episodes = episodes[: args.limit] if args.limit else episodes
    reward = get_reward(args.spec)
    if args.no_claims:
        if not isinstance(reward.fn, CompositeReward):
            raise ConfigError(f"--no-claims: reward '{reward.name}' is not a composite spec")
        reward.fn.claim_extractor = None
    result = run_audit(reward, audit_cases(episodes))
    plot = not args.no_plot
    if plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("rxmrl: note: audit.png skipped: plots need matplotlib (pip install 'rxmrl[plot]')", file=sys.stderr)
            plot = False
    name = reward.name + (" (no claims)" if args.no_claims else "")
    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        write_report(result, name, tmp, plot=plot)
    print(markdown_table(result["summary"], name))
    print(f"wrote {args.out}: summary.md, audit.json" + (", audit.png" if plot else ""))
    return 0 if result["summary"]["passed"] else 1


def _list(args: argparse.Namespace) -> int:
    from rxmrl.reward import list_rewards

    for name, source in list_rewards().items():
        print(f"{name:24s} {source}")
    return 0


def read_cases(path: Path) -> list[dict[str, Any]]:
    """Read and check a cases file; a bad line is a `DataError` naming the file, line and key."""
    from rxmrl.errors import DataError
    from rxmrl.reward.base import MODES

    if not path.is_file():
        raise DataError(f"{path}: no such cases file")
    cases = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{where}: not UTF-8 text: {e}") from None
            if not line.strip():
                continue
            try:
                case = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: invalid JSON: {e}") from None
            if not isinstance(case, dict):
                raise DataError(f"{where}: expected a JSON object per line")
            unknown = sorted(set(case) - CASE_KEYS)
            if unknown:
                raise DataError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(CASE_KEYS))})")
            for key in REQUIRED_KEYS:
                if key not in case:
                    raise DataError(f"{where}: missing key '{key}'")
            for key in ("query", "generated", "reference"):
                if not isinstance(case[key], str):
                    raise DataError(f"{where}: '{key}' must be a string")
            remember = case["remember"]
            if not isinstance(remember, list) or not all(
                isinstance(it, dict) and set(it) == {"query", "answer"}
                and all(isinstance(v, str) for v in it.values()) for it in remember
            ):
                raise DataError(f"{where}: 'remember' must be a list of {{\"query\": str, \"answer\": str}}")
            facts = case.get("facts")
            if facts is not None and not (
                isinstance(facts, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in facts.items())
            ):
                raise DataError(f"{where}: 'facts' must be an object of slot -> value strings, or null")
            if case.get("mode", "standard") not in MODES:
                raise DataError(f"{where}: 'mode' must be one of {', '.join(MODES)}, got {case['mode']!r}")
            for key in LABEL_KEYS:
                if key in case and (isinstance(case[key], bool) or not isinstance(case[key], (str, int))):
                    raise DataError(f"{where}: '{key}' must be a string or an integer")
            step = case.get("step")
            if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
                raise DataError(f"{where}: 'step' must be an integer")
            cases.append(case)
    if not cases:
        raise DataError(f"{path}: no cases")
    return cases


def cases_to_batch(cases: list[dict[str, Any]]):
    from rxmrl.data.episode import Interaction
    from rxmrl.reward.base import RewardBatch

    has_step = all(c.get("step") is not None for c in cases)
    return RewardBatch(
        query=[c["query"] for c in cases],
        generated=[c["generated"] for c in cases],
        reference=[c["reference"] for c in cases],
        remember=[[Interaction(it["query"], it["answer"]) for it in c["remember"]] for c in cases],
        facts=[c.get("facts") or None for c in cases],
        step=[c["step"] for c in cases] if has_step else [],
        mode=[c.get("mode", "standard") for c in cases],
    )
