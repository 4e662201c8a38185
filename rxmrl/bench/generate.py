"""Decoding speed: cached vs uncached tokens/s, and per-token latency at turn 1 vs a later turn.

Random weights (speed does not depend on them) and random prompt ids; generation is forced to exactly
--new-tokens tokens (no EOS) so every run does the same work. Each figure is the median of --repeats runs
after one warm-up. "turn k" means the STM has been updated k-1 times before the answer is generated; the
decoder reads a fixed-size memory, so its cost must not grow with k. Turn 1 and turn k runs are interleaved
so that load from other processes on a shared machine hits both alike. Timings on a machine shared with
other jobs vary by 2x or more from run to run: quote medians and the load. CPU time (`tokens_per_cpu_s`,
`per_token_cpu_ms`) is this process's own and moves much less with the load than wall time.

`--compile` times the opt-in torch.compile decode step (`generate(compile=True)`); its one-off compile
time is reported separately (`compile_s`) and kept out of the per-token figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rxmrl.bench.report import machine_info, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="rxt-alpha-micro-plus", help="model preset name or TOML path")
    parser.add_argument("--new-tokens", type=int, default=128, help="tokens generated per run (no early EOS)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--prompt-len", type=int, default=16, help="random prompt length in tokens")
    parser.add_argument("--turns", type=int, default=16, help="the later turn to compare with turn 1")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure; the median is reported")
    parser.add_argument("--uncached-repeats", type=int, default=3, help="runs of the slow uncached decoder")
    parser.add_argument("--greedy", action="store_true", help="argmax instead of sampling")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (0 = torch's default). Default 1: batch-1 decoding is a chain "
                             "of tiny ops that a second thread does not speed up, and on a shared CPU the "
                             "threads' barrier waits can make it several times slower")
    parser.add_argument("--compile", action="store_true",
                        help="time generate(compile=True): the decode step through torch.compile (compiles once first)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")


def run(args: argparse.Namespace) -> int:
    import torch

    from rxmrl.errors import ConfigError
    from rxmrl.model import RxT, load_preset
    from rxmrl.model.sampling import GREEDY, Sampling

    for name in ("new_tokens", "batch", "prompt_len", "turns", "repeats", "uncached_repeats"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: must be at least 1, got {getattr(args, name)}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = load_preset(args.preset)
    if args.prompt_len + args.new_tokens > config.max_seq_len:
        raise ConfigError(
            f"--prompt-len {args.prompt_len} + --new-tokens {args.new_tokens} exceeds the preset's "
            f"max_seq_len {config.max_seq_len}"
        )
    model = RxT(config).eval()
    generator = torch.Generator().manual_seed(args.seed)
    query = torch.randint(0, config.vocab_size, (args.batch, args.prompt_len), generator=generator)
    query_mask = torch.ones_like(query, dtype=torch.bool)

    with torch.inference_mode():
        stm_first = model.initial_stm(args.batch, generator)
        stm_later = stm_first
        interaction_len = min(config.max_seq_len, args.prompt_len + args.new_tokens)
        for _ in range(args.turns - 1):
            interaction = torch.randint(0, config.vocab_size, (args.batch, interaction_len), generator=generator)
            stm_later = model.update_memory(stm_later, interaction, torch.ones_like(interaction, dtype=torch.bool))

        cpu_seconds: dict[str, list[float]] = {"cached": [], "uncached": []}

        def timed(stm: torch.Tensor, use_cache: bool) -> float:
            start, cpu_start = time.perf_counter(), time.process_time()
            out = model.generate(
                query,
                query_mask,
                stm,
                max_new_tokens=args.new_tokens,
                eos_id=None,
                sampling=GREEDY if args.greedy else Sampling(),
                generator=generator,
                use_cache=use_cache,
                compile=args.compile and use_cache,
            )
            elapsed = time.perf_counter() - start
            cpu_seconds["cached" if use_cache else "uncached"].append(time.process_time() - cpu_start)
            assert out.tokens.shape == (args.batch, args.new_tokens)
            return elapsed

        compile_s = timed(stm_first, True)  # warm-up: first-call allocations, kernel selection, compilation
        cpu_seconds["cached"].clear()
        first, later = [], []
        for _ in range(args.repeats):
            first.append(timed(stm_first, True))
            later.append(timed(stm_later, True))
        uncached = [timed(stm_first, False) for _ in range(args.uncached_repeats)]

    tokens = args.batch * args.new_tokens
    cached_tps = tokens / statistics.median(first + later)
    uncached_tps = tokens / statistics.median(uncached)
    first_ms = 1000 * statistics.median(first) / args.new_tokens
    later_ms = 1000 * statistics.median(later) / args.new_tokens
    result = {
        "tokens_per_s": {"cached": round(cached_tps, 1), "uncached": round(uncached_tps, 1)},
        "per_token_ms": {"turn_1": round(first_ms, 3), f"turn_{args.turns}": round(later_ms, 3)},
        # Tokens per second of this process's CPU time: less sensitive to other jobs taking the CPU away
        # (with one thread, close to what an idle machine gives; cache and memory contention still count).
        "tokens_per_cpu_s": {
            "cached": round(tokens / statistics.median(cpu_seconds["cached"]), 1),
            "uncached": round(tokens / statistics.median(cpu_seconds["uncached"]), 1),
        },
        "per_token_cpu_ms": {
            "cached": round(1000 * statistics.median(cpu_seconds["cached"]) / tokens, 3),
            "uncached": round(1000 * statistics.median(cpu_seconds["uncached"]) / tokens, 3),
        },
        "cached_speedup": round(cached_tps / uncached_tps, 2),
        f"turn_{args.turns}_over_turn_1": round(later_ms / first_ms, 3),
        "settings": {
            "preset": config.name,
            "new_tokens": args.new_tokens,
            "batch": args.batch,
            "prompt_len": args.prompt_len,
            "repeats": args.repeats,
            "uncached_repeats": args.uncached_repeats,
            "sampling": "greedy" if args.greedy else "multinomial, temperature 1",
            "compiled_step": args.compile,
            "compile_s": round(compile_s, 1) if args.compile else None,  # first call, compilation included
            "parameters": model.parameter_counts(),
        },
        "machine": machine_info(model.device),
        "runs_s": {"turn_1": first, f"turn_{args.turns}": later, "uncached": uncached},
    }
    print(
        f"{config.name} batch {args.batch}, {args.new_tokens} new tokens: cached {cached_tps:.0f} tok/s, "
        f"uncached {uncached_tps:.0f} tok/s ({cached_tps / uncached_tps:.1f}x); per token "
        f"turn 1 {first_ms:.2f} ms, turn {args.turns} {later_ms:.2f} ms; "
        f"cached CPU {result['per_token_cpu_ms']['cached']:.2f} ms/token"
        + (f" (compiled step; compile {compile_s:.0f} s)" if args.compile else "")
    )
    if args.json is not None:
        write_json(args.json, result)
    return 0
