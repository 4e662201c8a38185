"""Memory retention (the MRL reward benchmark): systems answer every follow-up of held-out episodes; the
answers are scored with a fixed reward spec and with fact recall. Writes JSON (and a plot of per-step rewards).

Protocol, as in the RxT paper's 8+1-step benchmark and the same as MRL training's: each episode's first
interaction is given (written to memory, or kept in the prompt), then the system answers each follow-up;
its own answer, not the reference, goes into what it remembers. Episodes run through the episode loop that
training and its evaluation use (`rxmrl.env.episode_loop`), so each step is rewarded exactly as in training
(reward mode and what to recall per strategy, `rxmrl.env.routing`); decoding is greedy unless `--sample`.

Systems (any object with `start`/`respond`/`record`, see `System`):
  rxt               the checkpoint: reads its STM, writes each interaction to it;
  rxt_memory_reset  the same checkpoint answering every follow-up from a freshly initialised STM (the memory
                    ablation; nothing is written, since nothing would be read);
  stateless         `--baseline DIR`: a decoder-only LLM given the whole history in its prompt;
  NAME              `--compare NAME=DIR`: other RxT checkpoints (each also gets NAME_memory_reset unless
                    --no-memory-reset).
Per system: the mean, max and min over episodes of the episode reward (the mean over its rewarded steps),
`per_step` (mean reward at follow-up k), and `fact_recall`: the fact F1 of every answer that should recall
the memory (every rewarded step except long-range distractor steps), as the composite reward's
`fact_recall` component defines it, computed here whatever the reward spec is. The JSON file holds one
such object per system plus a `settings` object (so no system may be named "settings").

Default episodes: 64 held-out synthetic (`test` split) `cumulative` episodes of 8 follow-ups: every
follow-up asks about the memory, so every point of the per-step curve is a recall score (`long_range`
or `mixed` put distractor steps, rewarded for *not* recalling, in the curve).

From Python (e.g. at the end of a training run):
    systems = rxt_systems(model, tokenizer)            # {"rxt": ..., "rxt_memory_reset": ...}
    results = run_retention(systems, episodes, "mrl-composite", max_query_len=48, max_answer_len=32)
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rxmrl.bench.report import write_json

if TYPE_CHECKING:  # torch is imported only when a benchmark runs
    from rxmrl.env.episode_loop import Turn
    from rxmrl.model.sampling import Sampling

DEFAULT_REWARD = "mrl-composite"
DEFAULT_STRATEGY = "cumulative"
RESERVED_NAMES = ("settings",)


class System(Protocol):
    """A conversational system under test. Ids are right-padded `[N, T]` tensors with a `[N, T]` bool mask."""

    tokenizer: Any  # an rxmrl.data.Tokenizer (the env encodes episodes and decodes answers with it)

    def start(self, remember_ids: Any, remember_mask: Any, seed: int) -> Any:
        """Take in the first interactions of N episodes -> the system's state."""

    def respond(self, state: Any, query_ids: Any, query_mask: Any, *, max_new_tokens: int, sampling: Sampling,
                generator: Any) -> Any:
        """Answer N queries `[BOS][Q] q [A]` -> answer ids [N, W] (ending at EOS; pad after it)."""

    def record(self, state: Any, interaction_ids: Any, interaction_mask: Any) -> Any:
        """Take in the interactions just completed (query + the system's answer) -> the next state."""

    def notes(self, state: Any) -> dict[str, float]:
        """Counts worth reporting for a finished batch (summed over batches), e.g. truncated prompts."""


@dataclass
class RxTState:
    stm: Any  # [N, L, S, D]
    memory_generator: Any  # draws fresh STMs (initial, and every answer of the ablation)


