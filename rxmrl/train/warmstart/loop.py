"""The one supervised training loop shared by the four warm-start stages.

AdamW with a warm-up + cosine schedule, gradient accumulation and clipping, bf16 autocast on CUDA (fp32 on
CPU), a tqdm bar, TensorBoard + `metrics.jsonl`, held-out evaluation and atomic checkpoints.

Exact resume: everything a step depends on is either saved in the checkpoint (weights, extra modules,
optimizer, schedule, the stage's generator, the global RNG, counters) or a pure function of the step number
(which micro-batches it reads, which parameters are frozen). So a run killed at any moment and resumed from
its latest checkpoint ends with bit-identical weights on CPU.

Distributed (torchrun, see docs/DISTRIBUTED.md): rank r reads micro-batches r, r + world, ... of the same
stream, draws from its own generator, and the gradients are averaged across ranks before clipping; rank 0
evaluates (and shares the result), logs and writes checkpoints holding every rank's generator and RNG.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rxmrl.errors import TrainingError
from rxmrl.train import distributed
from rxmrl.train.checkpoint import latest_checkpoint, load_checkpoint, load_run_checkpoint, save_run_checkpoint
from rxmrl.train.schedule import warmup_cosine
from rxmrl.train.tracking import Tracker
from rxmrl.train.warmstart.stage import SupervisedStage

FINAL = "final"
# The held-out generator is re-seeded for every evaluation, so a score depends on the weights alone.
_EVAL_SEED_OFFSET = 1_000_003


@dataclass
class LoopConfig:
    steps: int  # optimizer steps
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    grad_accum: int = 1  # micro-batches per optimizer step
    max_grad_norm: float = 1.0  # 0 = no clipping
    log_every: int = 10
    eval_every: int = 0  # 0 = only at the end
    save_every: int = 100  # 0 = only the final folder
    keep: int = 2  # step checkpoints kept
    max_nonfinite: int = 10  # give up after this many non-finite steps in a row
    # Stop early once this process has spent this many CPU seconds training (0 = never): an equal-compute
    # control, fair on a shared machine because a busy neighbour does not count. A run stopped by the clock
    # is not reproducible step for step; the steps it made are in its metrics.
    max_seconds: float = 0.0


class Batch:
    """Anything a stage's `loss` accepts; must be movable to a device."""

    def to(self, device: str | torch.device) -> Batch:  # pragma: no cover - protocol only
        raise NotImplementedError


