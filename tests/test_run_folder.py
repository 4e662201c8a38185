"""A run folder is held by one run at a time, and continues only the run it records (paths made absolute)."""

import json

import pytest

from rxmrl.cli import main
from rxmrl.errors import ConfigError, OutputError
from rxmrl.recipes.curriculum_config import load_curriculum, start_resolved
from rxmrl.train.run_folder import absolute_paths, first_difference, run_lock


def test_a_second_run_on_a_held_folder_is_refused(tmp_path, capsys):
    with run_lock(tmp_path / "run"):
        assert main(["train", "smoke", "--out", str(tmp_path / "run"), "--no-progress"]) == 2
        assert "another rxmrl run is using this folder" in capsys.readouterr().err
        assert main(["warmstart", "joint-lm", "--config", "joint-lm", "--out", str(tmp_path / "run"),
                     "--no-progress"]) == 2
        assert "another rxmrl run is using this folder" in capsys.readouterr().err
        with pytest.raises(OutputError):
            with run_lock(tmp_path / "run"):
                pass
    with run_lock(tmp_path / "run"):  # released when the holder is done
        pass


def test_a_restart_with_other_settings_is_refused_but_learning_rates_may_change(tmp_path):
    run = tmp_path / "run"
    start_resolved(load_curriculum("curricula/smoke.toml"), run)  # a run killed before its first checkpoint
    with pytest.raises(ConfigError, match=r"other settings \(tokenizer.vocab_size: 700 -> 800\)"):
        start_resolved(load_curriculum("curricula/smoke.toml", ["tokenizer.vocab_size=800"]), run)
    with pytest.raises(ConfigError, match=r"warmstart\[0\].steps: 120 -> 5"):
        start_resolved(load_curriculum("curricula/smoke.toml", ["warmstart.0.steps=5"]), run)
    assert json.loads((run / "curriculum.json").read_text())["tokenizer"]["vocab_size"] == 700  # record unchanged
    start_resolved(load_curriculum("curricula/smoke.toml", ["stage.0.lr.decoder=1e-5", "threads=2"]), run)
    assert json.loads((run / "curriculum.json").read_text())["stage"][0]["lr"]["decoder"] == 1e-5


def test_relative_paths_are_recorded_absolute(tmp_path, monkeypatch):
    (tmp_path / "tok.json").write_text("{}")
    (tmp_path / "plugin.py").write_text("")
    monkeypatch.chdir(tmp_path)
    config = start_resolved(load_curriculum(str(_smoke()), ["tokenizer.path='tok.json'"]), tmp_path / "run")
    assert config.tokenizer.path == str(tmp_path / "tok.json")
    recorded = json.loads((tmp_path / "run" / "curriculum.json").read_text())
    assert recorded["tokenizer"]["path"] == str(tmp_path / "tok.json")
    assert recorded["model"]["name"] == "rxt-tiny" and recorded["data"]["source"] == "synthetic"  # names stay
    spec = absolute_paths({"reward": {"spec": "plugin.py:score"}})["reward"]["spec"]
    assert spec == f"{tmp_path / 'plugin.py'}:score"


def test_first_difference_names_the_key():
    assert first_difference({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}}) == "a.b[1]: 2 -> 3"
    assert first_difference({"a": 1}, {"a": 1}) is None
    assert absolute_paths({"source": "synthetic", "name": "x"}) == {"source": "synthetic", "name": "x"}


def test_built_in_choices_stay_names_whatever_the_working_directory_holds(tmp_path, monkeypatch):
    # a resolved config records them even where the file left them out (warm-start tables, inline composites)
    for name in ("synthetic", "auto", "all-MiniLM-L6-v2"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    config = {"data": {"source": "synthetic"}, "mlm_head_from": "auto", "similarity": {"model": "all-MiniLM-L6-v2"}}
    assert absolute_paths(config) == config


def _smoke():
    from rxmrl.catalog import find_preset

    return find_preset("curricula", "smoke").resolve()


def test_a_warm_start_folder_continues_only_its_own_stage_settings(tmp_path):
    from rxmrl.cli.warmstart import load_stage_config, record_stage

    record_stage(load_stage_config("joint-lm", "joint-lm", []), 0, tmp_path, write=True)
    record_stage(load_stage_config("joint-lm", "joint-lm", []), 0, tmp_path, write=True)  # the same: fine
    with pytest.raises(ConfigError, match=r"config.steps: \d+ -> 3"):
        record_stage(load_stage_config("joint-lm", "joint-lm", ["steps=3"]), 0, tmp_path, write=True)
    with pytest.raises(ConfigError, match="seed: 0 -> 1"):
        record_stage(load_stage_config("joint-lm", "joint-lm", []), 1, tmp_path, write=True)
