"""Seconds per MRL iteration (rollout and IMPO update separately) and peak memory, on random weights.

    rxmrl bench train-step --preset rxt-alpha-micro --batch 16 --steps 4 --answer-tokens 64 --json OUT

One iteration = collect `batch` synthetic episodes of `steps` follow-ups through the vectorised environment
(generation with the KV cache, the reward, memory writes) + one IMPO update epoch over all their answers.
Every answer is forced to exactly `answer-tokens` tokens (no early end) so timings are comparable. The first
iteration warms up and is not counted (its wall time is `warmup_s`: with `--compile` it holds the compile
cost); the JSON holds every measured run, wall and CPU (process) seconds and their medians, and the peak
resident memory of the process (`resource.getrusage`).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

from rxmrl.bench.report import machine_info, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="rxt-alpha-micro", help="model preset (random weights)")
    parser.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset value, e.g. --set vocab_size=512 (repeatable)")
    parser.add_argument("--batch", type=int, default=16, help="episodes per iteration")
    parser.add_argument("--steps", type=int, default=4, help="follow-ups per episode")
    parser.add_argument("--answer-tokens", type=int, default=64, help="tokens generated for every answer")
    parser.add_argument("--reward", default="mrl-composite", help="reward spec (default: mrl-composite)")
    parser.add_argument("--minibatch", type=int, default=0, help="answers per optimizer step (0 = all at once)")
    parser.add_argument("--repeats", type=int, default=3, help="measured iterations after one warm-up")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--compile", action="store_true",
                        help="decode rollouts through torch.compile (its compile time lands in the warm-up iteration, "
                             "reported as warmup_s)")
    parser.add_argument("--autocast", choices=("none", "bf16"), default="none",
                        help="bf16: run rollout and update under torch.autocast in bfloat16 (changes results; "
                             "fp32 by default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_out", help="write the results to this JSON file")


def run(args: argparse.Namespace) -> int:
    import torch

    from rxmrl.data import synthesize_episodes, train_tokenizer
    from rxmrl.env.episode_loop import make_env
    from rxmrl.errors import ConfigError
    from rxmrl.model import RxT, load_preset
    from rxmrl.policy import RxTPolicy
    from rxmrl.reward import get_reward
    from rxmrl.train.guard import tolerant_reward
    from rxmrl.train.mrl_config import ImpoConfig
    from rxmrl.train.mrl_trainer import MrlTrainer, build_optimizer
    from rxmrl.train.optim_config import LearningRates
    from rxmrl.train.rollout import RolloutSettings, collect_rollout

    if min(args.batch, args.steps, args.answer_tokens, args.repeats) < 1:
        raise ConfigError("--batch, --steps, --answer-tokens and --repeats must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    strategy = "single" if args.steps == 1 else "cumulative"
    episodes = synthesize_episodes(args.batch * (args.repeats + 1), steps=args.steps, strategy=strategy, seed=args.seed)
    config = load_preset(args.preset, set_items=args.set_items)
    texts = [t for e in episodes for i in e.interactions for t in (i.query, i.answer)]
    tokenizer = train_tokenizer(texts, min(config.vocab_size, 2000))
    model = RxT(config).to(device).eval()
    policy = RxTPolicy(model, pad_id=tokenizer.pad_id).to(device).eval()
    env_reward, _ = tolerant_reward(get_reward(args.reward))
    max_query = 32
    if max_query + args.answer_tokens + 1 > config.max_seq_len:
        raise ConfigError(f"--answer-tokens {args.answer_tokens}: a {max_query}-token query plus the answer must fit "
                          f"the model's max_seq_len {config.max_seq_len}")
    settings = RolloutSettings(max_new_tokens=args.answer_tokens, max_interaction_len=config.max_seq_len,
                               force_length=True, final_write=False, compile=args.compile)
    impo = ImpoConfig(minibatch_size=args.minibatch, update_epochs=1)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if args.autocast == "bf16" else None
    trainer = MrlTrainer(policy, impo, autocast=autocast)
    optimizer = build_optimizer(policy, LearningRates())
    generators = {name: torch.Generator(device=device).manual_seed(args.seed + i) for i, name in enumerate(("s", "m"))}
    update_generator = torch.Generator().manual_seed(args.seed)

    # wall and CPU (process) seconds of each phase; CPU time is less disturbed by other jobs on a shared box
    wall: dict[str, list[float]] = {"rollout": [], "update": []}
    cpu: dict[str, list[float]] = {"rollout": [], "update": []}
    answer_tokens, warmup_s = [], 0.0
    for repeat in range(args.repeats + 1):
        batch = episodes[repeat * args.batch : (repeat + 1) * args.batch]
        env = make_env(batch, tokenizer, env_reward, steps=args.steps, seed=args.seed + repeat, max_query_len=max_query,
                       max_answer_len=args.answer_tokens + 1, max_interaction_len=config.max_seq_len)
        _sync(device)
        clocks = [(time.perf_counter(), time.process_time())]
        rollout = collect_rollout(policy, env, settings, pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id,
                                  memory_generator=generators["m"], sample_generator=generators["s"], autocast=autocast)
        _sync(device)
        clocks.append((time.perf_counter(), time.process_time()))
        trainer.update(rollout, optimizer, update_generator)
        _sync(device)
        clocks.append((time.perf_counter(), time.process_time()))
        if repeat == 0:  # the first iteration warms caches and allocators up (and compiles, with --compile)
            warmup_s = clocks[2][0] - clocks[0][0]
            continue
        for phase, (before, after) in zip(("rollout", "update"), zip(clocks, clocks[1:])):
            wall[phase].append(after[0] - before[0])
            cpu[phase].append(after[1] - before[1])
        answer_tokens.append(float(rollout.answer_mask.sum(-1).float().mean()))

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "preset": args.preset,
        "batch": args.batch,
        "steps": args.steps,
        "answer_tokens": args.answer_tokens,
        "answer_tokens_measured": statistics.median(answer_tokens),
        "reward": args.reward,
        "minibatch": args.minibatch,
        "autocast": args.autocast,
        "compile": args.compile,
        "warmup_s": warmup_s,
        **{f"{phase}_s": {"median": statistics.median(wall[phase]), "runs": wall[phase],
                          "cpu_median": statistics.median(cpu[phase]), "cpu_runs": cpu[phase]} for phase in wall},
        "iteration_s": {"median": statistics.median(r + u for r, u in zip(wall["rollout"], wall["update"])),
                        "cpu_median": statistics.median(r + u for r, u in zip(cpu["rollout"], cpu["update"]))},
        "peak_rss_mb": peak_kb / 1024 if sys.platform != "darwin" else peak_kb / 2**20,
        "machine": machine_info(device),
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        write_json(args.json_out, result)
    return 0


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