def train(
    stage: SupervisedStage,
    *,
    model: Any,
    tokenizer: Any,
    train_batch: Callable[[int], Batch],
    eval_batches: Sequence[Batch],
    config: LoopConfig,
    out_dir: str | Path,
    seed: int,
    tracker: Tracker | None = None,
    metric_prefix: str = "",
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, float]:
    """Train `model` in place with `stage` and return the final held-out metrics.

    `train_batch(i)` is the i-th micro-batch of the run (a pure function of i, so resume needs no data
    cursor). Resumes from `out_dir`'s latest checkpoint; writes `out_dir/final/` at the end; if `final/`
    exists already, loads its weights into `model` and returns its metrics without training.
    """
    out_dir = Path(out_dir)
    done = finished_metrics(out_dir, model)
    if done is not None:
        return done

    params = stage.trainable_parameters()
    optimizer = torch.optim.AdamW(_param_groups(params, config.weight_decay), lr=config.lr, betas=config.betas)
    scheduler = warmup_cosine(optimizer, config.warmup_steps, config.steps, config.min_lr_ratio)
    world, rank = distributed.world_size(), distributed.rank()
    rank_seed = seed if world == 1 else distributed.rank_seed(seed)  # each rank its own random stream
    generator = torch.Generator().manual_seed(rank_seed)
    start, nonfinite_in_row, nonfinite_total = 0, 0, 0
    checkpoint = distributed.broadcast_object(latest_checkpoint(out_dir))  # rank 0's view decides
    if checkpoint is not None:
        state = load_run_checkpoint(checkpoint, model=model, modules=stage.extra_modules(),
                                    optimizers={"adamw": optimizer}, schedulers={"schedule": scheduler},
                                    generators={"stage": generator})
        start = state["step"]
        nonfinite_in_row, nonfinite_total = state["nonfinite_in_row"], state["nonfinite_total"]
    else:
        torch.manual_seed(rank_seed)  # dropout and anything else on the global RNG
        for module in (model, *stage.extra_modules().values()):
            distributed.broadcast_module(module)  # fresh heads were drawn from each rank's RNG

    own_tracker = tracker is None
    tracker = Tracker(out_dir, enabled=distributed.is_main()) if own_tracker else tracker
    # a stage that runs for a time budget counts steps without a total (its `steps` is only an upper bound)
    timed = config.max_seconds > 0
    bar = _progress_bar(progress and distributed.is_main(), total=None if timed else config.steps, initial=start,
                        desc=f"{stage.name} ({config.max_seconds:.0f} CPU s)" if timed else stage.name)
    in_sync = [*model.parameters(), *(p for m in stage.extra_modules().values() for p in m.parameters())]
    window: dict[str, list[float]] = {}
    started, done = time.process_time(), start
    try:
        for step in range(start, config.steps):
            stage.before_step(step)
            model.train()
            optimizer.zero_grad(set_to_none=True)
            losses = []
            for micro in range(config.grad_accum):
                batch = train_batch((step * config.grad_accum + micro) * world + rank).to(device)
                with _autocast(device):
                    loss, metrics = stage.loss(batch, generator)
                (loss / config.grad_accum).backward()
                losses.append(float(loss.detach()))
                for k, v in metrics.items():
                    window.setdefault(k, []).append(float(v))

            distributed.average_gradients(params)
            grad_norm = _clip(params, config.max_grad_norm)  # of the averaged gradients: the same on every rank
            if distributed.all_agree(all(math.isfinite(x) for x in losses)) and math.isfinite(grad_norm):
                optimizer.step()
                distributed.check_in_sync(in_sync, f"{stage.name} step {step + 1}")
                nonfinite_in_row = 0
            else:  # skip the update, keep the schedule moving so steps and learning rates stay aligned
                nonfinite_in_row += 1
                nonfinite_total += 1
                if nonfinite_in_row >= config.max_nonfinite:
                    raise TrainingError(
                        f"{stage.name}: {nonfinite_in_row} non-finite losses or gradients in a row at step "
                        f"{step + 1}; lower `lr` or clip harder with a smaller `max_grad_norm` (checkpoints: {out_dir})"
                    )
            lr = optimizer.param_groups[0]["lr"]
            with warnings.catch_warnings():  # torch warns when a skipped update precedes the schedule step
                warnings.simplefilter("ignore", UserWarning)
                scheduler.step()
            done = step + 1
            window.setdefault("loss", []).append(sum(losses) / len(losses))
            window.setdefault("grad_norm", []).append(grad_norm)
            bar.update(1)
            bar.set_postfix(loss=f"{window['loss'][-1]:.4f}")

            if config.log_every > 0 and (done % config.log_every == 0 or done == config.steps):
                # stage metrics that name their own section ("memory/loss") keep it; the rest go under train/
                logged = {(k if "/" in k else f"train/{k}"): sum(v) / len(v) for k, v in window.items()}
                logged.update({"train/lr": lr, "train/nonfinite_skipped": nonfinite_total})
                tracker.log(_prefix(distributed.mean_metrics(logged), metric_prefix), done)
                window.clear()
            if config.eval_every > 0 and done % config.eval_every == 0 and done < config.steps:
                metrics = distributed.from_main(lambda: evaluate(stage, model, eval_batches, seed=seed, device=device))
                tracker.log(_prefix({f"eval/{k}": v for k, v in metrics.items()}, metric_prefix), done)
            if config.save_every > 0 and done % config.save_every == 0 and done < config.steps:
                save_run_checkpoint(out_dir, done, model=model, tokenizer=tokenizer, modules=stage.extra_modules(),
                                    optimizers={"adamw": optimizer}, schedulers={"schedule": scheduler},
                                    generators={"stage": generator}, keep=config.keep,
                                    state={"stage": stage.name, "nonfinite_in_row": nonfinite_in_row,
                                           "nonfinite_total": nonfinite_total})
            if config.max_seconds > 0 and distributed.all_agree(time.process_time() - started >= config.max_seconds):
                break
        bar.close()

        metrics = distributed.from_main(lambda: evaluate(stage, model, eval_batches, seed=seed, device=device))
        if config.max_seconds > 0:
            metrics["steps_trained"] = float(done)
        tracker.log(_prefix({f"eval/{k}": v for k, v in metrics.items()}, metric_prefix), done)
        save_run_checkpoint(out_dir, done, model=model, tokenizer=tokenizer, modules=stage.extra_modules(),
                            state={"stage": stage.name, "metrics": metrics, "nonfinite_total": nonfinite_total},
                            name=FINAL)
        return metrics
    finally:
        bar.close()
        stage.finish()
        if own_tracker:
            tracker.close()


def finished_metrics(out_dir: str | Path, model: Any) -> dict[str, float] | None:
    """If `out_dir/final/` exists: load its weights (and the RNG state it ended with) and return its metrics."""
    final_dir = Path(out_dir) / FINAL
    if not (final_dir / "trainer_state.pt").is_file():
        return None
    return dict(load_checkpoint(final_dir, model=model)["metrics"])


@torch.no_grad()
def evaluate(stage: SupervisedStage, model: Any, batches: Sequence[Batch], *, seed: int,
             device: str = "cpu") -> dict[str, float]:
    """Held-out metrics: the stage's (sum, count) statistics added over `batches`, then averaged."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed((seed + _EVAL_SEED_OFFSET) % 2**63)
    sums: dict[str, list[float]] = {}
    try:
        for batch in batches:
            with _autocast(device):
                stats = stage.eval(batch.to(device), generator)
            for name, (total, count) in stats.items():
                acc = sums.setdefault(name, [0.0, 0.0])
                acc[0] += total
                acc[1] += count
    finally:
        model.train(was_training)
    # a statistic that covered nothing (e.g. no fact tokens in these answers) is left out, not reported as NaN
    means = {name: total / count for name, (total, count) in sums.items() if count > 0}
    return stage.summarize(means)


def _param_groups(params: list[torch.nn.Parameter], weight_decay: float) -> list[dict[str, Any]]:
    # Decay matrices only: shrinking gains, biases and norms towards 0 only hurts.
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _clip(params: list[torch.nn.Parameter], max_norm: float) -> float:
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return 0.0
    if max_norm > 0:
        return float(torch.nn.utils.clip_grad_norm_(with_grad, max_norm))
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in with_grad])))


def _autocast(device: str) -> contextlib.AbstractContextManager:
    # bf16 on CUDA only: CPU autocast is slow on most CPUs and the CPU runs are meant to be exact in fp32.
    if str(device).startswith("cuda"):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _prefix(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in metrics.items()} if prefix else metrics


def _progress_bar(enabled: bool, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(disable=not enabled, leave=False, dynamic_ncols=True, **kwargs)
