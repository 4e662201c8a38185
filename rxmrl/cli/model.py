"""`rxmrl model ...`: inspect presets, create random-weight checkpoints, import RxNN checkpoints, generate."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rxmrl.errors import CheckpointError, ConfigError

# Special-token order of rxmrl.data's tokenizer: [PAD] 0, [UNK] 1, [BOS] 2, [EOS] 3, [MASK] 4, [Q] 5, [A] 6.
DEFAULT_BOS_ID = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("model", help="inspect presets, create checkpoints, generate")
    commands = parser.add_subparsers(dest="model_command", metavar="COMMAND", required=True)

    info = commands.add_parser("info", help="parameter counts of a preset or model folder")
    info.add_argument("model", metavar="PRESET_OR_CHECKPOINT", help="preset name, TOML path or model folder")
    info.add_argument("--json", action="store_true", help="print the counts as JSON")
    info.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE",
                      help="override a preset key, e.g. --set decoder.layers=4")
    info.set_defaults(handler=run_info)

    init = commands.add_parser("init", help="write a randomly initialised model folder from a preset")
    init.add_argument("preset", help="preset name or TOML path")
    init.add_argument("--out", type=Path, required=True, help="model folder to write")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--overwrite", action="store_true",
                      help="replace an existing model folder (refused if it holds files other than a model's)")
    init.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE")
    init.set_defaults(handler=run_init)

    imports = commands.add_parser("import", help="convert RxNN / RxT-Alpha checkpoints into an rxmrl model folder",
                                  description="Read RxNN checkpoints (folders or Hub ids) and write an rxmrl model "
                                              "folder that computes the same function; see docs/IMPORT.md.")
    imports.add_argument("--decoder", required=True, metavar="DIR_OR_ID",
                         help="an RxTDecoder, or a single-folder RxTAlpha (then nothing else is needed)")
    imports.add_argument("--encoder", metavar="DIR_OR_ID", help="the RxTEncoder trained with the decoder")
    imports.add_argument("--memory-attention", metavar="DIR_OR_ID",
                         help="an RxNN memory attention (default: rxmrl's, freshly initialised)")
    imports.add_argument("--tokenizer", metavar="FILE_OR_ID",
                         help="tokenizer.json, a folder or Hub id holding one (default: the decoder's, if any)")
    imports.add_argument("--out", type=Path, required=True, help="model folder to write (must be new or empty)")
    imports.add_argument("--overwrite", action="store_true", help="replace --out if it holds only files this command writes")
    imports.add_argument("--stm-init-std", type=float, default=None,
                         help="std of the initial STM (default: 1.0 for an RxTAlpha, 0.02 for components)")
    imports.add_argument("--causal-memory-cross-attention", action="store_true",
                         help="for checkpoints trained before RxNN 0.2.60 (causal memory cross-attention)")
    imports.add_argument("--name", default=None, help="model name in config.json (default: the --out folder's)")
    imports.add_argument("--seed", type=int, default=0, help="seeds a fresh memory attention")
    imports.set_defaults(handler=run_import)

    generate = commands.add_parser("generate", help="answer a prompt (or a bare [BOS]) and report tokens/s")
    generate.add_argument("model", metavar="PRESET_OR_CHECKPOINT",
                          help="preset (random weights), model folder, or Hub repo id")
    generate.add_argument("--prompt", default=None, help="query text (needs a tokenizer)")
    generate.add_argument("--new-tokens", type=int, default=32)
    generate.add_argument("--seed", type=int, default=0, help="seeds the random weights of a preset and sampling")
    generate.add_argument("--tokenizer", type=Path, default=None,
                          help="tokenizer.json (default: the one in the model folder, if any)")
    generate.add_argument("--greedy", action="store_true")
    generate.add_argument("--temperature", type=float, default=1.0)
    generate.add_argument("--top-k", type=int, default=0)
    generate.add_argument("--top-p", type=float, default=1.0)
    generate.add_argument("--bos-id", type=int, default=DEFAULT_BOS_ID, help="prompt id when there is no tokenizer")
    generate.add_argument("--threads", type=int, default=1,
                          help="torch threads (0 = torch's default; 1 is fastest for batch-1 decoding)")
    generate.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE")
    generate.set_defaults(handler=run_generate)


def _load_config(name: str, set_items: list[str]):
    from rxmrl.model import load_preset
    from rxmrl.model.pretrained import load_config

    if Path(name).is_dir():
        if set_items:
            raise ConfigError("--set: overrides apply to presets, not to a saved model folder")
        return load_config(Path(name))
    return load_preset(name, set_items=set_items)


def run_info(args: argparse.Namespace) -> int:
    import torch

    from rxmrl.model import RxT

    config = _load_config(args.model, args.set_items)
    with torch.device("meta"):  # counts need shapes only: no memory, no init time, even for 160M
        counts = RxT(config).parameter_counts()
    if args.json:
        print(json.dumps(counts))
        return 0
    print(config.name)
    print(f"  decoder           {counts['decoder']['total']:>13,} total  {counts['decoder']['active']:>13,} active/token")
    print(f"  encoder           {counts['encoder']['total']:>13,}")
    print(f"  memory_attention  {counts['memory_attention']['total']:>13,}")
    print(f"  total             {counts['total']:>13,} distinct (embedding counted once)")
    return 0


def run_init(args: argparse.Namespace) -> int:
    import torch

    from rxmrl.atomic import check_output_dir
    from rxmrl.model import RxT, load_preset

    check_output_dir(args.out, overwrite=args.overwrite)
    torch.manual_seed(args.seed)
    model = RxT(load_preset(args.preset, set_items=args.set_items))
    folder = model.save_pretrained(args.out, overwrite=args.overwrite)
    print(f"wrote {folder} ({model.parameter_counts()['total']:,} parameters, seed {args.seed})")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from rxmrl.atomic import check_output_dir
    from rxmrl.model.pretrained import is_hub_id, resolve_pretrained_dir
    from rxmrl.model.rxnn import ImportChoices, import_rxnn
    from rxmrl.model.rxnn.tokenizer import import_tokenizer

    out: Path = args.out
    check_output_dir(out, overwrite=args.overwrite)
    if args.stm_init_std is not None and args.stm_init_std < 0:
        raise ConfigError(f"--stm-init-std: must not be negative, got {args.stm_init_std}")
    choices = ImportChoices(args.stm_init_std, args.causal_memory_cross_attention, args.name or out.name)
    tokenizer_source = args.tokenizer
    if tokenizer_source is None:
        folder = Path(args.decoder) if Path(args.decoder).is_dir() else None
        if folder is None and is_hub_id(args.decoder):
            folder = resolve_pretrained_dir(args.decoder)  # the import reads it from the cache
        if folder is not None and (folder / "tokenizer.json").is_file():
            tokenizer_source = folder / "tokenizer.json"
    tokenizer = import_tokenizer(tokenizer_source) if tokenizer_source is not None else None
    model = import_rxnn(args.decoder, args.encoder, args.memory_attention, choices, seed=args.seed,
                        tokenizer=tokenizer)
    if tokenizer is not None and tokenizer.vocab_size > model.config.vocab_size:
        raise ConfigError(f"--tokenizer: {tokenizer_source} has {tokenizer.vocab_size} tokens, the model only "
                          f"{model.config.vocab_size} embeddings")
    write_extra = (lambda tmp: tokenizer.save(tmp / "tokenizer.json")) if tokenizer is not None else None
    model.save_pretrained(out, write_extra, overwrite=args.overwrite)
    spec = model.config.memory_attention
    memory = "fresh (random)" if args.memory_attention is None and args.encoder is not None else spec.variant
    print(f"wrote {out} ({model.parameter_counts()['total']:,} parameters; memory attention {memory}, "
          f"gate {spec.gate}; tokenizer {'yes' if tokenizer is not None else 'none'})")
    return 0


def _load_model(name: str, seed: int, set_items: list[str]):
    import torch

    from rxmrl.model import RxT, load_preset
    from rxmrl.model.pretrained import is_hub_id

    if Path(name).is_dir() or (is_hub_id(name) and not _is_preset(name)):
        if set_items:
            raise ConfigError("--set: overrides apply to presets, not to a saved model")
        return RxT.from_pretrained(name), True
    torch.manual_seed(seed)
    return RxT(load_preset(name, set_items=set_items)), False


def _is_preset(name: str) -> bool:
    from rxmrl.catalog import find_preset

    try:
        find_preset("policies", name)
    except ConfigError:
        return False
    return True


def _load_tokenizer(path: Path):
    try:
        from rxmrl.data import Tokenizer
    except ImportError as e:
        raise ConfigError(f"--tokenizer: rxmrl.data.Tokenizer is not available in this install ({e})") from None
    return Tokenizer.from_file(path)


def run_generate(args: argparse.Namespace) -> int:
    import math
    import time

    import torch

    from rxmrl.model.sampling import Sampling

    if args.new_tokens < 1:
        raise ConfigError(f"--new-tokens: must be at least 1, got {args.new_tokens}")
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise ConfigError(f"--temperature: must be a positive number, got {args.temperature}")
    if not 0 < args.top_p <= 1:
        raise ConfigError(f"--top-p: must be in (0, 1], got {args.top_p}")
    if args.top_k < 0:
        raise ConfigError(f"--top-k: must be 0 (off) or more, got {args.top_k}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model, from_folder = _load_model(args.model, args.seed, args.set_items)
    model.eval()
    broken = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if broken:
        raise CheckpointError(f"{args.model}: the weights hold NaN or inf ({', '.join(broken[:3])}"
                              f"{' ...' if len(broken) > 3 else ''}); they come from a broken run")
    tokenizer_path = args.tokenizer
    if tokenizer_path is None and from_folder and Path(args.model).is_dir():
        candidate = Path(args.model) / "tokenizer.json"
        tokenizer_path = candidate if candidate.is_file() else None
    tokenizer = _load_tokenizer(tokenizer_path) if tokenizer_path is not None else None
    if args.prompt is not None and tokenizer is None:
        raise ConfigError("--prompt: text needs a tokenizer; pass --tokenizer FILE (or drop --prompt for ids)")
    if tokenizer is not None:
        if tokenizer.vocab_size > model.config.vocab_size:
            raise ConfigError(
                f"--tokenizer: {tokenizer_path} has {tokenizer.vocab_size} tokens but the model only "
                f"{model.config.vocab_size} embeddings; use the model's own tokenizer"
            )
        ids = tokenizer.encode_query(args.prompt or "")
        eos_id, pad_id = tokenizer.eos_id, tokenizer.pad_id
    else:
        if not 0 <= args.bos_id < model.config.vocab_size:
            raise ConfigError(f"--bos-id: must be in [0, {model.config.vocab_size}), got {args.bos_id}")
        ids, eos_id, pad_id = [args.bos_id], None, 0  # random weights: force all --new-tokens tokens
    limit = model.config.max_seq_len - len(ids)
    if limit < 1:
        raise ConfigError(f"--prompt: {len(ids)} tokens, but the model's context is {model.config.max_seq_len} "
                          f"tokens; shorten the prompt")
    if args.new_tokens > limit:
        raise ConfigError(f"--new-tokens: at most {limit} for this model and prompt, got {args.new_tokens}")
    generator = torch.Generator().manual_seed(args.seed)
    query = torch.tensor([ids], dtype=torch.long)
    query_mask = torch.ones_like(query, dtype=torch.bool)
    sampling = Sampling(greedy=args.greedy, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    with torch.inference_mode():
        stm = model.initial_stm(1, generator)
        # Warm-up (first-call allocations), so tokens/s measures decoding; its own generator keeps the
        # sampled answer the same with or without it.
        model.generate(query, query_mask, stm, max_new_tokens=min(2, limit), eos_id=None, sampling=sampling,
                       generator=torch.Generator())
        start = time.perf_counter()
        out = model.generate(
            query, query_mask, stm, max_new_tokens=args.new_tokens, eos_id=eos_id, pad_id=pad_id,
            sampling=sampling, generator=generator,
        )
        elapsed = time.perf_counter() - start
    generated = out.tokens[0][out.mask[0]].tolist()
    if tokenizer is not None:
        print(tokenizer.decode(generated))
    else:
        print("ids:", " ".join(str(i) for i in generated))
    print(f"{len(generated)} tokens in {elapsed:.3f} s: {len(generated) / elapsed:.1f} tokens/s "
          f"({model.config.name}, {torch.get_num_threads()} threads)")
    return 0
