"""`rxmrl data check` (summarise or find bad rows) and `rxmrl data synth` (write synthetic episodes)."""

from __future__ import annotations

import argparse
import json
import sys

from rxmrl.errors import ConfigError, DataError

_MAX_ERRORS_SHOWN = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="check episode data; write synthetic episodes")
    data = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    check = data.add_parser(
        "check", help="summarise a dataset, or print its first bad rows (exit status 2)",
        description="SOURCE: a Hub dataset id, a local snapshot folder in the Hub layout, or a .jsonl/.json/"
                    ".parquet file. Without --subset/--split every subset and split is checked. Subsets named "
                    "'stories' and 'qa' are read as stories and query/answer pairs, others as episodes.")
    check.add_argument("source")
    check.add_argument("--subset", help="one subset (config), e.g. steps-4")
    check.add_argument("--split", help="one split, e.g. train")
    check.add_argument("--kind", choices=("auto", "episodes", "pairs", "stories"), default="auto",
                       help="what the rows hold (default: by subset name)")
    check.add_argument("--json", action="store_true", help="print the summaries as JSON")
    check.set_defaults(handler=_check)

    synth = data.add_parser(
        "synth", help="write deterministic synthetic episodes in the TinyStories-MRL layout",
        description="Writes DIR/README.md and DIR/<subset>/<split>-00000-of-00001.parquet with subsets steps-1 "
                    "(single), steps-N (cumulative) and steps-N-lr (long-range).")
    synth.add_argument("--out", required=True, help="output folder (must be new or empty; written atomically)")
    synth.add_argument("--overwrite", action="store_true",
                       help="replace an existing dataset folder (refused if it holds files this would not write)")
    synth.add_argument("--steps", default="1,2,4,8,16", help="episode lengths, comma-separated (default 1,2,4,8,16)")
    synth.add_argument("--episodes", type=int, default=1000, help="training episodes per subset (default 1000)")
    synth.add_argument("--eval-episodes", type=int, help="validation episodes per subset (default episodes/10)")
    synth.add_argument("--test-episodes", type=int, default=0, help="test episodes per subset (default 0)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--no-long-range", action="store_true", help="leave out the steps-N-lr subsets")
    synth.add_argument("--stories", type=int, default=0, help="also write N plain stories (subset 'stories')")
    synth.add_argument("--pairs", type=int, default=0, help="also write N query/answer pairs (subset 'qa')")
    synth.add_argument("--format", choices=("parquet", "jsonl"), default="parquet")
    synth.set_defaults(handler=_synth)


def _check(args: argparse.Namespace) -> int:
    from rxmrl.data.loader import read_table
    from rxmrl.data.sources import list_splits, list_subsets
    from rxmrl.data.stats import format_summary, summarize_episodes

    subsets = [args.subset] if args.subset else list_subsets(args.source)
    summaries, errors, total_errors = {}, [], 0
    for subset in subsets:
        if args.subset and args.split:
            splits = [args.split]  # exactly this table (a plain file ignores it): a missing split is an error
        else:
            available = list_splits(args.source, subset)
            # a plain file has no splits; otherwise every split, or the one asked for where a subset has it
            splits = [s for s in available if args.split in (None, s)] if available else [None]
        kind = _kind(subset, args.kind)
        for split in splits:
            result = read_table(args.source, subset, split or "train", kind)
            total_errors += len(result.errors)
            errors.extend(result.errors[: _MAX_ERRORS_SHOWN - len(errors)])
            if kind == "episodes":
                summaries[result.label] = summarize_episodes(result.items) | {"kind": kind,
                                                                              "bad_rows": len(result.errors)}
            else:
                words = [len((i if isinstance(i, str) else f"{i.query} {i.answer}").split()) for i in result.items]
                summaries[result.label] = {"kind": kind, "rows": len(result.items), "bad_rows": len(result.errors),
                                           "words_max": max(words, default=0),
                                           "words_mean": sum(words) / max(1, len(words))}
    if not summaries:
        raise DataError(f"{args.source}: no subset has a split '{args.split}'")
    if args.json:
        print(json.dumps(summaries, indent=2))
    else:
        for label, summary in summaries.items():
            if summary["kind"] == "episodes":
                print(format_summary(label, summary))
            else:
                print(f"{label}\n  {summary['kind']}: {summary['rows']} rows, "
                      f"words mean {summary['words_mean']:.1f}, max {summary['words_max']}")
    if total_errors:
        print(f"invalid data: {total_errors} bad rows; the first {len(errors)}:", file=sys.stderr)
        for line in errors:
            print(f"  {line}", file=sys.stderr)
        return 2
    empty = [label for label, s in summaries.items() if s.get("episodes", s.get("rows")) == 0]
    if empty:
        print(f"invalid data: no rows in {', '.join(empty)}", file=sys.stderr)
        return 2
    if not args.json:
        print(f"ok: {len(summaries)} table(s) valid")
    return 0


def _kind(subset: str | None, requested: str) -> str:
    from rxmrl.data.synthetic_dataset import PAIRS_SUBSET, STORIES_SUBSET

    if requested != "auto":
        return requested
    return {STORIES_SUBSET: "stories", PAIRS_SUBSET: "pairs"}.get(subset or "", "episodes")


def _synth(args: argparse.Namespace) -> int:
    from rxmrl.atomic import check_output_dir
    from rxmrl.data.synthetic_dataset import subset_plan, write_synthetic_dataset

    check_output_dir(args.out, overwrite=args.overwrite)
    steps = _parse_steps(args.steps)
    for name, value in (("--episodes", args.episodes), ("--test-episodes", args.test_episodes),
                        ("--stories", args.stories), ("--pairs", args.pairs), ("--eval-episodes", args.eval_episodes)):
        if value is not None and value < 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")
    if args.episodes == 0:
        raise ConfigError("--episodes must be >= 1")
    out = write_synthetic_dataset(args.out, steps, args.episodes, seed=args.seed, eval_episodes=args.eval_episodes,
                                  test_episodes=args.test_episodes, long_range=not args.no_long_range,
                                  stories=args.stories, pairs=args.pairs, fmt=args.format,
                                  overwrite=args.overwrite)
    subsets = [name for name, _, _ in subset_plan(steps, not args.no_long_range)]
    subsets += ["stories"] * bool(args.stories) + ["qa"] * bool(args.pairs)
    print(f"wrote {out}: subsets {', '.join(subsets)}")
    return 0


def _parse_steps(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--steps {text!r}: expected comma-separated integers, e.g. 1,2,4,8") from None
    if not steps or any(n < 1 for n in steps):
        raise ConfigError(f"--steps {text!r}: episode lengths must be integers >= 1")
    return steps
