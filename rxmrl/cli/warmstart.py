"""`rxmrl warmstart STAGE --config FILE --out DIR`: run one supervised warm-start stage on its own.

The config (a standalone stage file, e.g. `curricula/warmstart/joint-lm.toml`) names the model (a preset for
fresh weights, or a trained folder such as an earlier stage's `final/`), the tokenizer (a file, the model
folder's own, or trained from the data) and the data. Re-running the same command resumes from the latest
checkpoint in DIR; a finished stage (DIR/final/) just reports its metrics.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STAGE_CHOICES = ("joint-lm", "sft", "memory-attention", "smat")
STAGE_RECORD = "warmstart.json"  # the stage's resolved config, written at first start: marks the folder as ours


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "warmstart", help="run one supervised warm-start stage (joint-lm, sft, memory-attention, smat)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stage", choices=STAGE_CHOICES, metavar="STAGE", help=", ".join(STAGE_CHOICES))
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="stage TOML file, or a name under curricula/warmstart/ (e.g. joint-lm)")
    parser.add_argument("--out", required=True, metavar="DIR", help="run folder (checkpoints, metrics, final/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set steps=100 --set data.examples=500")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (default: torch's choice; 1 is often fastest on a shared machine)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from rxmrl.train import distributed
    from rxmrl.train.run_folder import claim_run_folder, run_lock
    from rxmrl.train.warmstart import run_warmstart

    config = load_stage_config(args.stage, args.config, args.overrides)
    out_dir = Path(args.out)
    claim_run_folder(out_dir, STAGE_RECORD, what="warm-start")
    # under torchrun / accelerate launch: join the process group (a no-op for a single process)
    distributed.init_from_env(args.device)
    device = distributed.local_device(args.device)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    main = distributed.is_main()
    try:
        with run_lock(out_dir, enabled=main):  # one run at a time in a folder
            config = record_stage(config, args.seed, out_dir, write=main)
            torch.manual_seed(args.seed)  # fresh weights of a preset are drawn from the seed (rank 0's are shared)
            model = build_model(config)
            # rank 0 finds or trains the tokenizer; the others use that very one (no N-fold training)
            tokenizer = distributed.from_main(lambda: build_tokenizer(config, out_dir))
            if main:
                print(f"rxmrl warmstart {config.stage}: model {config.model}, {config.steps} steps -> {out_dir}")
            # sft's mlm_head_from = "auto" looks only in the model folder the config names
            heads = [Path(config.model)] if Path(config.model).is_dir() else []
            metrics = run_warmstart(config.warmstart(), model, tokenizer, out_dir, seed=args.seed, device=device,
                                    progress=not args.no_progress, mlm_head_sources=heads)
    finally:
        distributed.shutdown()
    if main:
        print(json.dumps({k: round(v, 6) for k, v in sorted(metrics.items())}, indent=2))
        print(f"model: {out_dir / 'final'}")
    return 0


def record_stage(config, seed: int, out_dir: Path, *, write: bool):
    """`config` with its local paths made absolute, recorded in `DIR/warmstart.json` at first start; a folder
    recording other settings (or another seed) is refused, since its checkpoints were made from those."""
    from rxmrl.atomic import atomic_write_text
    from rxmrl.config import from_dict, to_dict
    from rxmrl.errors import ConfigError
    from rxmrl.train.run_folder import absolute_paths, first_difference
    from rxmrl.train.warmstart import StandaloneWarmStartConfig

    record = out_dir / STAGE_RECORD
    config = from_dict(StandaloneWarmStartConfig, absolute_paths(to_dict(config)), source=str(record))
    wanted = {"seed": seed, "config": to_dict(config)}
    if record.is_file():
        difference = first_difference(json.loads(record.read_text(encoding="utf-8")), wanted)
        if difference:
            raise ConfigError(f"{out_dir} holds a {config.stage} stage started with other settings ({difference}); "
                              f"continue it unchanged, or choose a new --out")
    elif write:
        atomic_write_text(record, json.dumps(wanted, indent=2) + "\n")
    return config


def load_stage_config(stage: str, name_or_path: str, overrides: list[str]):
    """Read a standalone stage file; its `stage` key (if any) must agree with STAGE on the command line."""
    from rxmrl.config import from_dict, load_toml, merge, parse_overrides
    from rxmrl.errors import ConfigError
    from rxmrl.train.warmstart import StandaloneWarmStartConfig

    path = resolve_config(name_or_path)
    data = merge(load_toml(path), parse_overrides(overrides))
    if data.get("stage", stage) != stage:
        raise ConfigError(f"{path}: this file is for stage '{data['stage']}', not '{stage}'")
    data["stage"] = stage
    return from_dict(StandaloneWarmStartConfig, data, source=str(path))


def resolve_config(name_or_path: str) -> Path:
    from rxmrl.catalog import catalog_dirs, names_a_path
    from rxmrl.errors import ConfigError

    path = Path(name_or_path).expanduser()
    if names_a_path(name_or_path) and path.is_file():  # a bare name is a preset, never a file in the cwd
        return path
    for folder in catalog_dirs("curricula"):
        candidate = folder / "warmstart" / f"{path.name.removesuffix('.toml')}.toml"
        if candidate.is_file():
            return candidate
    raise ConfigError(f"--config {name_or_path}: no such file, and no curricula/warmstart/{path.name} preset")


def build_model(config):
    """A trained folder is loaded as it is; a preset name or file builds fresh weights."""
    from rxmrl.model import RxT, load_preset

    if Path(config.model).is_dir():
        return RxT.from_pretrained(config.model)
    return RxT(load_preset(config.model, set_items=config.model_set))


def build_tokenizer(config, out_dir: Path):
    """In order: this run's own (when resuming), the `tokenizer` key, the model folder's, or trained on the data."""
    from rxmrl.data import Tokenizer, train_tokenizer
    from rxmrl.model import load_preset
    from rxmrl.train.checkpoint import latest_checkpoint
    from rxmrl.train.warmstart.data import tokenizer_corpus

    for folder in (out_dir / "final", latest_checkpoint(out_dir)):
        if folder is not None and (folder / "tokenizer.json").is_file():
            return Tokenizer.from_file(folder / "tokenizer.json")
    if config.tokenizer is not None:
        return Tokenizer.from_pretrained(config.tokenizer)
    if Path(config.model).is_dir() and (Path(config.model) / "tokenizer.json").is_file():
        return Tokenizer.from_file(Path(config.model) / "tokenizer.json")
    vocab = config.tokenizer_vocab_size
    if vocab == 0:
        vocab = (load_preset(config.model, set_items=config.model_set).vocab_size if not Path(config.model).is_dir()
                 else _folder_vocab(Path(config.model)))
    print(f"training a {vocab}-token tokenizer on the data ({config.data.source})")
    return train_tokenizer(tokenizer_corpus(config.data), vocab)


def _folder_vocab(folder: Path) -> int:
    import json

    return int(json.loads((folder / "config.json").read_text())["vocab_size"])
