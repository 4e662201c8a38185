"""MRL gain: does a curriculum's MRL stages add retention over their warm start, and over more SMAT?

    rxmrl bench mrl-gain --curriculum curricula/cpu-demo.toml --warmstart RUN/warmstart-final --seeds 3 --out OUT

For each seed s, from the same warm-start model:
  mrl-s       the curriculum's MRL stages (its `[[warmstart]]` and `[benchmark]` tables are dropped), run as
              `rxmrl train` would, in OUT/mrl/seed-s/;
  control-s   the equal-compute control: supervised memory-aware training (SMAT) continued from the warm
              start, one segment per MRL stage on episodes of that stage's length and strategy, each given
              the seconds of training time that MRL stage took (held-out evaluation not counted on either
              side), in OUT/control/seed-s/. Its settings are the curriculum's last SMAT table at the learning
              rate where that table's schedule ended (constant; `--control-lr` to choose another), training
              what that table trains; `--control-trains memory` trains memory attention alone (decoder and
              encoder frozen), the parameters of an MRL stage that freezes them.
Then every model (the warm start, each mrl-s and control-s, each also with its memory reset before every
answer) answers the same held-out `test` episodes, greedily (or sampled at `--temperature`, the same
random draws for every system, since a greedy answer that does not change can hide a shift in the policy):
`cumulative` episodes of 8 follow-ups (the RxT
paper's 8+1 protocol) and `long_range` episodes of 16 follow-ups (recall the first interaction after 15
unrelated turns). Reported per system and episode set: mean reward, fact recall, and the last follow-up's
reward and fact recall; per comparison (mrl − warm start, mrl − control, control − warm start) the per-seed
differences with their mean, sample std and 95% t-interval over seeds.

Output: OUT/gain.json, OUT/gain.png, OUT/summary.md; every finished part is kept (atomic files), so a rerun
with the same arguments continues where a kill stopped it: an MRL run resumes exactly from its checkpoint, a
control segment or an evaluation that was cut off is redone. A rerun with different settings is refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

EPISODE_SETS = {"cumulative-8": ("cumulative", 8), "long_range-16": ("long_range", 16)}
METRICS = ("mean", "fact_recall", "last_step", "last_step_fact_recall")
COMPARISONS = (("mrl", "warmstart"), ("mrl", "control"), ("control", "warmstart"))
SETTINGS_FILE = "settings.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--curriculum", type=Path, required=True, help="curriculum TOML whose [[stage]]s are the MRL")
    parser.add_argument("--warmstart", type=Path, required=True,
                        help="warm-start model folder with tokenizer.json (e.g. RUN/warmstart-final)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (reruns continue in it)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="curriculum override, as in rxmrl train (repeatable)")
    parser.add_argument("--episodes", type=int, default=64, help="held-out episodes per episode set (default 64)")
    parser.add_argument("--batch-size", type=int, default=32, help="episodes answered together (default 32)")
    parser.add_argument("--no-control", action="store_true", help="skip the equal-compute SMAT control")
    parser.add_argument("--control-lr", type=float, default=0.0,
                        help="SMAT control learning rate (default: where the curriculum's last SMAT schedule ended)")
    parser.add_argument("--control-trains", choices=("all", "memory"), default="all",
                        help="what the SMAT control trains: what its table trains (all), or memory attention alone")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="evaluate with answers sampled at this temperature (default 0: greedy)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared CPU)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import torch

    from rxmrl.errors import ConfigError

    if args.seeds < 1 or args.episodes < 1 or args.batch_size < 1:
        raise ConfigError("--seeds, --episodes and --batch-size must be at least 1")
    if args.temperature < 0:
        raise ConfigError(f"--temperature: 0 (greedy) or more, got {args.temperature}")
    if not (args.warmstart / "tokenizer.json").is_file():
        raise ConfigError(f"--warmstart {args.warmstart}: not a model folder with a tokenizer.json")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    bench = MrlGain(args.curriculum, args.warmstart, args.out, overrides=args.set, seeds=args.seeds,
                    episodes=args.episodes, batch_size=args.batch_size, control=not args.no_control,
                    control_lr=args.control_lr, control_trains=args.control_trains, temperature=args.temperature,
                    progress=not args.no_progress)
    report = bench.run()
    print(summary_table(report))
    return 0


class MrlGain:
    """The benchmark's work list (train, control, evaluate), each item skipped when its output exists."""

    def __init__(self, curriculum: str | Path, warmstart: Path, out: Path, *, overrides: list[str], seeds: int,
                 episodes: int, batch_size: int, control: bool, control_lr: float, progress: bool,
                 control_trains: str = "all", temperature: float = 0.0) -> None:
        from rxmrl.recipes.curriculum_config import load_curriculum

        self.base = load_curriculum(curriculum, overrides)
        self.warmstart, self.out = warmstart.resolve(), out
        self.seeds, self.episodes, self.batch_size = list(range(seeds)), episodes, batch_size
        self.control, self.control_lr, self.control_trains = control, control_lr, control_trains
        self.progress, self.temperature = progress, temperature
        self.settings = {"curriculum": str(Path(curriculum).resolve()), "overrides": list(overrides),
                         "warmstart": str(self.warmstart), "seeds": seeds, "episodes": episodes,
                         "batch_size": batch_size, "control": control, "control_lr": control_lr,
                         "control_trains": control_trains, "temperature": temperature}

    def run(self) -> dict[str, Any]:
        self._claim_folder()
        for seed in self.seeds:
            stage_seconds = self._mrl(seed)
            if self.control:
                self._control(seed, stage_seconds)
        results = {name: self._evaluate(name, folder) for name, folder in self._systems().items()}
        report = gain_report(results, self.seeds, self.control)
        report["decoding"] = f"sampled at temperature {self.temperature:g}" if self.temperature else "greedy"
        report["settings"] = {**self.settings, "training": self._training_records()}
        _write_json(self.out / "gain.json", report)
        _write_text(self.out / "summary.md", summary_table(report))
        from rxmrl.bench.plots import plot_gain
        from rxmrl.errors import ConfigError

        try:
            plot_gain(report, self.out / "gain.png")
        except ConfigError as e:  # matplotlib missing: the JSON and the table are the results
            print(f"rxmrl: no gain.png: {e}", file=sys.stderr)
        return report

    # ---- the work items ---------------------------------------------------------------------------------

    def _claim_folder(self) -> None:
        from rxmrl.errors import ConfigError

        path = self.out / SETTINGS_FILE
        if path.is_file():
            recorded = json.loads(path.read_text(encoding="utf-8"))
            if recorded != self.settings:
                raise ConfigError(f"{self.out}: holds an mrl-gain benchmark with other settings ({path}); "
                                  f"choose another --out or repeat its arguments")
        elif self.out.exists() and any(self.out.iterdir()):
            raise ConfigError(f"{self.out}: not empty and not an mrl-gain folder; choose another --out")
        _write_json(path, self.settings)

    def mrl_config(self, seed: int) -> Any:
        """The curriculum's MRL stages starting from the warm-start model, with this seed."""
        from rxmrl.recipes.curriculum_config import ModelSource, TokenizerSource

        return dataclasses.replace(
            self.base, seed=seed, warmstart=[], benchmark=None,
            model=ModelSource(name=str(self.warmstart)),
            tokenizer=TokenizerSource(path=str(self.warmstart / "tokenizer.json")))

    def _mrl(self, seed: int) -> list[float]:
        """Train (or resume) MRL seed `seed`; returns the training seconds of each stage."""
        from rxmrl.recipes.curriculum import resolved_run, run_curriculum
        from rxmrl.train.checkpoint import latest_checkpoint

        record = self.out / "mrl" / f"seed-{seed}.json"
        if record.is_file():
            return json.loads(record.read_text(encoding="utf-8"))["stage_seconds"]
        run_dir = self.out / "mrl" / f"seed-{seed}"
        resume = latest_checkpoint(run_dir) is not None
        self._say(f"MRL seed {seed}" + (" (resuming)" if resume else ""))
        config = resolved_run(run_dir) if resume else self.mrl_config(seed)
        summary = run_curriculum(config, run_dir, resume=resume, progress=self.progress)
        seconds = stage_seconds(summary["history"], len(config.expanded_stages()))
        _write_json(record, {"stage_seconds": seconds, "history": summary["history"],
                             "final": str(run_dir / "final")})
        return seconds

    def control_tables(self, seed: int, seconds: list[float]) -> list[Any]:
        """One SMAT table per MRL stage: that stage's episodes, its training seconds, a constant rate."""
        from rxmrl.train.warmstart.config import WarmStartConfig

        smat = [t for t in self.base.warmstart if t.stage == "smat"]
        base = smat[-1] if smat else WarmStartConfig(stage="smat", steps=1)
        lr = self.control_lr or base.lr * base.min_lr_ratio
        # the schedule is "forever": train from the start what the table trains at all
        trains = dict(unfreeze_memory_attention_at=0.0 if base.unfreeze_memory_attention_at < 1 else 1.0,
                      unfreeze_encoder_at=0.0 if base.unfreeze_encoder_at < 1 else 1.0)
        if self.control_trains == "memory":
            trains = dict(unfreeze_memory_attention_at=0.0, unfreeze_encoder_at=1.0, train_decoder=False)
        tables = []
        for stage, budget in zip(self.base.expanded_stages(), seconds):
            data = dataclasses.replace(base.data, source=stage.data.source, steps=stage.follow_ups,
                                       strategy=stage.episode_strategy, seed=seed, eval_examples=16)
            tables.append(dataclasses.replace(
                base, steps=10**7, max_seconds=max(budget, 1e-3), lr=lr, warmup_ratio=0.0, min_lr_ratio=1.0,
                save_every=0, eval_every=0, log_every=50, data=data, **trains))
        return tables

    def _control(self, seed: int, seconds: list[float]) -> None:
        from rxmrl.data.tokenizer import Tokenizer
        from rxmrl.model import RxT
        from rxmrl.seeding import derive_seed
        from rxmrl.train.warmstart import run_warmstart

        folder = self.out / "control" / f"seed-{seed}"
        if (folder / "model" / "config.json").is_file():
            return
        self._say(f"SMAT control seed {seed} ({sum(seconds):.0f} s in {len(seconds)} segments)")
        device = self.base.device if self.base.device != "auto" else "cpu"
        model = RxT.from_pretrained(self.warmstart, device=device)
        tokenizer = Tokenizer.from_file(self.warmstart / "tokenizer.json")
        segments, tables = [], self.control_tables(seed, seconds)
        for i, table in enumerate(tables):
            metrics = run_warmstart(table, model, tokenizer, folder / f"segment-{i}-steps-{table.data.steps}",
                                    seed=derive_seed(seed, "control", i) % 2**31, device=device,
                                    progress=self.progress)
            segments.append({"steps": table.data.steps, "strategy": table.data.strategy,
                             "seconds": table.max_seconds, "optimizer_steps": metrics.get("steps_trained")})
        model.save_pretrained(folder / "model", write_extra=lambda f: tokenizer.save(f / "tokenizer.json"))
        _write_json(folder.parent / f"seed-{seed}.json", {"segments": segments, "lr": tables[0].lr})

    def _systems(self) -> dict[str, Path]:
        systems = {"warmstart": self.warmstart}
        for seed in self.seeds:
            systems[f"mrl-{seed}"] = self.out / "mrl" / f"seed-{seed}" / "final"
            if self.control:
                systems[f"control-{seed}"] = self.out / "control" / f"seed-{seed}" / "model"
        return systems

    def _evaluate(self, name: str, folder: Path) -> dict[str, Any]:
        """{episode set: {"memory": summary, "memory_reset": summary}} of one model (cached per set)."""
        from rxmrl.bench.retention import load_rxt, run_retention, rxt_systems, select_benchmark_episodes
        from rxmrl.recipes.setup import build_reward

        out = {}
        for set_name, (strategy, steps) in EPISODE_SETS.items():
            path = self.out / "eval" / f"{name}-{set_name}.json"
            if path.is_file():
                out[set_name] = json.loads(path.read_text(encoding="utf-8"))
                continue
            self._say(f"evaluating {name} on {set_name}")
            model, tokenizer = load_rxt(folder, self.warmstart / "tokenizer.json", "cpu")
            episodes = select_benchmark_episodes(None, None, "test", steps, strategy, self.episodes, 0)
            started = time.perf_counter()
            results = run_retention(rxt_systems(model, tokenizer, "memory"), episodes, build_reward(self.base),
                                    batch_size=self.batch_size, seed=0, sampling=self._sampling(), **self._limits())
            results = {k.replace("memory_memory_reset", "memory_reset"): v for k, v in results.items()}
            results["seconds"] = round(time.perf_counter() - started, 1)
            _write_json(path, results)
            out[set_name] = results
        return out

    def _sampling(self) -> Any:
        from rxmrl.model.sampling import GREEDY, Sampling

        return Sampling(temperature=self.temperature) if self.temperature else GREEDY

    def _limits(self) -> dict[str, int]:
        last = self.base.expanded_stages()[-1]
        max_new = last.generation.max_new_tokens
        return {"max_query_len": last.data.max_query_len, "max_new_tokens": max_new,
                "max_answer_len": max(last.data.max_answer_len, max_new + 1)}

    def _training_records(self) -> dict[str, Any]:
        records = {}
        for kind in ("mrl", "control"):
            for seed in self.seeds:
                path = self.out / kind / f"seed-{seed}.json"
                if path.is_file():
                    records[f"{kind}-{seed}"] = json.loads(path.read_text(encoding="utf-8"))
        return records

    def _say(self, text: str) -> None:
        if self.progress:
            print(f"rxmrl: mrl-gain: {text}", file=sys.stderr)


