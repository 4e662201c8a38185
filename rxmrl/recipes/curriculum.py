"""Run a whole curriculum: optional supervised warm-start stages, then MRL stages of growing episode length.

    run_curriculum(load_curriculum("curricula/smoke.toml"), "runs/smoke")        # start
    run_curriculum(load_resolved("runs/smoke"), "runs/smoke", resume=True)        # continue after a kill

One MRL iteration = collect a batch of episodes (rollout) + one IMPO update. An epoch is a seeded pass over
the stage's training episodes, followed by a held-out evaluation and a checkpoint; a stage runs a fixed number
of epochs or until the held-out reward stops improving.

Exact resume. Every random draw comes from a generator whose state is in the checkpoint (answer sampling,
STM initialisation and resets, minibatch order) or from a seed derived from the run seed and the position
(stage, epoch, iteration): the episode order of each epoch, the environment's row order, evaluation. The
STM carried between episodes (random resets) is checkpointed too. So a run killed at any moment and resumed
from its latest checkpoint ends with bit-identical weights on CPU (same seed, same thread count).

Distributed (torchrun / accelerate launch, see docs/DISTRIBUTED.md): every rank builds the same model and
critic (then takes rank 0's weights), reads its own share of each epoch's batches and draws from its own
generators; the update averages gradients and advantage statistics across ranks; rank 0 evaluates, writes
checkpoints (with every rank's generators, RNG and carried STM) and logs, and broadcasts what decides the
control flow (held-out reward, the checkpoint to resume from).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rxmrl.data.episode import Episode
from rxmrl.env.episode_loop import make_env
from rxmrl.errors import CheckpointError, ConfigError, TrainingError
from rxmrl.policy.rxt_policy import RxTPolicy
from rxmrl.recipes.curriculum_config import RESOLVED_FILE, CurriculumConfig, StageConfig, start_resolved
from rxmrl.recipes.final_benchmark import check_benchmark_packages
from rxmrl.recipes.setup import (build_model, build_reward, build_tokenizer, check_lengths, resolve_device,
                                 stage_episodes)
from rxmrl.seeding import derive_seed
from rxmrl.train import distributed
from rxmrl.train.checkpoint import latest_checkpoint, load_run_checkpoint, save_run_checkpoint, set_aside_from
from rxmrl.train.dmpo_trainer import DmpoTrainer, dmpo_rollout_settings
from rxmrl.train.evaluation import evaluate_heldout, format_sample
from rxmrl.train.guard import all_finite, tolerant_reward
from rxmrl.train.mrl_trainer import MrlTrainer, build_optimizer, rollout_metrics
from rxmrl.train.rollout import RolloutSettings, collect_rollout
from rxmrl.train.run_folder import claim_run_folder, run_lock
from rxmrl.train.schedule import set_base_learning_rates, warmup_cosine
from rxmrl.train.tracking import Tracker
from rxmrl.train.unfreeze import apply_unfreeze

FINAL = "final"
REFERENCE = "reference"


class StmCarry(nn.Module):
    """The STM each batch row ended its last episode with, carried into its next one (random resets).

    A module with buffers only so the checkpoint saves it with the weights; `valid` is False until a first
    rollout of the stage has filled it.
    """

    def __init__(self, batch: int, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.register_buffer("stm", torch.zeros(batch, *shape))
        self.register_buffer("valid", torch.tensor(False))


@dataclass
class StageRun:
    """The live objects of the stage being trained."""

    index: int
    config: StageConfig
    train_pool: list[Episode]
    eval_pool: list[Episode]
    iterations_per_epoch: int
    optimizer: torch.optim.Optimizer
    scheduler: Any
    carry: StmCarry


def epoch_batches(pool: list[Episode], stage: StageConfig, group_size: int, seed: int, stage_index: int,
                  epoch: int, rank: int = 0, world: int = 1) -> list[list[Episode]]:
    """The batches of one epoch: a seeded permutation of the pool (repeated if the epoch is longer), cut into
    batches of `batch_size / group_size` distinct episodes, each repeated `group_size` times in a row.

    With `world` processes the epoch's batches are dealt out in turn (rank r takes batches r, r + world, ...),
    the same number to every rank (at least one), so together they make one pass as a single process would."""
    distinct = stage.batch_size // group_size
    wanted = max(stage.episodes_per_epoch or len(pool), distinct * world)
    rng = np.random.default_rng(derive_seed(seed, "epoch-order", stage_index, epoch))
    order: list[int] = []
    while len(order) < wanted:
        order += rng.permutation(len(pool)).tolist()
    batches = []
    for b in range(wanted // distinct):
        chunk = [pool[i] for i in order[b * distinct : (b + 1) * distinct]]
        batches.append([e for e in chunk for _ in range(group_size)])
    if world > 1:
        return batches[rank : len(batches) // world * world : world]
    return batches


def run_curriculum(config: CurriculumConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True,
                   device: str | None = None) -> dict[str, Any]:
    """Train through every stage of `config` in `run_dir`; returns a summary (the held-out reward history).

    `resume=True` continues from the run folder's latest checkpoint (the caller passes the run's resolved
    curriculum); without it the folder must not already hold a run.
    """
    run_dir = Path(run_dir)
    check_benchmark_packages(config)
    claim_run_folder(run_dir, RESOLVED_FILE)
    with run_lock(run_dir, enabled=distributed.is_main()):  # one run at a time in a folder
        if not resume and distributed.broadcast_object(latest_checkpoint(run_dir) is not None):
            raise CheckpointError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose a "
                                  f"new --out")
        if config.threads:
            torch.set_num_threads(config.threads)
        device_ = resolve_device(distributed.local_device(device or config.device))
        if not resume:
            config = start_resolved(config, run_dir, write=distributed.is_main())
        runner = _Runner(config, run_dir, device_, progress)
        try:
            return runner.run()
        finally:
            runner.tracker.close()


class _Runner:
    """The state machine behind `run_curriculum`: cursor (stage, epoch, iteration) + live objects."""

    def __init__(self, config: CurriculumConfig, run_dir: Path, device: torch.device, progress: bool) -> None:
        self.config, self.run_dir, self.device = config, run_dir, device
        self.progress = progress and distributed.is_main()  # one bar and one set of messages per run
        self.stages = config.expanded_stages()
        self.tracker = Tracker(run_dir, enabled=distributed.is_main())
        # rank 0 finds or trains (and saves) the tokenizer; the others use that very one
        self.tokenizer = distributed.from_main(lambda: build_tokenizer(config, run_dir))
        self.model = build_model(config, self.tokenizer, seed=derive_seed(config.seed, "model"))
        distributed.broadcast_module(self.model)
        check_lengths(config, self.model.config.max_seq_len)
        self.reward = build_reward(config)
        self.env_reward, self.reward_filter = tolerant_reward(self.reward)
        self.autocast = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else None)
        self.state: dict[str, Any] = {"stage": 0, "epoch": 0, "iteration": 0, "global_iteration": 0,
                                      "best_eval": None, "bad_epochs": 0, "guard": {"total": 0, "consecutive": 0},
                                      "history": [], "finished": False, "stage_train_s": 0.0}

    # ---- setup -------------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        latest = distributed.broadcast_object(latest_checkpoint(self.run_dir))  # rank 0's view decides
        if latest is None:
            self._warm_start()
            if self.config.benchmark is not None and self.config.benchmark.warmstart_only and distributed.is_main():
                from rxmrl.recipes.final_benchmark import save_warmstart_model

                save_warmstart_model(self.model, self.tokenizer, self.run_dir)
        self._start_mrl(fresh=latest is None)
        if latest is not None:
            saved = json.loads((latest / "trainer_state.json").read_text(encoding="utf-8"))
            if saved.get("finished") and (self.run_dir / FINAL).is_dir():
                self._final_benchmark()  # a run killed after MRL: only what the benchmark has not written yet
                return self._summary(saved)
            self.stage_run = self._new_stage(saved["stage"]) if saved["stage"] < len(self.stages) else None
            self.state = self._load(latest)
        else:
            self.stage_run = self._new_stage(0)
        while self.state["stage"] < len(self.stages):
            self._run_epoch()
        self.state["finished"] = True
        final = self._save(name=FINAL)
        self._save(force=True)
        if self.progress:
            print(f"rxmrl: done; final model in {final}", file=sys.stderr)
        self._final_benchmark()
        return self._summary(self.state)

    def _final_benchmark(self) -> None:
        if self.config.benchmark is None or not distributed.is_main():
            return  # one process runs the benchmark (it is evaluation only)
        from rxmrl.recipes.final_benchmark import run_final_benchmark

        run_final_benchmark(self.config, self.run_dir, self.reward, progress=self.progress)

    def _warm_start(self) -> None:
        tables = self.config.warmstart
        if not tables:
            return
        from rxmrl.train.warmstart import run_warmstart

        heads = []  # this run's joint-lm / sft stage folders: where sft's mlm_head_from = "auto" looks
        for i, table in enumerate(tables):
            out = self.run_dir / f"warmstart-{i}-{table.stage}"
            # 31 bits, as in the runs recorded so far (the warm-start sampler itself takes any int)
            seed = derive_seed(self.config.seed, "warmstart", i) % 2**31  # the loop derives per-rank streams
            run_warmstart(table, self.model, self.tokenizer, out, seed=seed,
                          tracker=self.tracker, device=str(self.device), progress=self.progress, mlm_head_sources=heads)
            heads += [out] if table.stage in ("joint-lm", "sft") else []
            self.model.to("cpu")

    def _start_mrl(self, fresh: bool) -> None:
        """Build policy, critic, reference model and generators exactly as at the start of MRL."""
        seed = self.config.seed
        torch.manual_seed(derive_seed(seed, "mrl"))  # the critic's initial weights
        model = self.model.to(self.device)
        self.policy = RxTPolicy(model, self.config.critic, pad_id=self.tokenizer.pad_id).to(self.device)
        distributed.broadcast_module(self.policy.critic)
        self.policy.eval()  # no dropout: the update's log-probs must equal the rollout's
        self.reference = self._reference_model(fresh) if self.config.uses_reference() else None
        hooks = {}
        if distributed.world_size() > 1:
            hooks = dict(reduce=distributed.all_reduce_sum, grad_hook=distributed.average_gradients,
                         agree=distributed.all_agree, split=distributed.split_agreed)
        self.trainer = MrlTrainer(self.policy, self.config.impo, autocast=self.autocast, **hooks)
        self.dmpo = None
        if any(stage.algorithm == "dmpo" for stage in self.stages):
            hooks.pop("reduce", None)  # DMPO has no advantage statistics to share
            self.dmpo = DmpoTrainer(self.policy, self.reference, self.config.dmpo, pad_id=self.tokenizer.pad_id,
                                    guard=self.trainer.guard, autocast=self.autocast, **hooks)
        self.generators = {  # one stream per rank in a distributed run
            "sample": torch.Generator(device=self.device).manual_seed(distributed.rank_seed(seed, "sample")),
            "memory": torch.Generator(device=self.device).manual_seed(distributed.rank_seed(seed, "memory")),
            "update": torch.Generator().manual_seed(distributed.rank_seed(seed, "update")),
        }

    def _reference_model(self, fresh: bool) -> nn.Module:
        """A frozen copy of the model as MRL started (saved in RUN_DIR/reference so a resume uses the same)."""
        from rxmrl.model import RxT

        folder = self.run_dir / REFERENCE
        if fresh and distributed.is_main():
            self.model.save_pretrained(folder, overwrite=True)  # the run's own folder
        distributed.barrier()  # the others read what rank 0 wrote
        if not fresh and not folder.is_dir():
            raise CheckpointError(f"{folder}: the reference model of this run is missing (impo.kl_ref_coef > 0 and "
                                  f"dmpo stages need the model as MRL started); it cannot be rebuilt on resume")
        reference = RxT.from_pretrained(folder).to(self.device).eval()
        reference.requires_grad_(False)
        return reference

    def _new_stage(self, index: int) -> StageRun:
        stage = self.stages[index]
        seed = self.config.seed
        train_pool = stage_episodes(stage.data, stage, held_out=False, seed=seed)
        eval_pool = stage_episodes(stage.data, stage, held_out=True, seed=seed)
        iterations = len(self._epoch_batches(train_pool, stage, self.config.group_size(stage), index, 0))
        optimizer = build_optimizer(self.policy, stage.lr, stage.weight_decay, stage.adam_eps)
        scheduler = warmup_cosine(optimizer, stage.warmup_iterations, iterations * stage.max_epochs, stage.min_lr_ratio)
        cfg = self.model.config
        shape = (cfg.stm.layers or cfg.decoder.layers, cfg.stm.slots, cfg.stm.dim or cfg.dim)
        carry = StmCarry(stage.batch_size, shape).to(self.device)
        return StageRun(index, stage, train_pool, eval_pool, iterations, optimizer, scheduler, carry)

    # ---- checkpoints -------------------------------------------------------------------------------------

    def _objects(self) -> dict[str, Any]:
        run = self.stage_run
        objects: dict[str, Any] = {"modules": {"critic": self.policy.critic}, "generators": self.generators}
        if run is not None:
            objects["modules"]["carry"] = run.carry
            objects["optimizers"] = {"optimizer": run.optimizer}
            objects["schedulers"] = {"scheduler": run.scheduler}
        return objects

    def _save(self, name: str | None = None, force: bool = False) -> Path | None:
        if name is None and not force and not self._healthy():
            return None  # never a checkpoint of a state that may be broken: it would push a good one out
        self.state["guard"] = self.trainer.guard.state_dict()
        return save_run_checkpoint(self.run_dir, self.state["global_iteration"], model=self.model,
                                   tokenizer=self.tokenizer, state=self.state, keep=self.config.checkpoint.keep,
                                   name=name, local=self._local(), **self._objects())

    def _healthy(self) -> bool:
        """No update is being skipped right now and every weight is finite (the same answer on every rank)."""
        finite = self.trainer.guard.consecutive == 0 and all_finite(self.policy.parameters())
        return distributed.all_agree(finite)

    def _stop_nonfinite(self) -> TrainingError:
        """Set aside the checkpoints the last applied update may have broken; the error names what is left."""
        last_update = self.state.get("last_update")
        if last_update is None:  # no update was ever applied: the weights are the warm start's, still good
            good = self._save(force=True)
        else:
            good = distributed.from_main(lambda: set_aside_from(self.run_dir, last_update))
        return self.trainer.guard.error(str(self.run_dir), None if good is None else str(good))

    def _local(self) -> tuple[str, ...]:
        # what each rank holds for itself besides generators and RNG: the STM its own rows carry
        return ("carry",) if self.stage_run is not None else ()

    def _load(self, path: Path) -> dict[str, Any]:
        state = load_run_checkpoint(path, model=self.model, local=self._local(), **self._objects())
        state.pop("step", None)
        if self.stage_run is not None:  # a resume may have changed the learning rates (resume_changes.py)
            run = self.stage_run
            set_base_learning_rates(run.optimizer, run.scheduler, dataclasses.asdict(run.config.lr))
        self.trainer.guard.load_state_dict(state["guard"])
        return state

    # ---- training ----------------------------------------------------------------------------------------

    def _run_epoch(self) -> None:
        run, state = self.stage_run, self.state
        stage, epoch = run.config, state["epoch"]
        apply_unfreeze(self.model, stage.unfreeze.group_at(epoch))
        batches = self._epoch_batches(run.train_pool, stage, self.config.group_size(stage), run.index, epoch)
        if epoch == 0 and state["iteration"] == 0 and self.config.eval.before_stage:
            self._evaluate(run, 0)  # the baseline (it draws from no training generator: resume-safe)
        bar = self._bar(run, epoch, len(batches))
        try:
            while state["iteration"] < len(batches):
                metrics = self._iteration(run, batches[state["iteration"]], epoch)
                bar.update(1)
                loss = metrics.get("train/loss", float("nan"))
                bar.set_postfix(reward=f"{metrics['reward/mean']:.2f}", loss=f"{loss:.3f}")
                every = self.config.checkpoint.every_iterations
                if every and state["global_iteration"] % every == 0 and state["iteration"] < len(batches):
                    self._save()
        finally:
            bar.close()
        self._end_epoch(run, epoch)

    def _iteration(self, run: StageRun, episodes: list[Episode], epoch: int) -> dict[str, float]:
        began = time.process_time()  # CPU seconds of training: what an equal-compute control is given
        state, stage = self.state, run.config
        start, reset = None, None
        if stage.random_resets and epoch >= stage.reset_from_epoch and bool(run.carry.valid):
            start = run.carry.stm
            draws = torch.rand(stage.batch_size, generator=self.generators["memory"], device=self.device)
            reset = draws < stage.reset_prob
        data = stage.data
        env = make_env(episodes, self.tokenizer, self.env_reward, steps=stage.follow_ups,
                       seed=distributed.rank_seed(self.config.seed, "env", run.index, epoch, state["iteration"]),
                       max_query_len=data.max_query_len, max_answer_len=self._answer_len(stage),
                       max_interaction_len=self._interaction_len(stage),
                       reward_intermediate=stage.reward_intermediate)
        settings = RolloutSettings(max_new_tokens=stage.generation.max_new_tokens,
                                   sampling=stage.generation.sampling, compile=stage.generation.compile,
                                   teacher_forcing=stage.teacher_forcing,
                                   max_interaction_len=self._interaction_len(stage), final_write=stage.random_resets,
                                   branch=self.config.impo.branch)
        dmpo = stage.algorithm == "dmpo"
        if dmpo:
            settings = dmpo_rollout_settings(self.config.dmpo, settings)
        rollout = collect_rollout(
            self.policy, env, settings, pad_id=self.tokenizer.pad_id, eos_id=self.tokenizer.eos_id,
            start_stm=start, reset=reset, memory_generator=self.generators["memory"],
            sample_generator=self.generators["sample"], reference_model=None if dmpo else self.reference,
            autocast=self.autocast,
        )
        if rollout.final_stm is not None:
            run.carry.stm.copy_(rollout.final_stm.detach())
            run.carry.valid.fill_(True)
        metrics = rollout_metrics(rollout)
        trainer = self.dmpo if dmpo else self.trainer
        metrics.update(trainer.update(rollout, run.optimizer, self.generators["update"]))
        distributed.check_in_sync([*self.policy.parameters()], f"MRL iteration {state['global_iteration'] + 1}")
        with warnings.catch_warnings():
            # the schedule counts iterations, also those whose update was skipped (non-finite)
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            run.scheduler.step()
        metrics.update({"curriculum/stage": run.index + 1, "curriculum/steps": stage.follow_ups,
                        "curriculum/epoch": epoch + 1})
        for group in run.optimizer.param_groups:
            metrics[f"train/lr/{group['name']}"] = group["lr"]
        state["iteration"] += 1
        state["global_iteration"] += 1
        state["stage_train_s"] = state.get("stage_train_s", 0.0) + time.process_time() - began
        if state["global_iteration"] % self.config.log_every == 0:
            self.tracker.log(distributed.mean_metrics(metrics), state["global_iteration"])
        if self.trainer.guard.consecutive == 0 and metrics.get("train/optimizer_steps", 0) > 0:
            state["last_update"] = state["global_iteration"]  # the weights changed in this iteration
        if self.trainer.guard.exhausted:
            raise self._stop_nonfinite()
        return metrics

    def _evaluate(self, run: StageRun, epoch: int) -> float:
        """Score the held-out episodes; log `eval/...` at the current iteration; returns the mean reward.

        Distributed: rank 0 scores, every rank gets its metrics (the plateau decision must agree)."""
        stage, step = run.config, self.state["global_iteration"]
        metrics, samples = distributed.from_main(lambda: self._score_heldout(run, stage))
        metrics.update({"curriculum/stage": run.index + 1, "curriculum/steps": stage.follow_ups,
                        "curriculum/epoch": epoch})
        self.tracker.log(metrics, step)
        for i, sample in enumerate(samples):
            self.tracker.text(f"eval/sample_{i}", format_sample(sample), step)
        reward, gain = metrics["eval/reward/mean"], metrics.get("eval/memory_gain")
        self.state["history"].append({"stage": run.index + 1, "steps": stage.follow_ups, "epoch": epoch,
                                      "iteration": step, "eval_reward": reward, "memory_gain": gain,
                                      "train_s": round(self.state.get("stage_train_s", 0.0), 3)})
        if distributed.is_main():  # one line per evaluation, with or without the progress bar
            when = "before training" if epoch == 0 else f"epoch {epoch}"
            extra = f", memory gain {gain:+.3f}" if gain is not None else ""
            print(f"rxmrl: stage {run.index + 1}/{len(self.stages)} ({stage.label}) {when}: held-out reward "
                  f"{reward:.3f}{extra}", file=sys.stderr)
        return reward

    def _score_heldout(self, run: StageRun, stage: StageConfig) -> tuple[dict[str, float], list[Any]]:
        return evaluate_heldout(
            self.policy, run.eval_pool, self.tokenizer, self.reward, steps=stage.follow_ups,
            max_new_tokens=stage.generation.max_new_tokens, max_query_len=stage.data.max_query_len,
            max_answer_len=self._answer_len(stage), max_interaction_len=self._interaction_len(stage),
            batch_size=self.config.eval.batch_size, seed=derive_seed(self.config.seed, "eval", run.index),
            memory_ablation=self.config.eval.memory_ablation, keep_samples=self.config.eval.samples,
            autocast=self.autocast,
        )

    def _end_epoch(self, run: StageRun, epoch: int) -> None:
        state, stage = self.state, run.config
        reward = self._evaluate(run, epoch + 1)
        if self._stage_done(stage, epoch, reward):
            state.update(stage=run.index + 1, epoch=0, iteration=0, best_eval=None, bad_epochs=0, stage_train_s=0.0)
            # the next stage's fresh optimizer and carry go into the checkpoint, so a resume starts it cleanly
            self.stage_run = self._new_stage(run.index + 1) if run.index + 1 < len(self.stages) else None
        else:
            state.update(epoch=epoch + 1, iteration=0)
        self._save()

    def _stage_done(self, stage: StageConfig, epoch: int, reward: float) -> bool:
        epochs_run = epoch + 1
        plateau = stage.plateau
        if plateau is None:
            return epochs_run >= stage.max_epochs
        best = self.state["best_eval"]
        if best is None or reward > best + plateau.min_delta:
            self.state["best_eval"], self.state["bad_epochs"] = reward, 0
        else:
            self.state["bad_epochs"] += 1
        stalled = epochs_run >= plateau.min_epochs and self.state["bad_epochs"] >= plateau.patience
        return stalled or epochs_run >= plateau.max_epochs

    # ---- helpers -----------------------------------------------------------------------------------------

    def _epoch_batches(self, pool: list[Episode], stage: StageConfig, group: int, index: int,
                       epoch: int) -> list[list[Episode]]:
        """This rank's batches of an epoch."""
        return epoch_batches(pool, stage, group, self.config.seed, index, epoch, distributed.rank(),
                             distributed.world_size())

    def _answer_len(self, stage: StageConfig) -> int:
        # the environment keeps Ta - 1 answer tokens plus EOS: never cut what the policy generated
        return max(stage.data.max_answer_len, stage.generation.max_new_tokens + 1)

    def _interaction_len(self, stage: StageConfig) -> int:
        limit = self.model.config.max_seq_len
        return min(stage.data.max_interaction_len or limit, limit)

    def _bar(self, run: StageRun, epoch: int, total: int) -> Any:
        from tqdm.auto import tqdm

        desc = f"stage {run.index + 1}/{len(self.stages)} {run.config.label} ep {epoch + 1}"
        return tqdm(total=total, initial=self.state["iteration"], desc=desc, disable=not self.progress,
                    dynamic_ncols=True, leave=False)

    def _summary(self, state: dict[str, Any]) -> dict[str, Any]:
        history = state.get("history", [])
        return {"run_dir": str(self.run_dir), "iterations": state.get("global_iteration", 0),
                "nonfinite_skipped": state.get("guard", {}).get("total", 0), "history": history,
                "rewards_clipped": self.reward_filter.clipped,  # this process's, outside 0-10 (guard.py)
                "final": str(self.run_dir / FINAL)}


def resolved_run(run_dir: str | Path) -> CurriculumConfig:
    """The resolved curriculum of an existing run (for --resume)."""
    from rxmrl.recipes.curriculum_config import load_resolved

    config = load_resolved(run_dir)
    if not (Path(run_dir) / "tokenizer.json").is_file():
        raise ConfigError(f"{run_dir}: the run never got as far as its tokenizer; start it again instead of resuming")
    return config
