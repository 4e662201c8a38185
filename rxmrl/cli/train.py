"""`rxmrl train CURRICULUM.toml --out RUN_DIR [--seed N] [--set key=value ...]` and
`rxmrl train --resume RUN_DIR`: run an MRL curriculum, or continue a killed run exactly where it stopped.
Under `torchrun --nproc_per_node N -m rxmrl train ...` it trains data-parallel (docs/DISTRIBUTED.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="run an MRL curriculum (warm-start stages, then IMPO stages); resume a killed run",
        description=__doc__,
    )
    parser.add_argument("curriculum", nargs="?", help="curriculum TOML file or preset name in curricula/")
    parser.add_argument("--out", help="run folder (checkpoints, TensorBoard, metrics.jsonl, final/)")
    parser.add_argument("--seed", type=int, help="seed of the run (default: the curriculum's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a curriculum key, e.g. impo.clip_eps=0.1 or stage.0.epochs=2 (repeatable); "
                             "with --resume only learning rates, e.g. stage.*.lr.decoder=1e-5")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR with its saved curriculum")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the curriculum's)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: the curriculum's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON at the end")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rxmrl.catalog import find_preset
    from rxmrl.errors import ConfigError
    from rxmrl.recipes.curriculum import resolved_run, run_curriculum
    from rxmrl.recipes.curriculum_config import load_curriculum
    from rxmrl.train import distributed

    if args.resume:
        if args.curriculum or args.seed is not None:
            raise ConfigError("--resume RUN_DIR continues with the run's saved curriculum; drop the curriculum "
                              "file and --seed (--set may change learning rates only)")
        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            raise ConfigError(f"--out {args.out} differs from --resume {args.resume}; a run resumes in its own folder")
        from rxmrl.recipes.resume_changes import check_resume_overrides, resume_with_learning_rates

        check_resume_overrides(args.overrides)
        run_dir = Path(args.resume)
        config = resolved_run(run_dir)
        if args.overrides:
            config = resume_with_learning_rates(run_dir, args.overrides)
    else:
        if not args.curriculum or not args.out:
            raise ConfigError("give a curriculum and --out RUN_DIR (or --resume RUN_DIR)")
        config = load_curriculum(find_preset("curricula", args.curriculum), args.overrides, seed=args.seed)
        run_dir = Path(args.out)
    if args.threads is not None:
        config.threads = args.threads
    # under torchrun / accelerate launch: join the process group (a no-op for a single process)
    distributed.init_from_env(args.device or config.device)
    try:
        summary = run_curriculum(config, run_dir, resume=bool(args.resume), progress=not args.no_progress,
                                 device=args.device)
    finally:
        distributed.shutdown()
    if args.json and distributed.is_main():
        print(json.dumps(summary, indent=2))
    return 0
