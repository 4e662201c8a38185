"""`run_warmstart` and `rxmrl warmstart`: stages chain, a finished stage is not retrained, errors are clear,
and (slow) a SIGKILLed CLI run resumes to bit-identical weights."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from rxmrl.cli import main
from rxmrl.config import from_dict
from rxmrl.data import train_tokenizer
from rxmrl.model import RxT, load_preset
from rxmrl.train.tracking import Tracker, read_metrics
from rxmrl.train.warmstart import WarmStartConfig, WarmStartData, build_stage, run_warmstart
from rxmrl.train.warmstart.data import tokenizer_corpus

TINY = ["vocab_size=300", "max_seq_len=128"]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(tokenizer_corpus(WarmStartData(), examples=60), 300)


def _model():
    torch.manual_seed(0)
    return RxT(load_preset("rxt-tiny", vocab_size=300, max_seq_len=128))


def _cfg(stage, **extra):
    return from_dict(WarmStartConfig, {"stage": stage, "steps": 2, "batch_size": 4, "log_every": 1,
                                       "data": {"examples": 8, "eval_examples": 4, "steps": 2}, **extra})


def test_stages_chain_share_the_mlm_head_and_skip_when_finished(tmp_path, tokenizer):
    model = _model()
    with Tracker(tmp_path) as tracker:
        joint = run_warmstart(_cfg("joint-lm"), model, tokenizer, tmp_path / "ws-0-joint-lm", seed=0,
                              tracker=tracker, progress=False)
    assert {"loss", "accuracy", "perplexity", "mlm_accuracy"} <= set(joint)
    rows = read_metrics(tmp_path)
    assert any("warmstart/joint-lm/train/loss" in r for r in rows)
    assert any("warmstart/joint-lm/eval/accuracy" in r for r in rows)

    # sft takes the joint-lm head from the stage folder it is given (a curriculum gives its earlier stages)
    head_state = torch.load(tmp_path / "ws-0-joint-lm" / "final" / "trainer_state.pt", weights_only=False)
    stage = build_stage(_cfg("sft"), model, tokenizer, [tmp_path / "ws-0-joint-lm"])
    for name, value in stage.head.state_dict().items():
        assert torch.equal(value, head_state["modules"]["mlm_head"][name])
    # ...and never from a folder nobody named, such as a sibling
    unnamed = build_stage(_cfg("sft"), model, tokenizer)
    assert not torch.equal(unnamed.head.state_dict()["dense.weight"], head_state["modules"]["mlm_head"]["dense.weight"])

    memory = run_warmstart(_cfg("memory-attention"), model, tokenizer, tmp_path / "ws-2-mem", seed=0, progress=False)
    smat = run_warmstart(_cfg("smat"), model, tokenizer, tmp_path / "ws-3-smat", seed=0, progress=False)
    for metrics in (memory, smat):
        assert {"loss", "accuracy", "perplexity", "accuracy_real_stm", "accuracy_reset_stm"} <= set(metrics)

    # finished: a fresh model gets the trained weights and the same metrics, without training
    fresh = _model()
    with torch.no_grad():
        for p in fresh.parameters():
            p.add_(1.0)
    again = run_warmstart(_cfg("smat"), fresh, tokenizer, tmp_path / "ws-3-smat", seed=0, progress=False)
    assert again == smat
    for a, b in zip(fresh.parameters(), model.parameters()):
        assert torch.equal(a, b)


def _write_config(path, **keys):
    lines = []
    for key, value in keys.items():
        lines.append(f"{key} = {json.dumps(value)}")
    lines.append("[data]\nexamples = 8\neval_examples = 4\nsteps = 2")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_runs_a_stage_then_the_next_from_its_folder(tmp_path, tokenizer, capsys):
    tokenizer.save(tmp_path / "tok.json")
    config = _write_config(tmp_path / "joint.toml", model="rxt-tiny", model_set=TINY,
                           tokenizer=str(tmp_path / "tok.json"), steps=2, batch_size=4)
    assert main(["warmstart", "joint-lm", "--config", str(config), "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    assert (tmp_path / "a" / "final" / "tokenizer.json").is_file()
    # the next stage starts from the folder, and takes its tokenizer from it
    config2 = _write_config(tmp_path / "sft.toml", model=str(tmp_path / "a" / "final"), steps=2, batch_size=4)
    assert main(["warmstart", "sft", "--config", str(config2), "--out", str(tmp_path / "b"), "--no-progress",
                 "--set", "lr=1e-4"]) == 0
    out = capsys.readouterr().out
    assert '"perplexity"' in out


def test_cli_errors_name_the_problem(tmp_path, capsys):
    config = _write_config(tmp_path / "c.toml", stage="sft", model="rxt-tiny", steps=2)
    assert main(["warmstart", "joint-lm", "--config", str(config), "--out", str(tmp_path / "x")]) == 2
    assert "for stage 'sft', not 'joint-lm'" in capsys.readouterr().err
    config = _write_config(tmp_path / "d.toml", model="rxt-tiny", stepz=2)
    assert main(["warmstart", "smat", "--config", str(config), "--out", str(tmp_path / "x")]) == 2
    assert "unknown key 'stepz' (did you mean 'steps'?)" in capsys.readouterr().err
    config = _write_config(tmp_path / "e.toml", model="rxt-tiny", steps=2, unfreeze_encoder_at=0.0)
    assert main(["warmstart", "smat", "--config", str(config), "--out", str(tmp_path / "x")]) == 2
    assert "unfreeze_encoder_at" in capsys.readouterr().err
    assert main(["warmstart", "smat", "--config", "no-such-preset", "--out", str(tmp_path / "x")]) == 2
    assert "no-such-preset" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_then_resume_gives_bit_identical_weights(tmp_path, tokenizer):
    tokenizer.save(tmp_path / "tok.json")
    config = _write_config(tmp_path / "joint.toml", model="rxt-tiny", model_set=TINY,
                           tokenizer=str(tmp_path / "tok.json"), steps=40, batch_size=4, save_every=5, keep=50)
    command = [sys.executable, "-m", "rxmrl", "warmstart", "joint-lm", "--config", str(config), "--no-progress",
               "--seed", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*command, "--out", str(tmp_path / "straight")], check=True, env=env, capture_output=True)

    proc = subprocess.Popen([*command, "--out", str(tmp_path / "killed")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not (checkpoints.is_dir() and len(list(checkpoints.glob("step-*"))) >= 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "final").exists(), "the run finished before it could be killed"
    subprocess.run([*command, "--out", str(tmp_path / "killed")], check=True, env=env, capture_output=True)

    straight = load_file(str(tmp_path / "straight" / "final" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "killed" / "final" / "model.safetensors"))
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