class RxTSystem:
    """An RxT checkpoint; with `reset_memory=True` every answer is read from a fresh STM (the ablation)."""

    def __init__(self, model: Any, tokenizer: Any, *, reset_memory: bool = False) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.reset_memory = reset_memory

    def start(self, remember_ids: Any, remember_mask: Any, seed: int) -> RxTState:
        import torch

        generator = torch.Generator(device=self.model.device).manual_seed(seed)
        stm = self.model.initial_stm(remember_ids.shape[0], generator=generator)
        state = RxTState(stm, generator)
        return state if self.reset_memory else self._write(state, remember_ids, remember_mask)

    def respond(self, state: RxTState, query_ids: Any, query_mask: Any, *, max_new_tokens: int,
                sampling: Sampling, generator: Any) -> Any:
        """query ids/mask [N, Tq] -> answer ids [N, W], read from the STM (or a fresh one in the ablation)."""
        import torch

        from rxmrl.tokens import trim_padding

        query_ids, query_mask = trim_padding(query_ids.to(self.model.device), query_mask.to(self.model.device))
        stm = self.model.initial_stm(query_ids.shape[0], generator=state.memory_generator) if self.reset_memory \
            else state.stm
        room = self.model.config.max_seq_len - query_ids.shape[1]
        with torch.no_grad():
            out = self.model.generate(
                query_ids, query_mask, stm, max_new_tokens=min(max_new_tokens, room), eos_id=self.tokenizer.eos_id,
                pad_id=self.tokenizer.pad_id, sampling=sampling, generator=generator)
        return out.tokens

    def record(self, state: RxTState, interaction_ids: Any, interaction_mask: Any) -> RxTState:
        return state if self.reset_memory else self._write(state, interaction_ids, interaction_mask)

    def notes(self, state: RxTState) -> dict[str, float]:
        return {}

    def _write(self, state: RxTState, ids: Any, mask: Any) -> RxTState:
        """Write interactions ids/mask [N, T] into the STM [N, L, S, D]."""
        import torch

        from rxmrl.tokens import trim_padding

        ids, mask = trim_padding(ids.to(self.model.device), mask.to(self.model.device))
        # The encoder reads at most max_seq_len tokens (RoPE and training lengths); env limits that add up to
        # more than that lose the end of the answer here, as they would in training.
        ids, mask = ids[:, : self.model.config.max_seq_len], mask[:, : self.model.config.max_seq_len]
        with torch.no_grad():
            return RxTState(self.model.update_memory(state.stm, ids, mask), state.memory_generator)


def rxt_systems(model: Any, tokenizer: Any, name: str = "rxt", memory_reset: bool = True) -> dict[str, System]:
    """{name: the model, name_memory_reset: its memory ablation} (the ablation only if `memory_reset`)."""
    systems: dict[str, System] = {name: RxTSystem(model, tokenizer)}
    if memory_reset:
        systems[f"{name}_memory_reset"] = RxTSystem(model, tokenizer, reset_memory=True)
    return systems


def fact_recall_score(generated: str, reference: str, query: str, remember: Sequence[Any],
                      facts: dict[str, str] | None) -> float:
    """The composite reward's `fact_recall` component for one answer: fact F1 when the episode has facts the
    reference states, else the F1 of relevance-weighted recall of the remembered content words."""
    from rxmrl.reward.fact_recall import score_content, score_facts

    if facts:
        score = score_facts(generated, reference, query, facts)
        if score is not None:
            return score.f1
    return score_content(generated, query, reference, remember).f1


class _Tally:
    """Running sums for one system: per-episode rewards, per-step means, fact recall, components, samples."""

    def __init__(self, reward_intermediate: bool) -> None:
        self.reward_intermediate = reward_intermediate
        self.episode_rewards: list[float] = []
        self.step_rewards: dict[int, list[float]] = {}  # 1-based step -> rewards of its rewarded answers
        self.step_recall: dict[int, list[float]] = {}  # 1-based step -> fact recall of its recall answers
        self.component_sum: dict[str, float] = {}
        self.answer_tokens = 0.0
        self.answers = 0
        self.notes: dict[str, float] = {}
        self.samples: list[dict[str, Any]] = []

    def score_step(self, chunk: list[Any], k: int, rewards: Any, info: dict[str, Any],
                   episode_rewards: list[list[float]], samples: list[dict[str, Any]]) -> None:
        """Account for follow-up k (0-based) of a batch: rewards [N] and the env's step info."""
        from rxmrl.env.routing import route_step

        self.answer_tokens += float(info["generated_mask"].sum() - len(chunk))  # the env's EOS is not counted
        self.answers += len(chunk)
        for row, episode in enumerate(chunk):
            route = route_step(episode, k + 1, self.reward_intermediate)
            follow_up = episode.follow_ups[k]
            if route.rewarded:
                value = float(rewards[row])
                episode_rewards[row].append(value)
                self.step_rewards.setdefault(k + 1, []).append(value)
                for component, values in info["reward_components"].items():
                    self.component_sum[component] = self.component_sum.get(component, 0.0) + float(values[row])
                if route.mode != "negative":  # a long-range distractor answer should not recall the memory
                    recall = fact_recall_score(info["generated"][row], follow_up.answer, follow_up.query,
                                               route.remember, episode.facts)
                    self.step_recall.setdefault(k + 1, []).append(recall)
            if row < len(samples):
                samples[row]["steps"].append({"query": follow_up.query, "generated": info["generated"][row],
                                              "reference": follow_up.answer,
                                              "reward": float(rewards[row]) if route.rewarded else None})

    def summary(self) -> dict[str, Any]:
        import statistics

        steps = max(self.step_rewards, default=0)
        mean = lambda values: statistics.fmean(values) if values else None  # noqa: E731
        recall_all = [v for values in self.step_recall.values() for v in values]
        rewards = self.episode_rewards
        rewarded_answers = sum(len(v) for v in self.step_rewards.values())
        return {
            "mean": mean(rewards),
            "max": max(rewards, default=None),
            "min": min(rewards, default=None),
            "std": statistics.pstdev(rewards) if rewards else None,
            "fact_recall": mean(recall_all),
            "per_step": [mean(self.step_rewards.get(k, [])) for k in range(1, steps + 1)],
            "per_step_fact_recall": [mean(self.step_recall.get(k, [])) for k in range(1, steps + 1)],
            "components": {name: total / max(1, rewarded_answers) for name, total in self.component_sum.items()},
            "episodes": len(rewards),
            "answer_tokens": self.answer_tokens / max(1, self.answers),
            "notes": self.notes,
            "samples": self.samples,
        }


