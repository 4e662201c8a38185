"""The retention benchmark at the end of a curriculum run (its `[benchmark]` table).

    RUN_DIR/warmstart-final/        the model as the warm-start stages left it (saved when they end)
    RUN_DIR/benchmark/baseline/     the stateless baseline, trained (TRL SFT) on the run's training episodes
    RUN_DIR/benchmark/retention.json, retention.png, summary.md
    RUN_DIR/benchmark/retention-long_range-N.json   with `long_range_steps = N`: the RxT systems on
                                    long-range episodes too (recall the first interaction after N − 1 others)

Systems: `rxt` (the final model) and `rxt_memory_reset` (its memory ablation), `warmstart_only` (and
`warmstart_only_memory_reset`), `stateless`. All answer the same held-out episodes with the same seeds.

Resumable: every output is written atomically and skipped when it already exists, so a run killed during the
benchmark redoes only the part it was in (MRL itself is never redone: the runner sees the finished checkpoint).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rxmrl.atomic import atomic_write_text
from rxmrl.errors import CheckpointError, ConfigError
from rxmrl.recipes.curriculum_config import CurriculumConfig

WARMSTART_FINAL = "warmstart-final"
BENCHMARK_DIR = "benchmark"
BASELINE_DIR = "baseline"
RESULTS_FILE = "retention.json"
PLOT_FILE = "retention.png"
SUMMARY_FILE = "summary.md"
FINAL = "final"  # the curriculum runner's final model folder


def save_warmstart_model(model: Any, tokenizer: Any, run_dir: str | Path) -> Path:
    """Save the model right after warm-start (with the run's tokenizer) as RUN_DIR/warmstart-final/."""
    return model.save_pretrained(Path(run_dir) / WARMSTART_FINAL,
                                 write_extra=lambda folder: tokenizer.save(folder / "tokenizer.json"), overwrite=True)


def benchmark_limits(config: CurriculumConfig) -> dict[str, int]:
    """Token limits: the `[benchmark]` values, or (when 0) those the last MRL stage trained with."""
    bench, last = config.benchmark, config.expanded_stages()[-1]
    max_new = bench.max_new_tokens or last.generation.max_new_tokens
    answer = bench.max_answer_len or max(last.data.max_answer_len, max_new + 1)
    return {"max_query_len": bench.max_query_len or last.data.max_query_len, "max_answer_len": answer,
            "max_new_tokens": max_new}


def training_episodes(config: CurriculumConfig) -> list[Any]:
    """Every MRL stage's training episodes, in stage order: what the stateless baseline is trained on."""
    from rxmrl.recipes.setup import stage_episodes

    return [e for stage in config.expanded_stages()
            for e in stage_episodes(stage.data, stage, held_out=False, seed=config.seed)]


def heldout_episodes(config: CurriculumConfig) -> list[Any]:
    """The benchmark's episodes, from the curriculum's (evaluation) data source and the `split` split."""
    from rxmrl.bench.retention import select_benchmark_episodes

    bench, data = config.benchmark, config.expanded_stages()[-1].data
    source, _ = data.source_and_split(held_out=True)  # the benchmark's own split
    subset = None if source == "synthetic" else data.subset_for(bench.steps)
    return select_benchmark_episodes(source, subset, bench.split, bench.steps, bench.strategy, bench.episodes,
                                     config.seed)


def check_benchmark_packages(config: CurriculumConfig) -> None:
    """Fail before any training when the end-of-run benchmark would miss a package (TRL for the stateless
    baseline, matplotlib for the plot): a demo must not train for half an hour and then stop at an import."""
    from importlib.util import find_spec

    bench = config.benchmark
    if bench is None:
        return
    needed = {"matplotlib": "plot"}
    if bench.stateless:
        needed.update({"trl": "baseline", "transformers": "baseline"})
    missing = sorted(name for name in needed if find_spec(name) is None)
    if missing:
        extras = ",".join(sorted({needed[name] for name in missing}))
        raise ConfigError(f"[benchmark]: the end-of-run benchmark needs {', '.join(missing)}; install them with "
                          f"`pip install 'rxmrl[{extras}]'` (or `bash scripts/install.sh {extras}`), or remove "
                          f"[benchmark] from the curriculum")


def run_final_benchmark(config: CurriculumConfig, run_dir: str | Path, reward: Any, *,
                        progress: bool = True) -> dict[str, Any]:
    """Write RUN_DIR/benchmark/{retention.json, retention.png, summary.md}; returns the JSON object.

    `reward` is the curriculum's reward (used unless `[benchmark] reward` names another).
    """
    bench = config.benchmark
    assert bench is not None, "the curriculum has no [benchmark] table"
    run_dir = Path(run_dir)
    out = run_dir / BENCHMARK_DIR
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / RESULTS_FILE
    if results_path.is_file():
        results = json.loads(results_path.read_text(encoding="utf-8"))
    else:
        results = _measure(config, run_dir, reward, progress)
        atomic_write_text(results_path, json.dumps(results, indent=2) + "\n")
    systems = {k: v for k, v in results.items() if k != "settings"}
    if not (out / PLOT_FILE).is_file():
        from rxmrl.bench.plots import plot_retention

        plot_retention(systems, out / PLOT_FILE)
    summary = summary_table(results)
    if bench.long_range_steps:
        path = out / f"retention-long_range-{bench.long_range_steps}.json"
        if path.is_file():
            long_range = json.loads(path.read_text(encoding="utf-8"))
        else:
            long_range = _measure_long_range(config, run_dir, reward)
            atomic_write_text(path, json.dumps(long_range, indent=2) + "\n")
        summary += (f"\nLong-range episodes ({bench.long_range_steps} follow-ups; fact recall is the last one's):"
                    f"\n\n{summary_table(long_range)}")
    if not (out / SUMMARY_FILE).is_file():
        atomic_write_text(out / SUMMARY_FILE, summary)
    if progress:
        print(summary, file=sys.stderr)
    return results


def _measure(config: CurriculumConfig, run_dir: Path, reward: Any, progress: bool) -> dict[str, Any]:
    """Train the baseline if asked (or reuse it), then run every system on the held-out episodes."""
    from rxmrl.bench.retention import run_retention
    from rxmrl.data.tokenizer import Tokenizer
    from rxmrl.recipes.setup import resolve_device

    bench = config.benchmark
    device = resolve_device(config.device)
    tokenizer = Tokenizer.from_file(run_dir / "tokenizer.json")
    systems = _rxt_systems(config, run_dir, tokenizer)
    timings: dict[str, float] = {}
    baseline = None
    if bench.stateless:
        baseline, timings["baseline_training_s"] = _baseline(config, run_dir, systems["rxt"].model.config, tokenizer,
                                                          progress)
        from rxmrl.baseline.system import StatelessSystem

        systems["stateless"] = StatelessSystem.from_folder(baseline, device=str(device))

    episodes = heldout_episodes(config)
    limits = benchmark_limits(config)
    if progress:
        print(f"rxmrl: retention benchmark: {len(episodes)} held-out episodes x {bench.steps} follow-ups, "
              f"systems {', '.join(systems)}", file=sys.stderr)
    start = time.perf_counter()
    results = run_retention(systems, episodes, bench.reward or reward, batch_size=bench.batch_size, seed=config.seed,
                            sampling=bench.sampling, keep_samples=bench.samples, **limits)
    timings["retention_s"] = round(time.perf_counter() - start, 1)
    settings = {"run_dir": str(run_dir), "final": str(run_dir / FINAL),
                "warmstart_only": str(run_dir / WARMSTART_FINAL) if bench.warmstart_only else None,
                "baseline": None if baseline is None else str(baseline),
                "reward": bench.reward or getattr(reward, "name", str(reward)), "split": bench.split,
                "strategy": bench.strategy, "steps": bench.steps, "episodes": len(episodes), **limits,
                "seed": config.seed, "sampling": "greedy" if bench.greedy else {"temperature": bench.temperature},
                "timings": timings}
    return {**results, "settings": settings}


def _rxt_systems(config: CurriculumConfig, run_dir: Path, tokenizer: Any) -> dict[str, Any]:
    """The final model and (if asked) the warm-start-only one, each with its memory-reset ablation."""
    from rxmrl.bench.retention import rxt_systems
    from rxmrl.model import RxT
    from rxmrl.recipes.setup import resolve_device

    device = resolve_device(config.device)
    systems = rxt_systems(RxT.from_pretrained(run_dir / FINAL, device=device).eval(), tokenizer, "rxt")
    if config.benchmark.warmstart_only:
        folder = run_dir / WARMSTART_FINAL
        if not folder.is_dir():
            raise CheckpointError(f"{folder}: the warm-start-only model is missing (it is saved when warm-start "
                                  f"ends); set benchmark.warmstart_only = false to benchmark without it")
        warm = RxT.from_pretrained(folder, device=device).eval()
        systems.update(rxt_systems(warm, tokenizer, "warmstart_only"))
    return systems


def _measure_long_range(config: CurriculumConfig, run_dir: Path, reward: Any) -> dict[str, Any]:
    """The RxT systems (not the stateless baseline) on held-out long-range episodes of `long_range_steps`."""
    from rxmrl.bench.retention import run_retention, select_benchmark_episodes
    from rxmrl.data.tokenizer import Tokenizer

    bench, data = config.benchmark, config.expanded_stages()[-1].data
    source, _ = data.source_and_split(held_out=True)  # the benchmark's own split
    subset = None if source == "synthetic" else data.subset_for(bench.long_range_steps)
    episodes = select_benchmark_episodes(source, subset, bench.split, bench.long_range_steps, "long_range",
                                         bench.episodes, config.seed)
    systems = _rxt_systems(config, run_dir, Tokenizer.from_file(run_dir / "tokenizer.json"))
    results = run_retention(systems, episodes, bench.reward or reward, batch_size=bench.batch_size, seed=config.seed,
                            sampling=bench.sampling,
                            keep_samples=bench.samples, **benchmark_limits(config))
    return {**results, "settings": {"strategy": "long_range", "steps": bench.long_range_steps,
                                    "episodes": len(episodes), "split": bench.split, "seed": config.seed}}


def _baseline(config: CurriculumConfig, run_dir: Path, rxt_config: Any, tokenizer: Any,
              progress: bool) -> tuple[Path, float]:
    """The stateless baseline folder: trained on the run's training episodes unless already there."""
    from rxmrl.baseline.model import is_baseline_dir
    from rxmrl.baseline.train import train_baseline

    folder = run_dir / BENCHMARK_DIR / BASELINE_DIR
    if is_baseline_dir(folder):
        return folder, 0.0
    episodes = training_episodes(config)
    if progress:
        print(f"rxmrl: training the stateless baseline on {len(episodes)} episodes "
              f"({config.benchmark.baseline.steps} steps)", file=sys.stderr)
    start = time.perf_counter()
    train_baseline(episodes, tokenizer, rxt_config, folder, config.benchmark.baseline,
                   matched_to={"run": str(run_dir), "preset": rxt_config.name}, progress=progress)
    return folder, round(time.perf_counter() - start, 1)


def summary_table(results: dict[str, Any]) -> str:
    """A Markdown table: one row per system (mean reward, fact recall, reward per follow-up)."""
    lines = ["| system | mean reward | fact recall | reward per follow-up |", "|---|---|---|---|"]
    for name, r in results.items():
        if name == "settings":
            continue
        recall = "n/a" if r.get("fact_recall") is None else f"{r['fact_recall']:.3f}"
        curve = " ".join("-" if v is None else f"{v:.2f}" for v in r["per_step"])
        lines.append(f"| {name} | {r['mean']:.3f} | {recall} | {curve} |")
    return "\n".join(lines) + "\n"
