"""Hostile or broken input ends in a one-line error (exit status 2), never a traceback, a hang or a crash."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from rxmrl.cli import main
from rxmrl.errors import ConfigError, RewardError

TINY = ["--set", "vocab_size=300", "--set", "max_seq_len=32"]


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("rxmrl: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def model_dir(tmp_path):
    assert main(["model", "init", "rxt-tiny", "--out", str(tmp_path / "m"), *TINY]) == 0
    return tmp_path / "m"


@pytest.mark.parametrize("argv, needle", [
    (["model", "generate", "rxt-tiny", "--threads", "-1"], "--threads"),
    (["model", "generate", "rxt-tiny", "--temperature", "-1"], "--temperature"),
    (["model", "generate", "rxt-tiny", "--temperature", "nan"], "--temperature"),
    (["model", "generate", "rxt-tiny", "--top-p", "0"], "--top-p"),
    (["train", "smoke", "--out", "never-made", "--threads", "-1"], "--threads"),
    (["model", "init", "rxt-tiny", "--out", "never-made", "--set", "vocab_size=10000000000"], "GiB"),
])
def test_bad_numbers_are_one_line_errors(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    _one_line_error(capsys, needle)
    assert not (tmp_path / "never-made").exists()


def test_a_truncated_weights_file_is_a_clear_error(model_dir, capsys):
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert main(["model", "generate", str(model_dir), "--new-tokens", "2"]) == 2
    _one_line_error(capsys, "truncated or corrupt")


def test_weights_with_nan_are_refused(model_dir, capsys):
    state = load_file(str(model_dir / "model.safetensors"))
    name = next(iter(state))
    state[name][0] = math.nan
    save_file(state, str(model_dir / "model.safetensors"))
    assert main(["model", "generate", str(model_dir), "--new-tokens", "2"]) == 2
    _one_line_error(capsys, "NaN", name)


def test_a_prompt_longer_than_the_context_is_refused(model_dir, tmp_path, capsys):
    from rxmrl.data import train_tokenizer

    train_tokenizer(["Lily had a red kite."] * 20, 300).save(tmp_path / "tok.json")
    assert main(["model", "generate", str(model_dir), "--tokenizer", str(tmp_path / "tok.json"),
                 "--prompt", "word " * 200]) == 2
    _one_line_error(capsys, "--prompt", "context")


def test_non_utf8_data_is_a_bad_row_not_a_crash(tmp_path, capsys):
    good = {"query": "q", "answer": "a", "interactions": [{"query": "q2", "answer": "a2"}]}
    (tmp_path / "d.jsonl").write_bytes(json.dumps(good).encode() + b"\n\xff\xfe bad bytes\n")
    assert main(["data", "check", str(tmp_path / "d.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "not UTF-8" in err and "Traceback" not in err


def test_non_utf8_cases_and_config_files_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "cases.jsonl").write_bytes(b"\xff\xfe{}\n")
    assert main(["reward", "score", "--spec", "fact-recall", "--cases", str(tmp_path / "cases.jsonl")]) == 2
    _one_line_error(capsys, "not UTF-8")
    (tmp_path / "c.toml").write_bytes(b'name = "\xff"\n')
    assert main(["train", str(tmp_path / "c.toml"), "--out", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, "invalid TOML")


def test_a_plugin_that_calls_sys_exit_is_reported(tmp_path):
    from rxmrl.reward import get_reward
    from rxmrl.reward.base import RewardBatch

    (tmp_path / "exits.py").write_text("import sys\ndef reward(batch):\n    sys.exit(3)\n")
    reward = get_reward(f"{tmp_path / 'exits.py'}:reward")
    with pytest.raises(RewardError, match=r"called sys.exit\(3\)"):
        reward(RewardBatch(query=["q"], generated=["a"], reference=["r"], remember=[[]]))
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(1)\n")
    with pytest.raises(RewardError, match="failed to load: SystemExit"):
        get_reward(str(tmp_path / "exits_on_import.py"))


def test_rewards_outside_the_scale_are_clipped_counted_and_named():
    from rxmrl.reward.base import RewardBatch
    from rxmrl.train.guard import tolerant_reward

    def loud(batch):
        return [50.0, 5.0, -3.0]

    env_reward, counted = tolerant_reward(loud, "loud")
    batch = RewardBatch(query=["q"] * 3, generated=["a"] * 3, reference=["r"] * 3, remember=[[]] * 3)
    with pytest.warns(UserWarning, match=r"reward 'loud' returned 2 of 3 totals outside 0-10 \(min -3, max 50\)"):
        out = env_reward(batch)
    assert out.total.tolist() == [10.0, 5.0, 0.0] and counted.clipped == 2


def test_a_reward_spec_beside_an_inline_composite_is_ambiguous():
    from rxmrl.recipes.curriculum_config import load_curriculum

    with pytest.raises(ConfigError, match=r"both spec = 'mrl-composite' and an inline \[reward.composite\]"):
        load_curriculum("curricula/smoke.toml", ["reward.spec=mrl-composite"])


def test_a_missing_local_path_is_never_looked_up_on_the_hub(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("looked up on the Hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for name in ("runs/typo", "./runs/typo", str(tmp_path / "nowhere" / "x")):
        assert main(["model", "generate", name]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "rxmrl: error:" in err
    from rxmrl.data.tokenizer import Tokenizer
    from rxmrl.errors import DataError

    with pytest.raises(DataError, match="no such tokenizer file"):
        Tokenizer.from_pretrained("runs/tok")


def test_reward_score_names_totals_outside_the_scale(tmp_path, capsys):
    (tmp_path / "loud.py").write_text("def reward(batch):\n    return [50.0] * len(batch.generated)\n")
    case = {"query": "q", "generated": "a", "reference": "r", "remember": []}
    (tmp_path / "cases.jsonl").write_text(json.dumps(case) + "\n")
    assert main(["reward", "score", "--spec", f"{tmp_path / 'loud.py'}:reward", "--cases",
                 str(tmp_path / "cases.jsonl"), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["total"] == 50.0
    assert "1 of 1 totals outside the 0-10 scale (cases 1)" in captured.err