def run_retention(
    systems: dict[str, System],
    episodes: Sequence[Any],
    reward: Any = None,
    *,
    max_query_len: int,
    max_answer_len: int,
    max_new_tokens: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    sampling: Sampling | None = None,
    keep_samples: int = 0,
    reward_intermediate: bool = True,
) -> dict[str, dict[str, Any]]:
    """Run every system on the same episodes -> {system name: summary} (see the module docstring).

    `reward` is a spec name/path or a callable (default `mrl-composite`), loaded once and shared.
    `max_query_len`/`max_answer_len` are the env's token limits; answers get at most `max_new_tokens`
    (default max_answer_len - 1, leaving room for EOS). Batches of `batch_size` episodes of equal length,
    in input order; batch b is seeded with seed + 1000 b (initial STMs, sampling), the same for every system.
    `sampling` defaults to greedy decoding, for reproducible scores.
    """
    from rxmrl.env.rewards import resolve_reward
    from rxmrl.model.sampling import GREEDY

    if not episodes:
        raise ValueError("no episodes to run")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    reward_fn, _ = resolve_reward(DEFAULT_REWARD if reward is None else reward)
    sampling = sampling or GREEDY
    limits = {"max_query_len": max_query_len, "max_answer_len": max_answer_len,
              "max_new_tokens": max_new_tokens or max_answer_len - 1}
    batches = _equal_length_batches(list(episodes), batch_size)
    results = {}
    for name, system in systems.items():
        tally = _Tally(reward_intermediate)
        for batch_index, chunk in enumerate(batches):
            _run_batch(system, chunk, reward_fn, tally, seed=seed + 1000 * batch_index, sampling=sampling,
                       keep_samples=keep_samples - len(tally.samples), **limits)
        results[name] = tally.summary()
    return results


def _run_batch(system: System, chunk: list[Any], reward_fn: Any, tally: _Tally, *, seed: int, sampling: Sampling,
               keep_samples: int, max_query_len: int, max_answer_len: int, max_new_tokens: int) -> None:
    """One batch of equal-length episodes through the shared episode loop, from the first interaction to the
    last follow-up."""
    from rxmrl.env.episode_loop import make_env, run_episodes

    steps = chunk[0].steps
    env = make_env(chunk, system.tokenizer, reward_fn, steps=steps, seed=seed, max_query_len=max_query_len,
                   max_answer_len=max_answer_len, max_interaction_len=max_query_len + max_answer_len,
                   reward_intermediate=tally.reward_intermediate)
    run = _SystemRun(system, tally, seed=seed, sampling=sampling, max_new_tokens=max_new_tokens,
                     keep_samples=keep_samples)
    # ids are handed over on the CPU (each system moves them to its model); the rows are the chunk, in order
    run_episodes(env, run, "cpu", options={"steps": steps, "indices": list(range(len(chunk)))})
    tally.episode_rewards += [sum(r) / len(r) for r in run.episode_rewards if r]  # an episode's mean rewarded step
    tally.samples += run.samples
    for key, value in system.notes(run.state).items():
        tally.notes[key] = tally.notes.get(key, 0) + value


