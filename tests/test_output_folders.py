"""Commands that write a folder never destroy what they did not write: a non-empty `--out` is refused unless
`--overwrite`, and even then a folder holding foreign files is left alone; run folders continue only their own run."""

import json

import pytest

from rxmrl.atomic import atomic_dir
from rxmrl.cli import main
from rxmrl.errors import OutputError

TINY = ["--set", "vocab_size=300", "--set", "max_seq_len=64"]


def _foreign(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("mine")
    return folder / "notes.txt"


def test_model_init_refuses_a_non_empty_folder(tmp_path, capsys):
    notes = _foreign(tmp_path / "m")
    assert main(["model", "init", "rxt-tiny", "--out", str(tmp_path / "m"), *TINY]) == 2
    assert "not empty" in capsys.readouterr().err
    assert notes.read_text() == "mine"
    # --overwrite does not delete a file that is not a model's either
    assert main(["model", "init", "rxt-tiny", "--out", str(tmp_path / "m"), "--overwrite", *TINY]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert notes.read_text() == "mine" and not (tmp_path / "m" / "model.safetensors").exists()


def test_model_init_overwrite_replaces_its_own_folder(tmp_path):
    out = str(tmp_path / "m")
    assert main(["model", "init", "rxt-tiny", "--out", out, *TINY]) == 0
    first = (tmp_path / "m" / "model.safetensors").read_bytes()
    assert main(["model", "init", "rxt-tiny", "--out", out, *TINY, "--seed", "1"]) == 2
    assert main(["model", "init", "rxt-tiny", "--out", out, *TINY, "--seed", "1", "--overwrite"]) == 0
    assert (tmp_path / "m" / "model.safetensors").read_bytes() != first


def test_model_init_into_an_empty_folder_is_fine(tmp_path):
    (tmp_path / "m").mkdir()
    assert main(["model", "init", "rxt-tiny", "--out", str(tmp_path / "m"), *TINY]) == 0
    assert (tmp_path / "m" / "config.json").is_file()


def test_data_synth_refuses_a_non_empty_folder(tmp_path, capsys):
    notes = _foreign(tmp_path / "d")
    argv = ["data", "synth", "--out", str(tmp_path / "d"), "--steps", "1", "--episodes", "4", "--format", "jsonl"]
    assert main(argv) == 2
    assert "not empty" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 2
    assert notes.read_text() == "mine"
    notes.unlink()
    assert main(argv) == 0  # empty now
    assert main([*argv, "--seed", "1", "--overwrite"]) == 0  # its own files only: replaced


def test_tokenizer_train_refuses_an_existing_file(tmp_path, capsys):
    data = tmp_path / "d"
    assert main(["data", "synth", "--out", str(data), "--steps", "1", "--episodes", "8", "--format", "jsonl"]) == 0
    out = tmp_path / "tok.json"
    out.write_text("mine")
    argv = ["tokenizer", "train", "--data", str(data), "--vocab", "300", "--out", str(out)]
    assert main(argv) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "mine"
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads(out.read_text())["model"]


def test_atomic_dir_refuses_without_overwrite(tmp_path):
    _foreign(tmp_path / "x")
    with pytest.raises(OutputError, match="not empty"):
        with atomic_dir(tmp_path / "x") as tmp:
            (tmp / "a").write_text("a")
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["notes.txt"]


def test_train_refuses_a_foreign_folder(tmp_path, capsys):
    notes = _foreign(tmp_path / "run")
    assert main(["train", "smoke", "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "not an rxmrl run folder" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["notes.txt"] and notes.read_text() == "mine"


def test_warmstart_refuses_a_foreign_folder(tmp_path, capsys):
    _foreign(tmp_path / "ws")
    assert main(["warmstart", "joint-lm", "--config", "joint-lm", "--out", str(tmp_path / "ws")]) == 2
    assert "not an rxmrl warm-start folder" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["notes.txt"]


def test_baseline_train_refuses_a_non_empty_folder_before_training(tmp_path, capsys):
    _foreign(tmp_path / "b")
    assert main(["baseline", "train", "--match-preset", "rxt-tiny", "--tokenizer", str(tmp_path / "none.json"),
                 "--out", str(tmp_path / "b")]) == 2
    assert "not empty" in capsys.readouterr().err


def test_a_tokenizer_write_that_dies_midway_leaves_the_old_file(tmp_path, monkeypatch):
    from rxmrl.data import train_tokenizer

    tokenizer = train_tokenizer(["Lily had a red kite.", "Tom saw a blue ball."] * 20, 300)
    path = tokenizer.save(tmp_path / "tokenizer.json")
    before = path.read_bytes()

    def dies_midway(target):
        with open(target, "w") as f:
            f.write('{"version": "1.0", "trunc')  # what a kill mid-write leaves
        raise KeyboardInterrupt

    monkeypatch.setattr(tokenizer.backend, "save", dies_midway, raising=False)
    with pytest.raises(KeyboardInterrupt):
        tokenizer.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]  # no temporary file left behind


def test_atomic_write_text_replaces_whole_files_only(tmp_path, monkeypatch):
    import os

    from rxmrl.atomic import atomic_write_text

    atomic_write_text(tmp_path / "a.json", "old")

    def no_rename(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "a.json", "new")
    assert (tmp_path / "a.json").read_text() == "old" and len(list(tmp_path.iterdir())) == 1
