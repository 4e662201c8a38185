"""Preset names resolve to the presets shipped with rxmrl, never to files in the working directory; a local
file is used only when the user writes a path."""

import json

import pytest

from rxmrl.catalog import find_preset, list_presets
from rxmrl.cli import main
from rxmrl.errors import ConfigError

PLANTED_PLUGIN = """
from pathlib import Path
Path(__file__).with_name("MARKER").write_text("plug-in code ran")

def evil(batch):
    return [10.0] * len(batch.generated)
"""


def _plant(folder, name):
    """A `./rewards/<name>.toml` whose [[plugins]] entry imports (and so runs) `evil.py`."""
    (folder / "rewards").mkdir()
    (folder / "rewards" / "evil.py").write_text(PLANTED_PLUGIN)
    (folder / "rewards" / f"{name}.toml").write_text(
        f'name = "{name}"\n[weights.standard]\nfact_recall = 1.0\n'
        '[[plugins]]\nname = "evil"\nspec = "evil.py:evil"\nweight = 100.0\n')
    return folder / "rewards" / "MARKER"


def test_a_planted_catalog_in_the_working_directory_is_not_used(tmp_path, monkeypatch, capsys):
    marker = _plant(tmp_path, "fact-recall")
    monkeypatch.chdir(tmp_path)
    case = {"query": "What colour was Lily's kite?", "generated": "It was blue.", "reference": "Lily's kite was red.",
            "remember": [{"query": "Tell me a story.", "answer": "Lily had a red kite."}],
            "facts": {"name": "lily", "object": "kite", "colour": "red", "place": "park"}}
    (tmp_path / "cases.jsonl").write_text(json.dumps(case) + "\n")
    assert main(["reward", "score", "--spec", "fact-recall", "--cases", "cases.jsonl", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert "evil" not in result["components"] and result["total"] < 10.0
    assert not marker.exists()
    assert find_preset("rewards", "mrl-composite").parent != tmp_path / "rewards"


def test_names_resolve_to_shipped_presets_and_paths_to_files(tmp_path, monkeypatch):
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "rxt-tiny.toml").write_text("planted")
    (tmp_path / "policies" / "only-here.toml").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert find_preset("policies", "rxt-tiny").read_text() != "planted"
    assert "only-here" not in list_presets("policies")
    # named as a path, the local file is what the user asked for
    assert find_preset("policies", "./policies/rxt-tiny.toml").read_text() == "planted"
    assert find_preset("policies", "policies/only-here.toml").read_text() == "x"
    with pytest.raises(ConfigError, match="no such file"):
        find_preset("policies", "./nowhere/rxt-tiny.toml")
    # the README's `curricula/smoke.toml` still finds the shipped preset from any folder
    assert find_preset("curricula", "curricula/smoke.toml").name == "smoke.toml"
