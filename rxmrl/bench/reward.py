"""TensorBLEU against a loop of NLTK sentence_bleu, and the composite reward's cost per batch of answers.

TensorBLEU: a [batch, length] batch of random ids whose references share about half of their tokens with
the candidates; the same sentences go through NLTK's `sentence_bleu` one by one (exp-style smoothing,
method3). Both are timed `--repeats` times after a warm-up; the medians and their ratio are reported, and
TensorBLEU is checked against sacreBLEU on the first sentences.

Composite: `--answers` synthetic-style answers (templates over the fact vocabulary, seeded) scored by each
`--spec`; the first call pays for loading the embedding model and filling the embedding cache; the later
calls score fresh answers (made unique, so none is cached) against the same references and memories (the
cache then holds those, as in training, where the rollouts of a step share their episode).

On a shared machine, intra-op threads that wait for a busy core can make small torch ops very slow; time
with `--threads 1 --threads 2` to see it. The medians are what to quote, with the load average recorded.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from rxmrl.bench.report import machine_info, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=256, help="sentences per TensorBLEU batch (default 256)")
    parser.add_argument("--length", type=int, default=256, help="tokens per sentence (default 256)")
    parser.add_argument("--vocab", type=int, default=32000, help="token id range (default 32000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (default 5)")
    parser.add_argument("--answers", type=int, default=256, help="answers per composite call (default 256)")
    parser.add_argument("--spec", action="append", default=None,
                        help="reward spec(s) to time (default: mrl-composite and fact-recall)")
    parser.add_argument("--skip-composite", action="store_true", help="only time TensorBLEU")
    parser.add_argument("--threads", type=int, action="append", default=None,
                        help="torch intra-op thread count to measure with; repeat to compare several "
                             "(default: torch's current setting)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the results as JSON")


def run(args: argparse.Namespace) -> int:
    import torch

    original_threads = torch.get_num_threads()
    results: dict = {
        "machine": machine_info(),  # its "threads" is the default; each run records its own
        "runs": [],
    }
    try:
        for threads in args.threads or [original_threads]:
            torch.set_num_threads(threads)
            run_result: dict = {"threads": threads}
            tb = bench_tensor_bleu(args.batch, args.length, args.vocab, args.repeats, args.seed)
            run_result["tensor_bleu"] = tb
            print(f"[{threads} thread(s)] TensorBLEU {args.batch}x{args.length}: median "
                  f"{tb['tensor_bleu_s'] * 1e3:.1f} ms; NLTK loop: median {tb['nltk_loop_s'] * 1e3:.1f} ms; "
                  f"speed-up {tb['speedup']:.1f}x; max |diff| vs sacreBLEU {tb['max_abs_diff_vs_sacrebleu']:.2e}")
            if not args.skip_composite:
                run_result["composite"] = {}
                for spec in args.spec or ["mrl-composite", "fact-recall"]:
                    r = bench_composite(spec, args.answers, args.repeats, args.seed)
                    run_result["composite"][spec] = r
                    print(f"[{threads} thread(s)] {spec}: first call {r['first_call_s']:.2f} s (includes loading "
                          f"the embedding model if not loaded yet), then median {r['warm_call_s'] * 1e3:.0f} ms "
                          f"per {args.answers} answers ({r['warm_ms_per_answer']:.2f} ms/answer)")
            results["runs"].append(run_result)
    finally:
        torch.set_num_threads(original_threads)
    if args.json is not None:
        write_json(args.json, results)
    return 0


def _median_time(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def bench_tensor_bleu(batch: int, length: int, vocab: int, repeats: int, seed: int) -> dict:
    import torch
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from sacrebleu.metrics.bleu import BLEU

    from rxmrl.reward.bleu import tensor_bleu

    g = torch.Generator().manual_seed(seed)
    cand = torch.randint(1, vocab, (batch, length), generator=g)
    ref = torch.randint(1, vocab, (batch, length), generator=g)
    keep = torch.rand(batch, length, generator=g) < 0.5  # references share about half the candidates' tokens
    ref = torch.where(keep, cand, ref)
    cand_lists, ref_lists = cand.tolist(), ref.tolist()
    smoothing = SmoothingFunction().method3

    def nltk_loop() -> list[float]:
        return [sentence_bleu([r], c, smoothing_function=smoothing) for c, r in zip(cand_lists, ref_lists)]

    tensor_bleu(cand, ref)  # warm-up
    tb_median, tb_times = _median_time(lambda: tensor_bleu(cand, ref), repeats)
    nltk_loop()
    nl_median, nl_times = _median_time(nltk_loop, repeats)

    metric = BLEU(tokenize="none", effective_order=True)
    checked = min(batch, 32)
    ours = tensor_bleu(cand[:checked], ref[:checked]).double()
    theirs = torch.tensor([metric.sentence_score(" ".join(map(str, c)), [" ".join(map(str, r))]).score / 100
                           for c, r in zip(cand_lists[:checked], ref_lists[:checked])], dtype=torch.float64)
    return {
        "batch": batch, "length": length, "vocab": vocab, "repeats": repeats,
        "tensor_bleu_s": tb_median, "tensor_bleu_runs_s": tb_times,
        "nltk_loop_s": nl_median, "nltk_loop_runs_s": nl_times,
        "speedup": nl_median / tb_median,
        "max_abs_diff_vs_sacrebleu": float((ours - theirs).abs().max()),
    }


def synthetic_batch(size: int, rng: random.Random):
    """Synthetic-style episodes with facts, and answers of mixed quality (right, wrong, long, short)."""
    from rxmrl.data.episode import Interaction
    from rxmrl.data.facts import FACT_VALUES
    from rxmrl.reward.base import RewardBatch

    queries, answers, references, remember, facts = [], [], [], [], []
    for _ in range(size):
        f = {slot: rng.choice(values) for slot, values in FACT_VALUES.items()}
        story = (f"Once upon a time, a child named {f['name']} had a {f['colour']} {f['object']}. "
                 f"One {f['weather']} day {f['name']} went to the {f['place']} with a {f['animal']} and a friend "
                 f"called {f['friend']}. They ate {f['food']} and counted {f['number']} birds. "
                 f"{f['name'].title()} felt {f['feeling']}.")
        slot = rng.choice(["colour", "place", "food", "friend", "animal"])
        question = {"colour": f"What colour was {f['name'].title()}'s {f['object']}?",
                    "place": f"Where did {f['name'].title()} go?",
                    "food": f"What did {f['name'].title()} eat?",
                    "friend": f"Who was {f['name'].title()}'s friend?",
                    "animal": f"Which animal went with {f['name'].title()}?"}[slot]
        reference = f"It was the {f[slot]}."
        kind = rng.random()
        if kind < 0.4:
            answer = reference
        elif kind < 0.7:
            answer = f"It was the {rng.choice(FACT_VALUES[slot])}, I think."
        elif kind < 0.85:
            answer = story
        else:
            answer = f"{f['name'].title()} was {f['feeling']}."
        queries.append(question)
        answers.append(answer)
        references.append(reference)
        remember.append([Interaction("Tell me a story.", story)])
        facts.append(f)
    return RewardBatch(query=queries, generated=answers, reference=references, remember=remember, facts=facts)


def bench_composite(spec: str, answers: int, repeats: int, seed: int) -> dict:
    import dataclasses

    from rxmrl.reward import get_reward

    rng = random.Random(seed)
    batch = synthetic_batch(answers, rng)
    start = time.perf_counter()
    reward = get_reward(spec)
    reward(batch)
    first = time.perf_counter() - start

    def fresh_answers():
        # Same episodes (cached references and memories), new answer texts, as in the rollouts of one step.
        shuffled = list(batch.generated)
        rng.shuffle(shuffled)
        return dataclasses.replace(batch, generated=[f"{a} ({rng.randrange(10**9)})" for a in shuffled])

    batches = [fresh_answers() for _ in range(repeats)]
    times = []
    for b in batches:
        t0 = time.perf_counter()
        reward(b)
        times.append(time.perf_counter() - t0)
    warm = statistics.median(times)
    return {"answers": answers, "first_call_s": first, "warm_call_s": warm, "warm_runs_s": times,
            "warm_ms_per_answer": warm / answers * 1e3}
