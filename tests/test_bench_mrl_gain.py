"""The MRL gain benchmark: its statistics by hand, the equal-compute control's settings, and one tiny end-to-end
run that is then continued (nothing redone) and refused with other settings."""

import json
import math

import pytest

from rxmrl.bench.stats import mean_ci, t_quantile_975
from rxmrl.errors import ConfigError
from rxmrl.recipes.curriculum import run_curriculum
from rxmrl.recipes.curriculum_config import load_curriculum
from rxmrl.recipes.mrl_gain import MrlGain, gain_report, stage_seconds, summary_table, system_metrics

TINY = [
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


def test_mean_ci_uses_student_t_over_seeds():
    result = mean_ci([1.0, 2.0, 3.0])
    assert result["mean"] == 2.0 and result["std"] == pytest.approx(1.0)
    half = 4.303 / math.sqrt(3)  # t_{0.975, 2} * s / sqrt(n)
    assert result["ci95"] == pytest.approx([2.0 - half, 2.0 + half])
    assert mean_ci([5.0])["ci95"] is None
    assert t_quantile_975(1) == 12.706 and t_quantile_975(100) == 1.96
    with pytest.raises(ValueError):
        mean_ci([])


def _summary(mean, recall, per_step):
    return {"mean": mean, "fact_recall": recall, "per_step": per_step, "per_step_fact_recall": [recall] * len(per_step)}


def test_gain_report_pairs_each_seed_with_its_control_and_the_one_warm_start():
    def system(mean, last):
        entry = {"memory": _summary(mean, mean / 10, [mean, last]), "memory_reset": _summary(1.0, 0.0, [1.0, 1.0])}
        return {"cumulative-8": entry, "long_range-16": entry}

    results = {"warmstart": system(5.0, 1.0), "mrl-0": system(6.0, 2.0), "mrl-1": system(7.0, 4.0),
               "control-0": system(5.5, 1.0), "control-1": system(5.5, 1.0)}
    report = gain_report(results, [0, 1], control=True)
    gains = report["gains"]["cumulative-8"]
    assert gains["mrl-warmstart"]["mean"]["values"] == pytest.approx([1.0, 2.0])
    assert gains["mrl-warmstart"]["last_step"]["values"] == pytest.approx([1.0, 3.0])
    assert gains["mrl-control"]["mean"]["values"] == pytest.approx([0.5, 1.5])
    assert gains["control-warmstart"]["fact_recall"]["values"] == pytest.approx([0.05, 0.05])
    half = 12.706 * math.sqrt(0.5) / math.sqrt(2)  # two seeds: df 1, sample std of [1, 2] is sqrt(0.5)
    assert gains["mrl-warmstart"]["mean"]["ci95"] == pytest.approx([1.5 - half, 1.5 + half])
    assert report["systems"]["cumulative-8"]["mrl (mean over seeds)"]["memory"]["mean"]["mean"] == 6.5
    table = summary_table(report)
    assert "| mrl-warmstart | +1.500 [" in table and "| warmstart, memory reset |" in table
    assert "warnings" not in report  # the control is above the warm start


def test_a_control_below_the_warm_start_is_flagged():
    def system(mean):
        entry = {"memory": _summary(mean, mean / 10, [mean]), "memory_reset": _summary(1.0, 0.0, [1.0])}
        return {"cumulative-8": entry, "long_range-16": entry}

    results = {"warmstart": system(5.0), "mrl-0": system(5.0), "mrl-1": system(5.1),
               "control-0": system(1.0), "control-1": system(1.2)}
    report = gain_report(results, [0, 1], control=True)
    assert len(report["warnings"]) == 2 and "--control-lr" in report["warnings"][0]
    assert summary_table(report).endswith(f"Warning: {report['warnings'][1]}")


def test_system_metrics_take_the_last_rewarded_step():
    figures = system_metrics({"mean": 3.0, "fact_recall": 0.4, "per_step": [1.0, None, 2.5],
                              "per_step_fact_recall": [0.5, 0.1, None]})
    assert figures == {"mean": 3.0, "fact_recall": 0.4, "last_step": 2.5, "last_step_fact_recall": 0.1}


def test_stage_seconds_are_each_stages_last_cumulative_training_time():
    history = [{"stage": 1, "train_s": 0.0}, {"stage": 1, "train_s": 3.0}, {"stage": 2, "train_s": 0.0},
               {"stage": 2, "train_s": 1.5}, {"stage": 2, "train_s": 4.0}]
    assert stage_seconds(history, 3) == [3.0, 4.0, 0.0]


def test_the_control_continues_the_last_smat_table_at_its_final_rate_on_each_stage_s_episodes(tmp_path):
    bench = MrlGain("curricula/cpu-demo.toml", tmp_path / "ws", tmp_path / "out", overrides=[], seeds=1,
                    episodes=4, batch_size=4, control=True, control_lr=0.0, progress=False)
    tables = bench.control_tables(seed=0, seconds=[10.0, 20.0, 30.0, 40.0])
    assert [(t.data.steps, t.data.strategy) for t in tables] == [(2, "cumulative"), (4, "cumulative"),
                                                                  (8, "cumulative"), (16, "long_range")]
    assert [t.max_seconds for t in tables] == [10.0, 20.0, 30.0, 40.0]
    assert all(t.lr == pytest.approx(1e-3 * 0.5) and t.min_lr_ratio == 1.0 and t.warmup_ratio == 0.0 for t in tables)
    assert all(t.fact_weight == 3 and t.unfreeze_memory_attention_at == 0.0 and t.unfreeze_encoder_at == 1.0
               for t in tables)  # as the demo's SMAT: memory attention trains, the encoder never


def test_a_memory_only_control_freezes_the_decoder_and_the_encoder(tmp_path):
    bench = MrlGain("curricula/cpu-demo.toml", tmp_path / "ws", tmp_path / "out", overrides=[], seeds=1,
                    episodes=4, batch_size=4, control=True, control_lr=1e-4, control_trains="memory", progress=False)
    tables = bench.control_tables(seed=0, seconds=[10.0, 20.0, 30.0, 40.0])
    assert all(not t.train_decoder and t.unfreeze_memory_attention_at == 0.0 and t.unfreeze_encoder_at == 1.0
               and t.lr == 1e-4 for t in tables)
    assert bench.settings["control_trains"] == "memory"  # a rerun with the other control is refused


def test_sampled_evaluation_uses_one_temperature_for_every_system_and_says_so(tmp_path):
    from rxmrl.model.sampling import GREEDY, Sampling

    common = dict(overrides=[], seeds=1, episodes=4, batch_size=4, control=False, control_lr=0.0, progress=False)
    greedy = MrlGain("curricula/cpu-demo.toml", tmp_path / "ws", tmp_path / "a", **common)
    sampled = MrlGain("curricula/cpu-demo.toml", tmp_path / "ws", tmp_path / "b", temperature=0.8, **common)
    assert greedy._sampling() == GREEDY and sampled._sampling() == Sampling(greedy=False, temperature=0.8)
    assert sampled.settings["temperature"] == 0.8
    report = {"gains": {"cumulative-8": {}}, "systems": {"cumulative-8": {}}, "decoding": "sampled at temperature 0.8"}
    assert "(held-out test episodes, sampled at temperature 0.8)" in summary_table(report)


def test_a_tiny_benchmark_runs_then_continues_without_redoing_anything(tmp_path):
    warm = tmp_path / "warm"
    run_curriculum(load_curriculum("curricula/smoke.toml", TINY + ["warmstart=[]"]), warm, progress=False)
    overrides = TINY + ["warmstart.0.batch_size=4", "warmstart.0.data.eval_examples=4"]
    out = tmp_path / "gain"

    def bench(**kwargs):
        args = dict(overrides=overrides, seeds=2, episodes=2, batch_size=2, control=True, control_lr=0.0,
                    progress=False)
        return MrlGain("curricula/smoke.toml", warm / "final", out, **{**args, **kwargs})

    report = bench().run()
    for name in ("gain.json", "gain.png", "summary.md", "mrl/seed-0/final/model.safetensors",
                 "control/seed-1/model/model.safetensors", "eval/control-1-long_range-16.json"):
        assert (out / name).is_file(), name
    training = report["settings"]["training"]
    assert len(training["mrl-0"]["stage_seconds"]) == 2 and all(s > 0 for s in training["mrl-0"]["stage_seconds"])
    segments = training["control-0"]["segments"]
    assert [s["steps"] for s in segments] == [1, 2] and all(s["optimizer_steps"] >= 1 for s in segments)
    assert [s["seconds"] for s in segments] == training["mrl-0"]["stage_seconds"]
    gains = report["gains"]["long_range-16"]["mrl-warmstart"]["mean"]
    assert gains["n"] == 2 and len(gains["values"]) == 2

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.safetensors")}
    again = bench().run()  # everything is there: only the report is rebuilt
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.safetensors")} == stamps
    assert again["gains"] == json.loads(json.dumps(report["gains"]))
    with pytest.raises(ConfigError, match="other settings"):
        bench(seeds=3).run()