class _SystemRun:
    """A system's agent in the shared episode loop (`rxmrl.env.episode_loop`) for one batch: it asks the system
    for answers, tells it the interactions, and scores every step into the tally."""

    def __init__(self, system: System, tally: _Tally, *, seed: int, sampling: Sampling, max_new_tokens: int,
                 keep_samples: int) -> None:
        import torch

        self.system, self.tally, self.seed = system, tally, seed
        self.sampling, self.max_new_tokens, self.keep_samples = sampling, max_new_tokens, keep_samples
        self.generator = torch.Generator(device=_system_device(system)).manual_seed(seed + 1)

    def start(self, episodes: list[Any], remember_ids: Any, remember_mask: Any) -> None:
        self.episodes = episodes
        self.state = self.system.start(remember_ids, remember_mask, self.seed)
        self.episode_rewards: list[list[float]] = [[] for _ in episodes]
        self.samples = [{"first": {"query": e.first.query, "answer": e.first.answer}, "steps": []}
                        for e in episodes[: max(0, self.keep_samples)]]

    def respond(self, step: int, query_ids: Any, query_mask: Any) -> Any:
        return self.system.respond(self.state, query_ids, query_mask, max_new_tokens=self.max_new_tokens,
                                   sampling=self.sampling, generator=self.generator)

    def record(self, turn: Turn) -> None:
        self.state = self.system.record(self.state, turn.interaction, turn.interaction_mask)
        self.tally.score_step(self.episodes, turn.step, turn.rewards, turn.info, self.episode_rewards, self.samples)


def _equal_length_batches(episodes: list[Any], batch_size: int) -> list[list[Any]]:
    """Episodes grouped by number of follow-ups (the env steps a batch in lock-step), in input order."""
    by_length: dict[int, list[Any]] = {}
    for episode in episodes:
        by_length.setdefault(episode.steps, []).append(episode)
    return [group[i : i + batch_size] for _, group in sorted(by_length.items())
            for i in range(0, len(group), batch_size)]


def _system_device(system: Any) -> Any:
    model = getattr(system, "model", None)
    if model is None:
        return "cpu"
    return next(model.parameters()).device


# ---- command line ------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="RxT model folder (with tokenizer.json)")
    parser.add_argument("--tokenizer", type=Path, default=None,
                        help="tokenizer.json for checkpoints without one (default: CHECKPOINT/tokenizer.json)")
    parser.add_argument("--source", default=None,
                        help="episodes: 'synthetic' (default) or any source rxmrl.data.load_episodes reads")
    parser.add_argument("--subset", default=None, help="subset of --source")
    parser.add_argument("--split", default="test", help="split (default test: held-out synthetic combinations)")
    parser.add_argument("--episodes", type=int, default=64, help="episodes to run (default 64)")
    parser.add_argument("--steps", type=int, default=8, help="follow-ups per episode (default 8: the 8+1 protocol)")
    parser.add_argument("--strategy", default=DEFAULT_STRATEGY,
                        help="single, cumulative (default), long_range or mixed")
    parser.add_argument("--reward", default=DEFAULT_REWARD, help="reward spec (default mrl-composite)")
    parser.add_argument("--baseline", type=Path, default=None, help="stateless baseline folder (rxmrl baseline train)")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=DIR",
                        help="another RxT checkpoint to run, e.g. warmstart_only=runs/x/warmstart-final (repeatable)")
    parser.add_argument("--no-memory-reset", action="store_true", help="skip the memory-reset ablations")
    parser.add_argument("--max-query-len", type=int, default=None,
                        help="query tokens (default: half the checkpoint's max_seq_len, at most 64)")
    parser.add_argument("--max-answer-len", type=int, default=None,
                        help="answer tokens incl. EOS (default: the rest of max_seq_len, at most 64)")
    parser.add_argument("--batch-size", type=int, default=16, help="episodes answered together (default 16)")
    parser.add_argument("--sample", action="store_true", help="sample answers instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--samples", type=int, default=2, help="episodes per system whose texts go in the JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = leave as is)")
    parser.add_argument("--json", type=Path, required=True, metavar="OUT", help="write the results here")
    parser.add_argument("--plot", type=Path, default=None, metavar="OUT.png", help="plot per-step rewards")


