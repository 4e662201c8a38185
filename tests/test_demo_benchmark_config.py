"""The `[benchmark]` table of a curriculum (parsing, errors, derived limits), the demo and GPU curricula, and the
final benchmark's skipping of what a killed run already wrote."""

import json

import pytest

from rxmrl.errors import ConfigError
from rxmrl.model import load_preset
from rxmrl.recipes.curriculum_config import curriculum_from_dict, load_curriculum
from rxmrl.recipes.final_benchmark import (
    benchmark_limits, check_benchmark_packages, run_final_benchmark, summary_table,
)
from rxmrl.recipes.setup import check_lengths


def minimal(**benchmark):
    raw = {"stage": [{"steps": [1, 4], "data": {"max_query_len": 20, "max_answer_len": 10},
                      "generation": {"max_new_tokens": 12}}]}
    if benchmark is not None:
        raw["benchmark"] = benchmark
    return raw


def test_no_benchmark_table_means_no_benchmark():
    raw = minimal()
    del raw["benchmark"]
    assert curriculum_from_dict(raw, source="t.toml").benchmark is None


def test_an_empty_table_gives_the_documented_defaults():
    bench = curriculum_from_dict(minimal(), source="t.toml").benchmark
    assert (bench.episodes, bench.steps, bench.strategy, bench.split) == (64, 8, "cumulative", "test")
    assert bench.reward is None and bench.greedy and bench.warmstart_only and bench.stateless
    assert bench.baseline.steps == 200  # BaselineTraining's default


def test_baseline_settings_are_read_from_the_sub_table():
    bench = curriculum_from_dict(minimal(baseline={"steps": 7, "learning_rate": 2e-3}), source="t.toml").benchmark
    assert (bench.baseline.steps, bench.baseline.learning_rate, bench.baseline.batch_size) == (7, 2e-3, 8)


@pytest.mark.parametrize("table, words", [
    ({"steps": 0}, ["t.toml", "benchmark.", "steps", "at least 1"]),
    ({"strategy": "random"}, ["benchmark.", "strategy", "random"]),
    ({"strategy": "single", "steps": 3}, ["benchmark.", "exactly 1 follow-up"]),
    ({"episods": 3}, ["t.toml", "episods"]),
    ({"baseline": {"steps": 0}}, ["benchmark.", "baseline.steps", "at least 1"]),
    ({"baseline": {"loss_on": "everything"}}, ["baseline.loss_on"]),
    ({"max_answer_len": -1}, ["benchmark.", "max_answer_len"]),
])
def test_bad_benchmark_settings_name_the_key(table, words):
    with pytest.raises(ConfigError) as info:
        curriculum_from_dict(minimal(**table), source="t.toml")
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_limits_default_to_the_last_stage_and_can_be_set():
    config = curriculum_from_dict(minimal(), source="t.toml")
    # answer budget = max(max_answer_len 10, max_new_tokens 12 + 1), as MRL training used
    assert benchmark_limits(config) == {"max_query_len": 20, "max_answer_len": 13, "max_new_tokens": 12}
    config = curriculum_from_dict(minimal(max_query_len=30, max_new_tokens=5), source="t.toml")
    assert benchmark_limits(config) == {"max_query_len": 30, "max_answer_len": 10, "max_new_tokens": 5}


def test_the_cpu_demo_curriculum_is_the_whole_pipeline_on_the_small_preset():
    config = load_curriculum("curricula/cpu-demo.toml")
    assert config.model.name == "rxt-cpu-small"
    stages = [t.stage for t in config.warmstart]
    assert stages[:4] == ["joint-lm", "sft", "memory-attention", "smat"] and set(stages[4:]) <= {"smat"}
    last = config.expanded_stages()[-1]
    assert (last.follow_ups, last.episode_strategy) == (16, "long_range")  # the seed cards' end point
    assert config.benchmark is not None and config.benchmark.steps == 8 and config.benchmark.split == "test"
    assert config.benchmark.long_range_steps == 16
    assert config.benchmark.warmstart_only and config.benchmark.stateless
    check_lengths(config, load_preset(config.model.name).max_seq_len)


