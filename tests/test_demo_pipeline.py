"""A miniature of the cpu-demo job, end to end: synthetic data -> tokenizer -> the four warm-start stages -> MRL
-> the retention benchmark (final model, memory ablation, warm-start only, stateless baseline) -> JSON, PNG,
summary; then a resume after the benchmark's results were lost redoes neither MRL nor the baseline."""

import json

import pytest
import torch
from safetensors.torch import load_file

from rxmrl.config import load_toml
from rxmrl.recipes.curriculum import run_curriculum
from rxmrl.recipes.curriculum_config import curriculum_from_dict, load_resolved
from rxmrl.train.tracking import read_metrics

MEMORY_DATA = {"source": "synthetic", "examples": 24, "eval_examples": 4, "steps": 2, "strategy": "cumulative",
               "max_query_len": 40, "max_answer_len": 24}
TEXT_DATA = {"source": "synthetic", "examples": 24, "eval_examples": 4, "max_len": 64}
TINY_WARMSTART = [
    {"stage": "joint-lm", "steps": 2, "batch_size": 4, "save_every": 0, "data": TEXT_DATA},
    {"stage": "sft", "steps": 2, "batch_size": 4, "save_every": 0, "data": TEXT_DATA},
    {"stage": "memory-attention", "steps": 2, "batch_size": 4, "save_every": 0, "data": MEMORY_DATA},
    {"stage": "smat", "steps": 2, "batch_size": 4, "save_every": 0, "data": MEMORY_DATA},
]
SYSTEMS = ("rxt", "rxt_memory_reset", "warmstart_only", "warmstart_only_memory_reset", "stateless")


@pytest.fixture(autouse=True)
def _keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # the curriculum sets its own thread count


def miniature_demo():
    """The smoke curriculum with the demo's shape: 4 warm-start stages, MRL, a [benchmark] table; all tiny."""
    raw = load_toml("curricula/smoke.toml")
    raw["warmstart"] = TINY_WARMSTART
    raw["tokenizer"]["train_episodes"] = 60
    raw["data"].update(episodes=16, eval_episodes=4)
    raw["stage"] = [{"steps": [1, 2], "epochs": 1, "episodes_per_epoch": 2, "batch_size": 8,
                     "generation": {"max_new_tokens": 6}}]
    raw["eval"] = {"batch_size": 8, "samples": 0}
    raw["benchmark"] = {"episodes": 4, "steps": 3, "batch_size": 4, "samples": 1, "long_range_steps": 2,
                        "baseline": {"steps": 2, "batch_size": 2, "warmup_steps": 0, "logging_steps": 1}}
    return curriculum_from_dict(raw, source="miniature-demo")


@pytest.mark.slow
def test_the_miniature_demo_writes_the_benchmark_and_resumes_without_redoing_work(tmp_path):
    run = tmp_path / "run"
    run_curriculum(miniature_demo(), run, progress=False)

    bench = run / "benchmark"
    results = json.loads((bench / "retention.json").read_text())
    assert set(results) == {*SYSTEMS, "settings"}
    for name in SYSTEMS:
        r = results[name]
        assert {"mean", "max", "min", "per_step", "fact_recall"} <= set(r), name
        assert len(r["per_step"]) == 3 and r["min"] <= r["mean"] <= r["max"], name
    settings = results["settings"]
    assert (settings["episodes"], settings["steps"], settings["split"]) == (4, 3, "test")
    assert settings["timings"]["baseline_training_s"] > 0
    assert (bench / "retention.png").stat().st_size > 0
    long_range = json.loads((bench / "retention-long_range-2.json").read_text())
    assert set(long_range) == {n for n in SYSTEMS if n != "stateless"} | {"settings"}
    assert all(len(long_range[n]["per_step"]) == 2 for n in long_range if n != "settings")
    assert (long_range["settings"]["strategy"], long_range["settings"]["steps"]) == ("long_range", 2)
    # the main table, a blank line, the long-range heading and a blank line, the long-range table
    assert (bench / "summary.md").read_text().count("\n") == (2 + len(SYSTEMS)) + 3 + (2 + len(SYSTEMS) - 1)
    # the warm-start-only model is the model before MRL: MRL changed at least one of its weights
    before = load_file(run / "warmstart-final" / "model.safetensors")
    after = load_file(run / "final" / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert (run / "warmstart-final" / "tokenizer.json").is_file()

    # killed after MRL, before the benchmark's results were written: a resume only measures again
    mrl_rows = len(read_metrics(run))
    baseline_stamp = (bench / "baseline" / "rxmrl_baseline.json").stat().st_mtime_ns
    for name in ("retention.json", "retention-long_range-2.json", "retention.png", "summary.md"):
        (bench / name).unlink()
    run_curriculum(load_resolved(run), run, resume=True, progress=False)
    again = json.loads((bench / "retention.json").read_text())
    assert len(read_metrics(run)) == mrl_rows  # no MRL iteration or evaluation was logged again
    assert (bench / "baseline" / "rxmrl_baseline.json").stat().st_mtime_ns == baseline_stamp
    assert again["settings"]["timings"]["baseline_training_s"] == 0.0
    # greedy decoding, same seeds: the same scores
    assert {k: again[k] for k in SYSTEMS} == {k: results[k] for k in SYSTEMS}