def run(args: argparse.Namespace) -> int:
    import torch

    from rxmrl.errors import ConfigError
    from rxmrl.model.sampling import Sampling

    for name in ("episodes", "steps", "batch_size"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: must be at least 1, got {getattr(args, name)}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    compare = _parse_compare(args.compare)
    model, tokenizer = load_rxt(args.checkpoint, args.tokenizer, args.device)
    systems = rxt_systems(model, tokenizer, "rxt", memory_reset=not args.no_memory_reset)
    if args.baseline is not None:
        from rxmrl.baseline.system import StatelessSystem

        systems["stateless"] = StatelessSystem.from_folder(args.baseline, device=args.device)
    for name, folder in compare.items():
        other, other_tokenizer = load_rxt(folder, None, args.device)
        systems.update(rxt_systems(other, other_tokenizer, name, memory_reset=not args.no_memory_reset))

    episodes = select_benchmark_episodes(args.source, args.subset, args.split, args.steps, args.strategy,
                                         args.episodes, args.seed)
    max_query_len = args.max_query_len or min(64, model.config.max_seq_len // 2)
    max_answer_len = args.max_answer_len or min(64, model.config.max_seq_len - max_query_len)
    if max_query_len + max_answer_len > model.config.max_seq_len:
        raise ConfigError(f"--max-query-len {max_query_len} + --max-answer-len {max_answer_len} exceeds the "
                          f"checkpoint's max_seq_len {model.config.max_seq_len}")
    sampling = Sampling(greedy=not args.sample, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    results = run_retention(systems, episodes, args.reward, max_query_len=max_query_len,
                            max_answer_len=max_answer_len, batch_size=args.batch_size, seed=args.seed,
                            sampling=sampling, keep_samples=args.samples)
    for name, r in results.items():
        curve = " ".join("-" if v is None else f"{v:.2f}" for v in r["per_step"])
        recall = "n/a" if r["fact_recall"] is None else f"{r['fact_recall']:.3f}"
        print(f"{name:<24} mean {r['mean']:.3f}  max {r['max']:.3f}  min {r['min']:.3f}  fact recall {recall}  "
              f"per step [{curve}]")
    output = {**results, "settings": {
        "checkpoint": str(args.checkpoint), "baseline": None if args.baseline is None else str(args.baseline),
        "compare": {k: str(v) for k, v in compare.items()}, "reward": args.reward,
        "source": args.source or "synthetic", "subset": args.subset, "split": args.split,
        "strategy": args.strategy, "steps": args.steps, "episodes": len(episodes),
        "max_query_len": max_query_len, "max_answer_len": max_answer_len, "seed": args.seed,
        "sampling": "greedy" if sampling.greedy else {"temperature": sampling.temperature, "top_k": sampling.top_k,
                                                      "top_p": sampling.top_p}}}
    write_json(args.json, output)
    if args.plot is not None:
        from rxmrl.bench.plots import plot_retention

        plot_retention(results, args.plot)
        print(f"wrote {args.plot}")
    return 0


def load_rxt(folder: Path, tokenizer_path: Path | None, device: str) -> tuple[Any, Any]:
    """An RxT checkpoint and its tokenizer (CheckpointError when the folder is a baseline or lacks one)."""
    from rxmrl.baseline.model import is_baseline_dir
    from rxmrl.data.tokenizer import Tokenizer
    from rxmrl.errors import CheckpointError
    from rxmrl.model import RxT

    if is_baseline_dir(folder):
        raise CheckpointError(f"{folder}: this is a stateless baseline folder; pass it with --baseline")
    model = RxT.from_pretrained(folder, device=device).eval()
    path = tokenizer_path or Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise CheckpointError(f"{folder}: no tokenizer.json; pass --tokenizer PATH")
    tokenizer = Tokenizer.from_file(path)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise CheckpointError(f"{path}: {tokenizer.vocab_size} tokens, more than the model's vocab_size "
                              f"{model.config.vocab_size}; is it the tokenizer this model was trained with?")
    return model, tokenizer


def select_benchmark_episodes(source: str | None, subset: str | None, split: str, steps: int, strategy: str,
                              count: int, seed: int) -> list[Any]:
    """`count` episodes of `steps` follow-ups (a seeded sample, kept in source order, when there are more)."""
    from rxmrl.env.episodes import select_episodes

    pool = select_episodes(source=source, subset=subset, split=split, steps=steps, strategy=strategy, seed=seed,
                           synthetic_episodes=count)
    if len(pool) <= count:
        return pool
    chosen = sorted(random.Random(seed).sample(range(len(pool)), count))
    return [pool[i] for i in chosen]


def _parse_compare(items: list[str]) -> dict[str, Path]:
    from rxmrl.errors import ConfigError

    compare: dict[str, Path] = {}
    for item in items:
        name, sep, folder = item.partition("=")
        name = name.strip()
        if not sep or not name or not folder:
            raise ConfigError(f"--compare {item!r}: expected NAME=DIR, e.g. warmstart_only=runs/x/warmstart-final")
        taken = ("rxt", "rxt_memory_reset", "stateless", *RESERVED_NAMES, *compare,
                 *(f"{n}_memory_reset" for n in compare))
        if name in taken or name.endswith("_memory_reset"):
            raise ConfigError(f"--compare {item!r}: the name '{name}' is taken; choose another")
        compare[name] = Path(folder)
    return compare