def stage_seconds(history: list[dict[str, Any]], stages: int) -> list[float]:
    """Training seconds of each MRL stage: its last held-out evaluation's cumulative `train_s`."""
    seconds = [0.0] * stages
    for entry in history:
        seconds[entry["stage"] - 1] = float(entry.get("train_s", 0.0))
    return seconds


def system_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The reported figures of one retention summary (`rxmrl.bench.retention`)."""
    rewards = [v for v in summary["per_step"] if v is not None]
    recalls = [v for v in summary["per_step_fact_recall"] if v is not None]
    return {"mean": summary["mean"], "fact_recall": summary["fact_recall"],
            "last_step": rewards[-1] if rewards else None, "last_step_fact_recall": recalls[-1] if recalls else None}


def gain_report(results: dict[str, dict[str, Any]], seeds: list[int], control: bool) -> dict[str, Any]:
    """Per episode set: every system's figures, and each comparison's per-seed differences with mean ± CI."""
    from rxmrl.bench.stats import mean_ci

    report: dict[str, Any] = {"systems": {}, "gains": {}}
    for set_name in EPISODE_SETS:
        systems = {name: {view: system_metrics(r[set_name][view]) for view in ("memory", "memory_reset")}
                   for name, r in results.items()}
        report["systems"][set_name] = systems
        figures = {"warmstart": [systems["warmstart"]["memory"]] * len(seeds),
                   "mrl": [systems[f"mrl-{s}"]["memory"] for s in seeds]}
        if control:
            figures["control"] = [systems[f"control-{s}"]["memory"] for s in seeds]
        gains = {}
        for a, b in COMPARISONS:
            if a not in figures or b not in figures:
                continue
            gains[f"{a}-{b}"] = {metric: mean_ci([x[metric] - y[metric] for x, y in zip(figures[a], figures[b])])
                                 for metric in METRICS if figures[a][0][metric] is not None}
        report["gains"][set_name] = gains
        worse = gains.get("control-warmstart", {}).get("mean")
        if worse is not None and worse["ci95"] is not None and worse["ci95"][1] < 0:
            report.setdefault("warnings", []).append(
                f"{set_name}: the control scored below the warm start ({worse['mean']:+.3f}); a control damaged by "
                f"its learning rate overstates MRL's gain over it, so try a smaller --control-lr")
        report["systems"][set_name]["mrl (mean over seeds)"] = _seed_means(figures["mrl"])
        if control:
            report["systems"][set_name]["control (mean over seeds)"] = _seed_means(figures["control"])
    return report


def _seed_means(figures: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    from rxmrl.bench.stats import mean_ci

    return {"memory": {m: mean_ci([f[m] for f in figures]) for m in METRICS if figures[0][m] is not None}}


def summary_table(report: dict[str, Any]) -> str:
    """Markdown: per episode set, each comparison's mean gain [95% CI] for each figure."""
    lines = []
    for set_name, gains in report["gains"].items():
        lines += [f"### {set_name} (held-out test episodes, {report.get('decoding', 'greedy')})", "",
                  "| system | mean reward | fact recall | last-step reward | last-step fact recall |",
                  "|---|---|---|---|---|"]
        for name, views in report["systems"][set_name].items():
            for view, figures in views.items():
                label = name if view == "memory" else f"{name}, memory reset"
                cells = [_cell(figures.get(m)) for m in METRICS]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", "| gain (mean [95% CI] over seeds) | mean reward | fact recall | last-step reward | "
                      "last-step fact recall |", "|---|---|---|---|---|"]
        for name, by_metric in gains.items():
            lines.append(f"| {name} | " + " | ".join(_cell(by_metric.get(m), signed=True) for m in METRICS) + " |")
        lines.append("")
    lines += [f"Warning: {w}" for w in report.get("warnings", [])]
    return "\n".join(lines)


def _cell(value: Any, signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        mean = f"{value['mean']:+.3f}" if signed else f"{value['mean']:.3f}"
        if value["ci95"] is None:
            return mean
        low, high = value["ci95"]
        return f"{mean} [{low:+.3f}, {high:+.3f}]" if signed else f"{mean} ± {value['std']:.3f}"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    from rxmrl.atomic import atomic_write_text

    atomic_write_text(path, text)
