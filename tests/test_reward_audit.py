"""The reward audit on the built-in TinyStories-style episodes (no facts), and `rxmrl reward audit|score`."""

import json
import sys

import pytest

from rxmrl.cli import main
from rxmrl.data.episode import Episode, Interaction
from rxmrl.reward import get_reward
from rxmrl.reward.audit import SWAP_GAP, audit_cases, run_audit, summarise
from rxmrl.reward.audit_set import AUDIT_EPISODES
from rxmrl.reward.variants import HOSTILE


def test_builtin_set_has_no_facts_and_every_follow_up_is_a_case():
    assert all(ep.facts is None for ep in AUDIT_EPISODES)
    cases = audit_cases(AUDIT_EPISODES)
    assert len(cases) == sum(ep.steps for ep in AUDIT_EPISODES)
    long = Episode(Interaction("a", "b"), (Interaction("c", "d"), Interaction("e", "f")), strategy="long_range")
    (case,) = audit_cases([long])
    assert (case.query, case.mode, case.remember) == ("e", "long_range", (long.first,))


def test_summary_rules_on_hand_set_scores():
    good = {"reference": 9.0, "paraphrase": 8.0, **{n: 1.0 for n in HOSTILE}}
    bad = dict(good, value_swap=7.0, negation=9.5)
    summary = summarise([{"scores": good}, {"scores": bad}])
    assert summary["variants"]["negation"] == {"mean": 5.25, "min_margin": -0.5, "passed": 1}
    assert summary["swap_vs_paraphrase"]["passed"] == 1 and summary["swap_vs_paraphrase"]["min_gap"] == 1.0
    assert summary["passed"] is False
    assert summarise([{"scores": good}])["passed"] is True


@pytest.mark.parametrize("spec", ["mrl-composite", "fact-recall"])
def test_default_rewards_pass_the_audit_on_the_builtin_set(spec):
    summary = run_audit(get_reward(spec), audit_cases(AUDIT_EPISODES))["summary"]
    for name in HOSTILE:
        assert summary["variants"][name]["passed"] == summary["cases"], (spec, name, summary["variants"][name])
    assert summary["swap_vs_paraphrase"]["min_gap"] >= SWAP_GAP
    assert summary["passed"]


def test_audit_cli_writes_its_files(tmp_path, capsys):
    out = tmp_path / "audit"
    assert main(["reward", "audit", "--spec", "fact-recall", "--out", str(out), "--no-plot"]) == 0
    printed = capsys.readouterr().out
    assert "| value_swap |" in printed and "Verdict: PASS" in printed
    assert sorted(p.name for p in out.iterdir()) == ["audit.json", "summary.md"]
    report = json.loads((out / "audit.json").read_text())
    assert report["spec"] == "fact-recall" and report["summary"]["passed"] is True
    assert len(report["cases"]) == sum(ep.steps for ep in AUDIT_EPISODES)
    assert (out / "summary.md").read_text().startswith("Reward audit of `fact-recall`")


def test_audit_cli_without_claims_reads_a_data_file_and_can_fail(tmp_path, capsys):
    rows = [{"query": ep.first.query, "answer": ep.first.answer,
             "interactions": [{"query": f.query, "answer": f.answer} for f in ep.follow_ups]}
            for ep in AUDIT_EPISODES[:4]]
    data = tmp_path / "episodes.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "old"
    code = main(["reward", "audit", "--spec", "fact-recall", "--data", str(data), "--out", str(out),
                 "--no-plot", "--no-claims"])
    report = json.loads((out / "audit.json").read_text())
    assert report["spec"] == "fact-recall (no claims)" and len(report["cases"]) == 8
    assert code == (0 if report["summary"]["passed"] else 1)
    assert report["summary"]["swap_vs_paraphrase"]["min_gap"] < SWAP_GAP  # without claims a swap slips through
    capsys.readouterr()


def test_audit_cli_refuses_a_non_empty_out(tmp_path, capsys):
    out = tmp_path / "audit"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    assert main(["reward", "audit", "--spec", "fact-recall", "--out", str(out), "--no-plot"]) != 0
    assert "not empty" in capsys.readouterr().err
    assert (out / "mine.txt").read_text() == "x"


def test_score_echoes_id_and_name(tmp_path, capsys):
    story = {"query": "Tell me a story.", "answer": "Lily had a red kite."}
    base = {"query": "What colour was the kite?", "reference": "The kite was red.", "remember": [story]}
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(json.dumps(c) for c in [
        {**base, "generated": "It was red.", "id": "a1"},
        {**base, "generated": "It was blue.", "name": "swap", "id": 7},
        {**base, "generated": "Red."},
    ]) + "\n")
    assert main(["reward", "score", "--spec", "fact-recall", "--cases", str(cases), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results[0]["id"] == "a1" and "name" not in results[0]
    assert (results[1]["id"], results[1]["name"]) == (7, "swap")
    assert "id" not in results[2] and "name" not in results[2]
    assert results[1]["components"]["contradiction"] == 1.0  # no facts: the claims catch the swap
    assert main(["reward", "score", "--spec", "fact-recall", "--cases", str(cases)]) == 0
    assert "case 1 id=a1: total" in capsys.readouterr().out
    cases.write_text(json.dumps({**base, "generated": "x", "id": [1]}) + "\n")
    assert main(["reward", "score", "--spec", "fact-recall", "--cases", str(cases)]) != 0
    assert "'id' must be a string or an integer" in capsys.readouterr().err


def test_audit_png_and_the_message_without_matplotlib(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    out = tmp_path / "with-png"
    assert main(["reward", "audit", "--spec", "fact-recall", "--out", str(out), "--limit", "2"]) == 0
    assert (out / "audit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    out = tmp_path / "no-png"
    assert main(["reward", "audit", "--spec", "fact-recall", "--out", str(out), "--limit", "2"]) == 0
    assert "audit.png skipped: plots need matplotlib" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["audit.json", "summary.md"]
