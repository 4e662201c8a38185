"""The smoke curriculum under `torchrun --nproc_per_node 2` (gloo on CPU), shrunk to seconds: the weights agree
on both ranks after every update (RXMRL_CHECK_SYNC), only rank 0 writes, and a run resumed from one of its
checkpoints (the state a kill right after that checkpoint leaves) ends bit-identical to the uninterrupted run,
which needs every rank's generators, RNG and carried STM back. A single process refuses to resume it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from test_distributed_ops import _free_port

from rxmrl.train.checkpoint import list_checkpoints
from rxmrl.train.tracking import METRICS_FILE

WARMSTART_STEPS = 6
SMALL = [
    f"warmstart.0.steps={WARMSTART_STEPS}",
    "warmstart.0.save_every=3",
    "warmstart.0.data.examples=64",
    "tokenizer.train_episodes=60",
    "data.episodes=16",
    "data.eval_episodes=8",
    "stage.*.epochs=1",
    "stage.*.episodes_per_epoch=8",  # 4 batches of 2 episodes x 4 rollouts: 2 per rank
    "stage.*.batch_size=8",
    "stage.*.generation.max_new_tokens=6",
    "stage.*.random_resets=true",  # the STM each rank carries between iterations must be checkpointed too
    "stage.*.reset_prob=0.5",
    "eval.batch_size=8",
    "eval.samples=1",
    "checkpoint.every_iterations=1",
    "checkpoint.keep=20",
]
MRL_ITERATIONS = 4  # 2 stages x 2 iterations per rank


def _torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               "-m", "rxmrl", "train", *args, "--no-progress"]
    env = {**os.environ, "RXMRL_CHECK_SYNC": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _straight_run(tmp_path: Path) -> tuple[Path, str]:
    run = tmp_path / "straight"
    result = _torchrun("curricula/smoke.toml", "--out", str(run), *[a for s in SMALL for a in ("--set", s)])
    return run, result.stderr


def _rolled_back(run: Path, target: Path, keep_until: Path | None, remove: list[str]) -> Path:
    """A copy of `run` as a kill right after checkpoint `keep_until` would have left it."""
    shutil.copytree(run, target)
    for checkpoint in list_checkpoints(target):
        if keep_until is None or int(checkpoint.name.split("-")[1]) > int(keep_until.name.split("-")[1]):
            shutil.rmtree(checkpoint)
    for name in ["final", *remove]:
        shutil.rmtree(target / name, ignore_errors=True)
    return target


def _assert_same_final(expected_run: Path, actual_run: Path) -> None:
    expected = load_file(str(expected_run / "final" / "model.safetensors"))
    actual = load_file(str(actual_run / "final" / "model.safetensors"))
    assert expected.keys() == actual.keys()
    different = [k for k in expected if not expected[k].equal(actual[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_two_ranks_stay_in_step_rank0_writes_and_resume_is_exact(tmp_path):
    run, stderr = _straight_run(tmp_path)
    # the sync check ran after every warm-start step and every MRL update, and found both ranks identical
    assert f"weights identical on all 2 ranks at {WARMSTART_STEPS + MRL_ITERATIONS} checks" in stderr

    # rank 0 alone writes: one TensorBoard file, one row per logged (step, metrics) in metrics.jsonl, one
    # message per evaluation (2 stages x before + after)
    assert len(list((run / "tensorboard").iterdir())) == 1
    rows = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]
    keys = [(row["step"], tuple(sorted(row))) for row in rows]
    assert len(keys) == len(set(keys))
    assert stderr.count("held-out reward") == 4
    checkpoints = list_checkpoints(run)
    assert [c.name for c in checkpoints][-1] == f"step-{MRL_ITERATIONS:08d}"
    for checkpoint in checkpoints:
        assert sorted(p.name for p in (checkpoint / "ranks").iterdir()) == ["rank-0.pt", "rank-1.pt"]
        assert json.loads((checkpoint / "trainer_state.json").read_text())["global_iteration"] <= MRL_ITERATIONS

    # killed right after the first MRL checkpoint: resume under torchrun ends bit-identical
    resumed = _rolled_back(run, tmp_path / "resumed", checkpoints[0], [])
    result = _torchrun("--resume", str(resumed))
    assert "before training" not in result.stderr.split("stage 2/2")[0]  # stage 1 continued, not restarted
    _assert_same_final(run, resumed)

    # a world size change is refused with the launch command to use
    again = _rolled_back(run, tmp_path / "again", checkpoints[0], [])
    single = subprocess.run([sys.executable, "-m", "rxmrl", "train", "--resume", str(again), "--no-progress"],
                            capture_output=True, text=True, timeout=300)
    assert single.returncode != 0
    assert "written by a run of 2 process(es), resumed with 1" in single.stderr
    assert "--nproc_per_node 2" in single.stderr


def test_dmpo_stages_stay_in_step_on_two_ranks(tmp_path):
    # ranks hold different numbers of preference pairs (some none): they must still step together
    overrides = SMALL + ["stage.*.algorithm=dmpo", "dmpo.minibatch_size=0"]
    result = _torchrun("curricula/smoke.toml", "--out", str(tmp_path / "run"), *[a for s in overrides for a in ("--set", s)])
    assert f"weights identical on all 2 ranks at {WARMSTART_STEPS + MRL_ITERATIONS} checks" in result.stderr
    rows = [json.loads(line) for line in (tmp_path / "run" / METRICS_FILE).read_text().splitlines()]
    assert sum("dmpo/pairs" in row for row in rows) == MRL_ITERATIONS


@pytest.mark.slow
def test_resume_inside_the_distributed_warm_start_is_exact(tmp_path):
    run, _ = _straight_run(tmp_path)
    resumed = tmp_path / "resumed"
    _rolled_back(run, resumed, None, ["warmstart-0-smat/final", "reference"])
    warm = list_checkpoints(resumed / "warmstart-0-smat")
    assert [c.name for c in warm] == ["step-00000003"]  # a kill between the warm start's checkpoints
    _torchrun("--resume", str(resumed))
    _assert_same_final(run, resumed)


@pytest.mark.slow
def test_accelerate_launch_trains_the_same_as_torchrun(tmp_path):
    pytest.importorskip("accelerate")
    run, _ = _straight_run(tmp_path)
    # `--multi_gpu` picks accelerate's torchrun launcher; on a CPU-only machine the ranks then use gloo
    # through this interpreter, so the test needs no `accelerate` script on PATH
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()), "-m", "rxmrl",
               "train", "curricula/smoke.toml", "--out", str(tmp_path / "accelerate"), "--no-progress",
               *[a for s in SMALL for a in ("--set", s)]]
    env = {**os.environ, "RXMRL_CHECK_SYNC": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "weights identical on all 2 ranks" in result.stderr
    _assert_same_final(run, tmp_path / "accelerate")


@pytest.mark.slow
def test_standalone_warm_start_with_moe_stays_in_step_and_resumes_exactly(tmp_path):
    # rxt-tiny routes each token to 2 of 4 experts: some experts get no gradient on one rank
    args = ["joint-lm", "--config", "joint-lm", "--set", "steps=6", "--set", "save_every=3",
            "--set", "model=rxt-tiny",
            "--set", 'model_set=["vocab_size=400", "max_seq_len=128"]', "--set", "tokenizer_vocab_size=400",
            "--set", "data.examples=64", "--set", "data.eval_examples=16", "--set", "batch_size=4",
            "--threads", "1", "--device", "cpu", "--no-progress"]
    env = {**os.environ, "RXMRL_CHECK_SYNC": "1", "OMP_NUM_THREADS": "1"}

    def warmstart(out: Path) -> str:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                   "rxmrl", "warmstart", *args, "--out", str(out)]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-4000:]
        return result.stderr

    assert "weights identical on all 2 ranks at 6 checks" in warmstart(tmp_path / "straight")
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "final")  # killed after the step-3 checkpoint
    assert "at 3 checks" in warmstart(tmp_path / "resumed")
    _assert_same_final(tmp_path / "straight", tmp_path / "resumed")
