"""`rxmrl bench train-step` on a tiny model: the JSON it writes and what its fields mean."""

import json

from rxmrl.cli import main


def test_train_step_bench_reports_wall_and_cpu_time_per_phase(tmp_path):
    out = tmp_path / "step.json"
    argv = ["bench", "train-step", "--preset", "rxt-tiny", "--set", "vocab_size=300", "--batch", "2", "--steps", "2", "--answer-tokens", "5",
            "--repeats", "2", "--reward", "bleu", "--threads", "1", "--json", str(out)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["answer_tokens_measured"] == 5.0  # every answer forced to full length
    assert result["warmup_s"] > 0 and result["compile"] is False and result["autocast"] == "none"
    for phase in ("rollout_s", "update_s"):
        runs, cpu_runs = result[phase]["runs"], result[phase]["cpu_runs"]
        assert len(runs) == len(cpu_runs) == 2 and min(runs) > 0 and min(cpu_runs) > 0
        assert min(runs) <= result[phase]["median"] <= max(runs)
    assert result["iteration_s"]["median"] >= result["rollout_s"]["median"]
    assert result["peak_rss_mb"] > 0
