"""End-to-end runs of a shrunken smoke curriculum: what a run writes, non-finite rewards, and exact resume
after a SIGKILL (subprocesses, compared tensor by tensor with an uninterrupted run)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rxmrl.errors import CheckpointError, TrainingError
from rxmrl.recipes.curriculum import run_curriculum
from rxmrl.recipes.curriculum_config import load_curriculum
from rxmrl.train.checkpoint import latest_checkpoint, load_checkpoint
from rxmrl.train.tracking import read_metrics

# The smoke curriculum, shrunk to seconds: no warm start, one epoch of 2 iterations per stage.
TINY = [
    "warmstart=[]",
    "tokenizer.train_episodes=60",
    "data.episodes=16",
    "data.eval_episodes=8",
    "stage.*.epochs=1",
    "stage.*.episodes_per_epoch=4",
    "stage.*.batch_size=8",
    "stage.*.generation.max_new_tokens=6",
    "eval.batch_size=8",
    "eval.samples=1",
]


def nan_reward_file(tmp_path: Path, always: bool, every_sample: bool = False) -> Path:
    """A reward plug-in: word overlap, but NaN for one sample (or all) of its first call (or of every call)."""
    path = tmp_path / "nan_reward.py"
    path.write_text(
        "import math\n"
        "calls = [0]\n"
        "def reward(batch):\n"
        "    calls[0] += 1\n"
        "    out = [float(len(set(g.split()) & set(r.split()))) for g, r in zip(batch.generated, batch.reference)]\n"
        f"    if {always} or calls[0] == 1:\n"
        f"        out[{':' if every_sample else '0'}] = {'[math.nan] * len(out)' if every_sample else 'math.nan'}\n"
        "    return out\n"
    )
    return path


def test_a_short_run_writes_checkpoints_metrics_and_the_final_model(tmp_path):
    config = load_curriculum("curricula/smoke.toml", TINY)
    summary = run_curriculum(config, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    final = run / "final"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "trainer_state.pt", "trainer_state.json"):
        assert (final / name).is_file(), name
    assert json.loads((final / "trainer_state.json").read_text())["finished"] is True
    assert (run / "curriculum.json").is_file() and (run / "tokenizer.json").is_file()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    names = set().union(*(row.keys() for row in read_metrics(run)))
    for metric in ("reward/mean", "reward/step_1/mean", "reward/step_2/mean", "reward/bleu/mean",
                   "reward/fact_recall/mean", "policy/clip_ratio", "policy/kl_step", "policy/entropy", "policy/loss",
                   "value/loss", "memory/stm_delta", "memory/loss", "curriculum/stage", "curriculum/steps",
                   "train/nonfinite_skipped", "eval/reward/mean", "eval/reward/step_2/mean", "eval/memory_gain"):
        assert metric in names, metric
    assert summary["iterations"] == 4  # 2 stages x 1 epoch x 2 iterations (8 rows = 2 episodes x group of 4)
    # a baseline before each stage and one evaluation after each epoch
    assert [(h["steps"], h["epoch"]) for h in summary["history"]] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    with pytest.raises(CheckpointError, match="already holds a run"):
        run_curriculum(config, run, progress=False)


def test_a_non_finite_reward_leaves_out_that_episode_and_the_run_goes_on(tmp_path):
    reward = nan_reward_file(tmp_path, always=False)
    config = load_curriculum("curricula/smoke.toml", TINY + ["eval.before_stage=false"])
    config.reward.spec, config.reward.composite = f"{reward}:reward", None
    summary = run_curriculum(config, tmp_path / "run", progress=False)
    assert summary["nonfinite_skipped"] == 0
    rows = [r for r in read_metrics(tmp_path / "run") if "train/nonfinite_skipped" in r]
    assert rows[0]["train/nonfinite_samples"] == 4.0  # the broken rollout's group of 4; the other group trains
    assert "train/update_skipped" not in rows[0] and "policy/loss" in rows[0]
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_repeated_non_finite_rewards_stop_with_a_usable_checkpoint(tmp_path):
    reward = nan_reward_file(tmp_path, always=True, every_sample=True)
    config = load_curriculum("curricula/smoke.toml", TINY + ["impo.max_consecutive_nonfinite=2"])
    config.reward.spec, config.reward.composite = f"{reward}:reward", None
    with pytest.raises(TrainingError, match="non-finite") as error:
        run_curriculum(config, tmp_path / "run", progress=False)
    checkpoint = latest_checkpoint(tmp_path / "run")
    assert checkpoint is not None and str(checkpoint) in str(error.value)
    state = load_checkpoint(checkpoint, restore_global_rng=False)
    assert state["guard"]["consecutive"] == 2


def _rxmrl(*args: str) -> list[str]:
    return [sys.executable, "-m", "rxmrl", "train", *args]


@pytest.mark.parametrize("algorithm", ["impo", "dmpo"])
def test_resume_after_sigkill_gives_bit_identical_weights(tmp_path, algorithm):
    # random resets on: the STM carried between iterations must be checkpointed too
    extra = ["checkpoint.every_iterations=1", "checkpoint.keep=10", "stage.*.random_resets=true",
             "stage.*.reset_prob=0.5", f"stage.*.algorithm={algorithm}"]
    overrides = [a for item in TINY + extra for a in ("--set", item)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_rxmrl("curricula/smoke.toml", "--out", str(straight), "--no-progress", *overrides), check=True,
                   env=env, capture_output=True, timeout=300)

    process = subprocess.Popen(_rxmrl("curricula/smoke.toml", "--out", str(killed), "--no-progress", *overrides),
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while latest_checkpoint(killed) is None and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert latest_checkpoint(killed) is not None
    assert not (killed / "final").exists(), "the run finished before it could be killed"
    subprocess.run(_rxmrl("--resume", str(killed), "--no-progress"), check=True, env=env, capture_output=True,
                   timeout=300)

    expected = load_file(str(straight / "final" / "model.safetensors"))
    actual = load_file(str(killed / "final" / "model.safetensors"))
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    critic = [torch.load(p / "final" / "trainer_state.pt", weights_only=False)["modules"]["critic"]
              for p in (straight, killed)]
    assert all(torch.equal(critic[0][k], critic[1][k]) for k in critic[0])
    resets = [r["memory/reset_fraction"] for r in read_metrics(straight) if "memory/reset_fraction" in r]
    assert resets[0] == 1.0 and min(resets) < 1.0  # later iterations carried some samples' memory on


def test_reference_kl_uses_a_frozen_copy_of_the_starting_model(tmp_path):
    config = load_curriculum("curricula/smoke.toml", TINY + ["impo.kl_ref_coef=0.1", "eval.before_stage=false",
                                                             "stage.*.lr.decoder=1e-2"])
    run_curriculum(config, tmp_path / "run", progress=False)
    reference = load_file(str(tmp_path / "run" / "reference" / "model.safetensors"))
    final = load_file(str(tmp_path / "run" / "final" / "model.safetensors"))
    assert any(not torch.equal(reference[k], final[k]) for k in reference)  # the policy moved, the reference not
    kl = [r["policy/kl_ref"] for r in read_metrics(tmp_path / "run") if "policy/kl_ref" in r]
    assert kl[0] == pytest.approx(0.0, abs=1e-5) and kl[-1] > kl[0]


def test_a_dmpo_stage_learns_from_preference_pairs_against_the_frozen_starting_model(tmp_path):
    config = load_curriculum("curricula/smoke.toml", TINY + ["stage.*.algorithm=dmpo", "eval.before_stage=false",
                                                             "stage.*.lr.decoder=1e-2", "dmpo.anchor_coef=0.1"])
    summary = run_curriculum(config, tmp_path / "run", progress=False)
    assert summary["iterations"] == 4  # as IMPO: 8 rows = 2 episodes x a group of 4 sampled answers
    reference = load_file(str(tmp_path / "run" / "reference" / "model.safetensors"))
    final = load_file(str(tmp_path / "run" / "final" / "model.safetensors"))
    assert any(not torch.equal(reference[k], final[k]) for k in reference)
    rows = [r for r in read_metrics(tmp_path / "run") if "dmpo/pairs" in r]
    assert len(rows) == 4 and not any("policy/clip_ratio" in r or "value/loss" in r for r in rows)
    trained = [r for r in rows if r["train/optimizer_steps"] > 0]
    assert trained and all(r["dmpo/pairs"] >= 1 for r in trained)
    # the first update starts from the reference itself: both log-ratios are exactly zero, the loss is log 2
    assert trained[0]["dmpo/accepted_logratio"] == pytest.approx(0.0, abs=1e-4)
    assert trained[0]["dmpo/loss"] == pytest.approx(0.6931, abs=1e-3)


def test_a_learning_rate_that_breaks_the_weights_names_the_checkpoint_before_it_and_a_resume_can_lower_it(tmp_path):
    from dataclasses import replace

    from rxmrl.cli import main
    from rxmrl.train.optim_config import LearningRates

    config = load_curriculum("curricula/smoke.toml", TINY + ["stage.0.steps=[1]", "eval.before_stage=false",
                                                             "checkpoint.every_iterations=1",
                                                             "impo.max_consecutive_nonfinite=3"])
    # a second stage whose decoder learning rate turns the weights into finite garbage on its first update
    config.stage.append(replace(config.stage[0], steps=[2], episodes_per_epoch=16,
                                lr=LearningRates(decoder=1e10)))
    run = tmp_path / "run"
    with pytest.raises(TrainingError, match="non-finite") as error:
        run_curriculum(config, run, progress=False)
    # iteration 3 applied the 1e10 update; 4-6 were skipped: the good state is the one before iteration 3
    good = run / "checkpoints" / "step-00000002"
    assert f"The last good state is {good}" in str(error.value)
    assert latest_checkpoint(run) == good
    assert (run / "checkpoints" / "set-aside-step-00000003").is_dir()  # kept, never resumed from

    assert main(["train", "--resume", str(run), "--set", "stage.1.lr.decoder=1e-5", "--no-progress"]) == 0
    assert json.loads((run / "curriculum.json").read_text())["stage"][1]["lr"]["decoder"] == 1e-5
    lrs = [r["train/lr/decoder"] for r in read_metrics(run) if r.get("curriculum/stage") == 2 and
           "train/lr/decoder" in r]
    assert lrs[-1] <= 1e-5
    weights = load_file(str(run / "final" / "model.safetensors"))
    assert all(bool(torch.isfinite(t).all()) and float(t.abs().max()) < 1e3 for t in weights.values())