def test_the_gpu_recipe_loads_and_fits_its_preset():
    config = load_curriculum("curricula/micro-gpu.toml")
    assert config.model.name == "rxt-alpha-micro-plus" and config.device == "auto"
    assert [t.stage for t in config.warmstart] == ["joint-lm", "sft", "memory-attention", "smat", "smat"]
    last = config.expanded_stages()[-1]
    assert (last.follow_ups, last.episode_strategy) == (16, "long_range")
    check_lengths(config, load_preset(config.model.name).max_seq_len)


RESULTS = {
    "rxt": {"mean": 2.5, "max": 4.0, "min": 1.0, "per_step": [3.0, 2.0], "fact_recall": 0.25,
            "per_step_fact_recall": [0.5, 0.0]},
    "stateless": {"mean": 1.0, "max": 1.0, "min": 1.0, "per_step": [1.0, None], "fact_recall": None,
                  "per_step_fact_recall": []},
    "settings": {"steps": 2},
}


def test_summary_table_has_one_row_per_system():
    assert summary_table(RESULTS).splitlines()[2:] == [
        "| rxt | 2.500 | 0.250 | 3.00 2.00 |",
        "| stateless | 1.000 | n/a | 1.00 - |",
    ]


def test_existing_results_are_not_measured_again(tmp_path):
    # a run killed after writing retention.json: no model folder exists, so measuring again would fail
    config = curriculum_from_dict(minimal(), source="t.toml")
    out = tmp_path / "benchmark"
    out.mkdir()
    (out / "retention.json").write_text(json.dumps(RESULTS))
    results = run_final_benchmark(config, tmp_path, reward=None, progress=False)
    assert results == RESULTS
    assert (out / "retention.png").stat().st_size > 0
    assert (out / "summary.md").read_text() == summary_table(RESULTS)


def test_long_range_results_join_the_summary_and_are_not_measured_again(tmp_path):
    config = curriculum_from_dict(minimal(long_range_steps=16), source="t.toml")
    out = tmp_path / "benchmark"
    out.mkdir()
    (out / "retention.json").write_text(json.dumps(RESULTS))
    long_range = {"rxt": {**RESULTS["rxt"], "mean": 0.5}}
    (out / "retention-long_range-16.json").write_text(json.dumps(long_range))
    run_final_benchmark(config, tmp_path, reward=None, progress=False)
    summary = (out / "summary.md").read_text()
    assert summary.startswith(summary_table(RESULTS))
    assert "Long-range episodes (16 follow-ups" in summary and summary.endswith(summary_table(long_range))


def test_long_range_steps_need_two_follow_ups():
    with pytest.raises(ConfigError, match="long_range_steps"):
        curriculum_from_dict(minimal(long_range_steps=1), source="t.toml")



@pytest.mark.parametrize(("absent", "stateless", "extra"), [("trl", True, "baseline"), ("matplotlib", False, "plot")])
def test_a_missing_benchmark_package_fails_before_training(monkeypatch, absent, stateless, extra):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == absent else real_find_spec(name, *a))
    config = curriculum_from_dict(minimal(stateless=stateless), source="t.toml")
    with pytest.raises(ConfigError, match=rf"needs {absent}.*rxmrl\[{extra}\]"):
        check_benchmark_packages(config)
    # without a [benchmark] table nothing is needed
    raw = minimal()
    del raw["benchmark"]
    check_benchmark_packages(curriculum_from_dict(raw, source="t.toml"))


def test_stateless_off_does_not_need_trl(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trl" else real_find_spec(name, *a))
    check_benchmark_packages(curriculum_from_dict(minimal(stateless=False), source="t.toml"))
