"""`rxmrl reward score|list` and `rxmrl bench reward` on tiny inputs."""

import json
from pathlib import Path

import pytest

from rxmrl.cli import main

REPO = Path(__file__).resolve().parents[1]
STORY = {"query": "Tell me a story.", "answer": "Lily had a red kite. She flew it in the park."}
FACTS = {"name": "lily", "object": "kite", "colour": "red", "place": "park"}


def write_cases(path, cases):
    path.write_text("\n".join(json.dumps(c) for c in cases) + "\n")
    return path


def case(generated, **extra):
    return {"query": "What colour was Lily's kite?", "generated": generated, "reference": "Lily's kite was red.",
            "remember": [STORY], **extra}


def test_score_prints_one_json_result_per_case_in_order(tmp_path, capsys):
    cases = write_cases(tmp_path / "cases.jsonl", [
        case("It was red.", facts=FACTS),
        case("It was blue.", facts=FACTS, mode="long_range"),
        case("", facts=None),
    ])
    assert main(["reward", "score", "--spec", "fact-recall", "--cases", str(cases), "--json", "--batch-size", "2"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["total"] for r in results] == [10.0, 0.0, 0.0]
    assert set(results[0]["components"]) == {"fact_recall", "contradiction", "length", "repetition", "bleu",
                                             "memory_overlap"}
    assert results[1]["components"]["contradiction"] == 1.0


def test_score_accepts_a_toml_path_and_a_plugin_file(tmp_path, capsys):
    cases = write_cases(tmp_path / "cases.jsonl", [case("Lily's kite."), case("It was red.")])
    assert main(["reward", "score", "--spec", str(REPO / "rewards" / "fact-recall.toml"), "--cases", str(cases),
                 "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    spec = f"{REPO / 'rewards' / 'example_plugin.py'}:question_echo"
    assert main(["reward", "score", "--spec", spec, "--cases", str(cases), "--json"]) == 0
    assert [r["total"] for r in json.loads(capsys.readouterr().out)] == [1.0, 0.0]
    assert main(["reward", "score", "--spec", spec, "--cases", str(cases)]) == 0
    assert capsys.readouterr().out.startswith("case 1: total 1.000")


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "cases.jsonl:1: invalid JSON"),
        (json.dumps({k: v for k, v in case("x").items() if k != "reference"}), "cases.jsonl:1: missing key 'reference'"),
        (json.dumps(case("x", extra=1)), "cases.jsonl:1: unknown key 'extra'"),
        (json.dumps(case("x", mode="sideways")), "cases.jsonl:1: 'mode' must be one of"),
        (json.dumps(dict(case("x"), remember=[{"query": "q"}])), "cases.jsonl:1: 'remember' must be a list"),
        (json.dumps(case("x", facts=["red"])), "cases.jsonl:1: 'facts' must be an object"),
    ],
)
def test_bad_cases_fail_with_the_file_and_line(tmp_path, capsys, line, message):
    path = tmp_path / "cases.jsonl"
    path.write_text(line + "\n")
    assert main(["reward", "score", "--spec", "fact-recall", "--cases", str(path), "--json"]) == 2
    assert message in capsys.readouterr().err


def test_unknown_spec_and_list(tmp_path, capsys):
    cases = write_cases(tmp_path / "cases.jsonl", [case("x")])
    assert main(["reward", "score", "--spec", "no-such-reward", "--cases", str(cases)]) == 2
    assert "unknown reward 'no-such-reward'" in capsys.readouterr().err
    assert main(["reward", "list"]) == 0
    listing = capsys.readouterr().out
    assert "mrl-composite" in listing and "fact-recall" in listing and "bleu" in listing


def test_bench_reward_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "reward", "--batch", "8", "--length", "12", "--vocab", "20", "--repeats", "2",
                 "--answers", "8", "--spec", "fact-recall", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    (run,) = data["runs"]
    tb = run["tensor_bleu"]
    assert tb["batch"] == 8 and tb["length"] == 12
    assert tb["max_abs_diff_vs_sacrebleu"] < 1e-6
    assert tb["speedup"] == pytest.approx(tb["nltk_loop_s"] / tb["tensor_bleu_s"])
    assert run["composite"]["fact-recall"]["answers"] == 8
