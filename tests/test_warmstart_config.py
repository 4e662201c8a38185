"""Stage configs: the shipped stage files parse, rules are checked with clear messages, curricula get the
stage settings without the standalone keys."""

from pathlib import Path

import pytest

from rxmrl.config import from_dict, load, to_dict
from rxmrl.errors import ConfigError
from rxmrl.train.warmstart import StandaloneWarmStartConfig, WarmStartConfig

STAGE_FILES = sorted((Path(__file__).resolve().parents[1] / "curricula" / "warmstart").glob("*.toml"))


def test_the_four_shipped_stage_files_parse_and_name_their_stage():
    assert [p.stem for p in STAGE_FILES] == ["joint-lm", "memory-attention", "sft", "smat"]
    for path in STAGE_FILES:
        config = load(StandaloneWarmStartConfig, path)
        assert config.stage == path.stem
        assert config.data.source == "synthetic"
    smat = load(StandaloneWarmStartConfig, STAGE_FILES[-1], ["steps=10", "bptt_depth=2"])
    assert (smat.steps, smat.bptt_depth) == (10, 2)


def test_curriculum_table_round_trips_and_standalone_keys_are_dropped():
    standalone = from_dict(StandaloneWarmStartConfig, {"stage": "smat", "steps": 5, "model": "x", "data": {"steps": 2}})
    config = standalone.warmstart()
    assert type(config) is WarmStartConfig and config.data.steps == 2
    assert from_dict(WarmStartConfig, to_dict(config)) == config
    with pytest.raises(ConfigError, match="unknown key 'model'"):
        from_dict(WarmStartConfig, {"stage": "smat", "steps": 5, "model": "x"})


@pytest.mark.parametrize("data, message", [
    ({"stage": "smat"}, "missing required key 'steps'"),
    ({"stage": "rl", "steps": 1}, "'stage' must be one of"),
    ({"stage": "smat", "steps": 0}, "steps: must be at least 1"),
    ({"stage": "smat", "steps": 5, "unfreeze_memory_attention_at": 0.5, "unfreeze_encoder_at": 0.2},
     "unfreeze_encoder_at: the encoder unfreezes after memory attention"),
    ({"stage": "sft", "steps": 5, "mlm_probability": 1.5}, "mlm_probability: must be between 0 and 1"),
    ({"stage": "smat", "steps": 5, "data": {"strategy": "single", "steps": 3}}, "data.steps: strategy 'single'"),
    ({"stage": "smat", "steps": 5, "data": {"strategy": "sideways"}}, "data.strategy: must be one of"),
    ({"stage": "smat", "steps": 5, "data": {"eval_examples": 0}}, "data.eval_examples"),
])
def test_invalid_settings_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(WarmStartConfig, data, source="stage.toml")


def test_loop_settings_follow_the_stage():
    loop = from_dict(WarmStartConfig, {"stage": "sft", "steps": 200, "warmup_ratio": 0.1, "grad_accum": 2}).loop_config()
    assert (loop.steps, loop.warmup_steps, loop.grad_accum) == (200, 20, 2)
