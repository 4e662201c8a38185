"""`rxmrl baseline ...`: the stateless LLM baseline (a Llama-style decoder sized like an RxT decoder).

    rxmrl baseline info --match-preset rxt-cpu-small
    rxmrl baseline train --episodes-source synthetic --match-checkpoint runs/x/final --out runs/baseline --steps 500
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rxmrl.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("baseline", help="train and size the stateless LLM baseline")
    commands = parser.add_subparsers(dest="baseline_command", metavar="COMMAND", required=True)

    info = commands.add_parser("info", help="the Llama a preset or checkpoint is matched with, and both sizes")
    _add_match_arguments(info)
    info.add_argument("--context-len", type=int, default=None, help="tokens the baseline reads (default 9 messages)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=run_info)

    train = commands.add_parser(
        "train", help="SFT (TRL) a baseline on episodes rendered as full-history conversations",
        description="Builds a Llama with at least the RxT decoder's active parameter count (same width, layers, "
                    "self-attention heads and vocabulary) and trains it with TRL's SFTTrainer on "
                    "[BOS][Q] q1 [A] a1 [EOS] [BOS][Q] q2 [A] a2 [EOS] ... conversations.")
    _add_match_arguments(train)
    train.add_argument("--out", type=Path, required=True, help="baseline folder to write")
    train.add_argument("--episodes-source", default="synthetic",
                       help="'synthetic' (default) or any source rxmrl.data.load_episodes reads")
    train.add_argument("--subset", default=None, help="subset of the source")
    train.add_argument("--split", default="train", help="split (default train)")
    train.add_argument("--strategy", default="mixed", help="single, cumulative, long_range or mixed (default)")
    train.add_argument("--episode-steps", type=int, action="append", default=None, metavar="N",
                       help="episode lengths to train on (repeatable; default: all in the source; synthetic: "
                            "1 2 4 8)")
    train.add_argument("--episodes", type=int, default=256,
                       help="synthetic episodes per strategy and length (default 256)")
    train.add_argument("--steps", type=int, default=200, help="optimizer steps (default 200)")
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay; default 1e-3)")
    train.add_argument("--warmup-steps", type=int, default=10)
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--loss-on", default="follow_ups", choices=("follow_ups", "last", "all"),
                       help="answers trained on (default follow_ups: every follow-up answer given its history)")
    train.add_argument("--context-len", type=int, default=None,
                       help="tokens the baseline reads at once (default: 9 x the RxT's max_seq_len)")
    train.add_argument("--logging-steps", type=int, default=10)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = leave as is)")
    train.add_argument("--progress", action="store_true", help="show TRL's progress bar")
    train.set_defaults(handler=run_train)

    grpo = commands.add_parser(
        "grpo", help="optional: fine-tune a trained baseline with TRL's GRPOTrainer on an rxmrl reward",
        description="One row per rewarded follow-up (history with reference answers + query); GRPO samples "
                    "--generations answers per prompt and reinforces those above their group's mean reward.")
    grpo.add_argument("--baseline", type=Path, required=True, help="baseline folder from `rxmrl baseline train`")
    grpo.add_argument("--out", type=Path, required=True, help="folder for the fine-tuned baseline")
    grpo.add_argument("--reward", default="mrl-composite", help="reward spec (default mrl-composite)")
    grpo.add_argument("--episodes-source", default="synthetic")
    grpo.add_argument("--subset", default=None)
    grpo.add_argument("--split", default="train")
    grpo.add_argument("--strategy", default="mixed")
    grpo.add_argument("--episode-steps", type=int, action="append", default=None, metavar="N",
                      help="episode lengths (repeatable; synthetic default: 1 2 4)")
    grpo.add_argument("--episodes", type=int, default=32, help="synthetic episodes per strategy and length")
    grpo.add_argument("--steps", type=int, default=20, help="optimizer steps (default 20)")
    grpo.add_argument("--prompts-per-step", type=int, default=2)
    grpo.add_argument("--generations", type=int, default=4, help="answers sampled per prompt (default 4)")
    grpo.add_argument("--lr", type=float, default=1e-5)
    grpo.add_argument("--temperature", type=float, default=1.0)
    grpo.add_argument("--max-new-tokens", type=int, default=32, help="longest sampled answer (default 32)")
    grpo.add_argument("--seed", type=int, default=0)
    grpo.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = leave as is)")
    grpo.set_defaults(handler=run_grpo)


def _add_match_arguments(parser: argparse.ArgumentParser) -> None:
    match = parser.add_mutually_exclusive_group(required=True)
    match.add_argument("--match-checkpoint", type=Path, default=None, metavar="DIR",
                       help="RxT model folder to size the baseline after (its tokenizer.json is used too)")
    match.add_argument("--match-preset", default=None, metavar="PRESET", help="RxT preset name or TOML path")
    parser.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of --match-preset, e.g. --set vocab_size=1000")
    parser.add_argument("--tokenizer", type=Path, default=None,
                        help="tokenizer.json (default: the one in --match-checkpoint)")


def _matched_config(args: argparse.Namespace):
    """-> (RxTConfig, description of what it came from)."""
    from rxmrl.model import load_preset
    from rxmrl.model.pretrained import load_config

    if args.match_checkpoint is not None:
        if args.set_items:
            raise ConfigError("--set: overrides apply to --match-preset, not to a checkpoint")
        return load_config(args.match_checkpoint), {"checkpoint": str(args.match_checkpoint)}
    config = load_preset(args.match_preset, set_items=args.set_items)
    return config, {"preset": args.match_preset, "set": list(args.set_items)}


def run_info(args: argparse.Namespace) -> int:
    import torch

    from rxmrl.baseline.model import (
        count_parameters,
        require_transformers,
        rxt_decoder_active_parameters,
        stateless_config,
    )

    transformers = require_transformers()
    config, matched = _matched_config(args)
    llama = stateless_config(config, context_len=args.context_len)
    with torch.device("meta"):
        parameters = count_parameters(transformers.LlamaForCausalLM(llama))
    report = {"matched_to": matched, "rxt_decoder_active_parameters": rxt_decoder_active_parameters(config),
              "llama_parameters": parameters, "hidden_size": llama.hidden_size, "layers": llama.num_hidden_layers,
              "query_heads": llama.num_attention_heads, "kv_heads": llama.num_key_value_heads,
              "head_dim": llama.head_dim, "intermediate_size": llama.intermediate_size,
              "context_len": llama.max_position_embeddings, "vocab_size": llama.vocab_size}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{config.name}: RxT decoder {report['rxt_decoder_active_parameters']:,} active parameters per token")
    print(f"  stateless Llama {parameters:,} parameters: dim {llama.hidden_size}, {llama.num_hidden_layers} layers, "
          f"{llama.num_attention_heads} query / {llama.num_key_value_heads} kv heads of {llama.head_dim}, "
          f"MLP {llama.intermediate_size}, context {llama.max_position_embeddings}, vocab {llama.vocab_size}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    import torch

    from rxmrl.atomic import check_output_dir
    from rxmrl.baseline.train import BaselineTraining, train_baseline
    from rxmrl.data.tokenizer import Tokenizer
    from rxmrl.env.episodes import select_episodes

    check_output_dir(args.out, offer_overwrite=False)  # before training, not after it
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    config, matched = _matched_config(args)
    tokenizer_path = args.tokenizer
    if tokenizer_path is None:
        if args.match_checkpoint is None:
            raise ConfigError("--tokenizer PATH is needed with --match-preset (the baseline uses the RxT's tokenizer)")
        tokenizer_path = args.match_checkpoint / "tokenizer.json"
    tokenizer = Tokenizer.from_file(tokenizer_path)
    steps = args.episode_steps
    if steps is None and args.episodes_source in (None, "synthetic"):
        steps = [1, 2, 4, 8]
    episodes = select_episodes(source=args.episodes_source, subset=args.subset, split=args.split, steps=steps,
                               strategy=args.strategy, seed=args.seed, synthetic_episodes=args.episodes)
    settings = BaselineTraining(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                                warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, loss_on=args.loss_on,
                                context_len=args.context_len, seed=args.seed, logging_steps=args.logging_steps)
    summary = train_baseline(episodes, tokenizer, config, args.out, settings,
                             matched_to={**matched, "tokenizer": str(tokenizer_path)}, progress=args.progress)
    t = summary["training"]
    print(f"wrote {args.out}: Llama of {summary['parameters']:,} parameters (RxT decoder active "
          f"{summary['rxt_decoder_active_parameters']:,}); {t['rows']} conversations, {args.steps} steps, "
          f"loss {t['loss_first']:.3f} -> {t['loss_last']:.3f}")
    return 0


def run_grpo(args: argparse.Namespace) -> int:
    import torch

    from rxmrl.atomic import check_output_dir
    from rxmrl.baseline.grpo import BaselineGrpo, grpo_finetune
    from rxmrl.env.episodes import select_episodes

    check_output_dir(args.out, offer_overwrite=False)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    steps = args.episode_steps
    if steps is None and args.episodes_source in (None, "synthetic"):
        steps = [1, 2, 4]
    episodes = select_episodes(source=args.episodes_source, subset=args.subset, split=args.split, steps=steps,
                               strategy=args.strategy, seed=args.seed, synthetic_episodes=args.episodes)
    settings = BaselineGrpo(steps=args.steps, prompts_per_step=args.prompts_per_step,
                            num_generations=args.generations, learning_rate=args.lr, temperature=args.temperature,
                            max_completion_length=args.max_new_tokens, seed=args.seed)
    summary = grpo_finetune(args.baseline, episodes, args.reward, args.out, settings)["grpo"]
    print(f"wrote {args.out}: GRPO {args.steps} steps on {summary['rows']} prompts; mean reward "
          f"{summary['reward_first']} (first step) -> {summary['reward_last']} (last step)")
    return 0
