"""Per-turn latency of a conversation: RxT vs a stateless LLM of the same size (random weights; JSON, plot).

Both systems hold the same conversation of --turns turns: each turn a random query of --query-len tokens
and an answer of exactly --answer-len tokens (greedy, no early EOS), at batch size --batch.

  RxT        prompt phase  = the decoder reads the query (prefill into its self-attention KV cache), its
                             memory cross-attention using the STM's keys/values computed beforehand;
             generation    = the --answer-len - 1 further decoding steps (the first token comes from the
                             prompt phase's logits);
             update (async) = encoder + memory attention over query + answer (`update_ms`), then the next
                             STM's cross-attention keys/values (`memory_kv_ms`). In RxT this runs after the
                             answer has been streamed, so the user does not wait for it; it is reported
                             separately and not added to the prompt phase.
  stateless  prompt phase  = prefill of the whole history (every earlier query and answer) + the query; a
                             stateless model must re-read it every turn. Within a turn it uses its KV cache,
                             as a deployment would (nothing is cached across turns);
             generation    = the --answer-len - 1 further decoding steps with that cache.

The stateless model is a Llama with at least the RxT decoder's active parameter count, the same width,
layers, self-attention heads and vocabulary (`rxmrl.baseline.model.stateless_config`); its context is
exactly turns x (query + answer) tokens. Every figure is the median over --repeats conversations, after one
warm-up conversation; the two systems' turns are interleaved so that load from other processes on a shared
machine hits both alike. Expected shape: RxT flat in the turn, stateless prompt phase growing with it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from rxmrl.bench.report import machine_info, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="rxt-alpha-micro", help="RxT preset name or TOML path")
    parser.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset key, e.g. --set decoder.layers=4")
    parser.add_argument("--turns", type=int, default=16, help="turns per conversation (default 16)")
    parser.add_argument("--query-len", type=int, default=32, help="query tokens per turn (default 32)")
    parser.add_argument("--answer-len", type=int, default=32, help="answer tokens per turn (default 32)")
    parser.add_argument("--batch", type=int, default=1, help="conversations served together (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="conversations timed; medians reported (default 5)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = leave as is)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, required=True, metavar="OUT", help="write the results here")
    parser.add_argument("--plot", type=Path, default=None, metavar="OUT.png", help="plot latency per turn")


class _Clock:
    """Wall time in ms; waits for queued GPU work first, so a timing covers the work, not its launch."""

    def __init__(self, device: Any) -> None:
        import torch

        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def now(self) -> float:
        self.sync()
        return time.perf_counter() * 1000.0


def rxt_turn(model: Any, stm: Any, memory: Any, query: Any, answer_len: int, clock: _Clock) -> tuple[dict, Any, Any]:
    """One RxT turn. stm [B, L, S, D] with its precomputed `memory` keys/values; query [B, Tq].

    -> ({prompt_ms, generate_ms, update_ms, memory_kv_ms}, next stm, next memory).
    """
    import torch

    batch, query_len = query.shape
    mask = torch.ones_like(query, dtype=torch.bool)
    cache = model.new_cache(batch, query_len + answer_len)
    start = clock.now()
    hidden, _ = model.decoder(model.embedding(query), memory, mask, cache, need_aux=False)  # [B, Tq, D]
    logits = model.decoder.lm_head(hidden[:, -1])  # [B, V]
    token = logits.argmax(dim=-1)
    prompt_done = clock.now()
    answer = [token]
    for _ in range(answer_len - 1):
        hidden, _ = model.decoder(model.embedding(token[:, None]), memory, None, cache, need_aux=False)
        token = model.decoder.lm_head(hidden[:, -1]).argmax(dim=-1)
        answer.append(token)
    generated = clock.now()
    interaction = torch.cat([query, torch.stack(answer, dim=1)], dim=1)  # [B, Tq + Ta]
    stm = model.update_memory(stm, interaction, torch.ones_like(interaction, dtype=torch.bool))
    updated = clock.now()
    memory = model.memory_kv(stm)
    ready = clock.now()
    times = {"prompt_ms": prompt_done - start, "generate_ms": generated - prompt_done,
             "update_ms": updated - generated, "memory_kv_ms": ready - updated}
    return times, stm, memory


def stateless_turn(model: Any, history: Any, query: Any, answer_len: int, clock: _Clock) -> tuple[dict, Any]:
    """One stateless turn: history [B, H] (all earlier turns), query [B, Tq] -> (times, history + this turn)."""
    import torch

    from rxmrl.baseline.generation import decode_step, prefill

    prompt = torch.cat([history, query], dim=1)  # [B, H + Tq]
    start = clock.now()
    logits, state = prefill(model, prompt, torch.ones_like(prompt, dtype=torch.bool))
    token = logits.argmax(dim=-1)
    prompt_done = clock.now()
    answer = [token]
    for _ in range(answer_len - 1):
        token = decode_step(model, token, state).argmax(dim=-1)
        answer.append(token)
    generated = clock.now()
    times = {"prompt_ms": prompt_done - start, "generate_ms": generated - prompt_done,
             "prompt_tokens": prompt.shape[1]}
    return times, torch.cat([prompt, torch.stack(answer, dim=1)], dim=1)


def run_conversation(rxt: Any, stateless: Any, queries: list[Any], answer_len: int, clock: _Clock,
                     generator: Any) -> tuple[list[dict], list[dict]]:
    """Both systems through the same queries, turn by turn -> (RxT times per turn, stateless times per turn)."""
    import torch

    batch = queries[0].shape[0]
    stm = rxt.initial_stm(batch, generator=generator)
    memory = rxt.memory_kv(stm)
    history = queries[0].new_zeros((batch, 0))
    rxt_times, stateless_times = [], []
    for query in queries:
        with torch.inference_mode():
            times, stm, memory = rxt_turn(rxt, stm, memory, query, answer_len, clock)
            rxt_times.append(times)
            times, history = stateless_turn(stateless, history, query, answer_len, clock)
            stateless_times.append(times)
    return rxt_times, stateless_times


def run(args: argparse.Namespace) -> int:
    import torch

    from rxmrl.baseline.model import build_stateless_model, count_parameters, stateless_config
    from rxmrl.errors import ConfigError
    from rxmrl.model import RxT, load_preset

    for name in ("turns", "query_len", "answer_len", "batch", "repeats"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: must be at least 1, got {getattr(args, name)}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = load_preset(args.preset, set_items=args.set_items)
    turn_len = args.query_len + args.answer_len
    if turn_len > config.max_seq_len:
        raise ConfigError(f"--query-len {args.query_len} + --answer-len {args.answer_len} exceeds the preset's "
                          f"max_seq_len {config.max_seq_len}")
    torch.manual_seed(args.seed)
    rxt = RxT(config).to(device).eval()
    llama_config = stateless_config(config, context_len=args.turns * turn_len)
    stateless = build_stateless_model(llama_config, args.seed).to(device)
    clock = _Clock(device)
    ids = torch.Generator().manual_seed(args.seed)
    queries = [torch.randint(len_special(), config.vocab_size, (args.batch, args.query_len), generator=ids).to(device)
               for _ in range(args.turns)]

    def conversation(turns: int) -> tuple[list[dict], list[dict]]:
        generator = torch.Generator(device=device).manual_seed(args.seed)
        return run_conversation(rxt, stateless, queries[:turns], args.answer_len, clock, generator)

    conversation(min(2, args.turns))  # warm-up: first-call allocations and kernel selection
    runs = [conversation(args.turns) for _ in range(args.repeats)]

    def medians(system: int, key: str) -> list[float]:
        return [round(statistics.median(r[system][t][key] for r in runs), 3) for t in range(args.turns)]

    results = {
        "rxt": {"prompt_ms": medians(0, "prompt_ms"), "generate_ms": medians(0, "generate_ms"),
                "update_ms": medians(0, "update_ms"), "memory_kv_ms": medians(0, "memory_kv_ms"),
                "prompt_tokens": [args.query_len] * args.turns,
                "parameters": rxt.parameter_counts()["decoder"]["active"]},
        "stateless": {"prompt_ms": medians(1, "prompt_ms"), "generate_ms": medians(1, "generate_ms"),
                      "prompt_tokens": [runs[0][1][t]["prompt_tokens"] for t in range(args.turns)],
                      "parameters": count_parameters(stateless)},
    }
    summary = {name: {"prompt_last_over_first": _ratio(r["prompt_ms"]),
                      "generate_last_over_first": _ratio(r["generate_ms"])} for name, r in results.items()}
    output = {**results, "summary": summary, "settings": {
        "preset": config.name, "set": list(args.set_items), "turns": args.turns, "query_len": args.query_len,
        "answer_len": args.answer_len, "batch": args.batch, "repeats": args.repeats, "seed": args.seed,
        "parameters": {"rxt_decoder_active": results["rxt"]["parameters"], "rxt_total": rxt.parameter_counts()["total"],
                       "stateless": results["stateless"]["parameters"]},
        "stateless_model": {"hidden_size": llama_config.hidden_size, "layers": llama_config.num_hidden_layers,
                            "query_heads": llama_config.num_attention_heads,
                            "kv_heads": llama_config.num_key_value_heads,
                            "intermediate_size": llama_config.intermediate_size,
                            "context_len": llama_config.max_position_embeddings}},
        "machine": machine_info(device)}
    for name, r in results.items():
        print(f"{name:<10} prompt ms turn 1 {r['prompt_ms'][0]:.2f} -> turn {args.turns} {r['prompt_ms'][-1]:.2f}; "
              f"generation ms {r['generate_ms'][0]:.2f} -> {r['generate_ms'][-1]:.2f}"
              + (f"; async update ms {statistics.median(r['update_ms']):.2f}" if "update_ms" in r else ""))
    write_json(args.json, output)
    if args.plot is not None:
        from rxmrl.bench.plots import plot_latency

        plot_latency(results, args.plot)
        print(f"wrote {args.plot}")
    return 0


def len_special() -> int:
    """Random ids start after the special tokens ([PAD] ... [A]), so no query holds a stray EOS or pad."""
    from rxmrl.data.tokenizer import SPECIAL_TOKENS

    return len(SPECIAL_TOKENS)


def _ratio(values: list[float]) -> float | None:
    return round(values[-1] / values[0], 3) if values and values[0] > 0 else None
