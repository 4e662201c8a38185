"""`rxmrl data synth` writes the Hub layout deterministically, and its output passes `rxmrl data check`."""

import json

import pytest

from rxmrl.cli import main
from rxmrl.data import list_subsets, load_episodes, load_interactions, load_texts


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "data"
    assert main(["data", "synth", "--out", str(out), "--steps", "1,2,4", "--episodes", "12", "--seed", "5",
                 "--stories", "10", "--pairs", "10"]) == 0
    return out


def test_synth_writes_tinystories_mrl_subsets_and_splits(synth_dir):
    assert list_subsets(synth_dir) == ["steps-1", "steps-2", "steps-2-lr", "steps-4", "steps-4-lr", "stories", "qa"]
    assert (synth_dir / "steps-4-lr" / "train-00000-of-00001.parquet").is_file()
    train = load_episodes(synth_dir, "steps-4-lr", "train")
    assert len(train) == 12 and all(e.steps == 4 and e.strategy == "long_range" and e.facts for e in train)
    assert len(load_episodes(synth_dir, "steps-1", "validation")) == 1  # a tenth, at least one
    assert len(load_texts(synth_dir, "stories")) == 10 and len(load_interactions(synth_dir, "qa")) == 10


def test_synth_is_deterministic(synth_dir, tmp_path):
    again = tmp_path / "again"
    assert main(["data", "synth", "--out", str(again), "--steps", "1,2,4", "--episodes", "12", "--seed", "5",
                 "--format", "jsonl"]) == 0
    for subset in ("steps-1", "steps-2", "steps-4-lr"):
        assert load_episodes(again, subset, "validation") == load_episodes(synth_dir, subset, "validation")
    row = json.loads((again / "steps-2" / "train-00000-of-00001.jsonl").read_text().splitlines()[0])
    assert isinstance(row["facts"], dict)  # a JSON object in jsonl (a JSON string in parquet)


def test_synth_output_passes_check(synth_dir, capsys):
    assert main(["data", "check", str(synth_dir)]) == 0
    out = capsys.readouterr().out
    assert "ok: 14 table(s) valid" in out
    assert "[steps-4/train]\n  episodes: 12 (12 with facts)" in out
    assert "follow-ups per episode: min 4, median 4, max 4 (4: 12)" in out


def test_check_json_summary_of_one_table(synth_dir, capsys):
    assert main(["data", "check", str(synth_dir), "--subset", "steps-2", "--split", "train", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    (table,) = summary.values()
    assert table["episodes"] == 12 and table["strategies"] == {"cumulative": 12}
    assert table["follow_ups_per_episode"]["counts"] == {"2": 12}
    assert 30 <= table["words"]["first_answer"]["min"] <= table["words"]["first_answer"]["max"] <= 60


def test_check_one_split_of_every_subset(synth_dir, capsys):
    assert main(["data", "check", str(synth_dir), "--split", "validation"]) == 0
    assert "ok: 7 table(s) valid" in capsys.readouterr().out
    assert main(["data", "check", str(synth_dir), "--split", "test"]) == 2
    assert "no subset has a split 'test'" in capsys.readouterr().err


def test_check_prints_first_errors_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    good = {"query": "Q?", "answer": "A.", "interactions": [{"query": "Q2?", "answer": "A2."}]}
    bad.write_text("\n".join(json.dumps(r) for r in [good, {**good, "answer": ""}, {"query": "Q?"}]) + "\n")
    assert main(["data", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "invalid data: 2 bad rows" in err
    assert "bad.jsonl: line 2: 'answer' is empty" in err and "bad.jsonl: line 3: missing field 'answer'" in err


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "missing")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--steps", "1,two"]) == 2
    assert "--steps '1,two'" in capsys.readouterr().err
