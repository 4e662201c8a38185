"""save_pretrained / from_pretrained: exact round trip, strict loading, Hub routing (offline)."""

import json

import huggingface_hub
import pytest
import torch
from safetensors.torch import load_file, save_file

from rxmrl.errors import CheckpointError, OutputError
from rxmrl.model import RxT, load_preset


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return RxT(load_preset("rxt-tiny", stm={"init": "learned"})).eval()


def test_round_trip_is_exact(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded = RxT.from_pretrained(folder).eval()
    assert loaded.config == model.config
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    stm = model.initial_stm(1)
    tokens = torch.randint(7, 64, (1, 6))
    torch.testing.assert_close(
        loaded.decode(tokens, loaded.memory_kv(stm)).logits, model.decode(tokens, model.memory_kv(stm)).logits,
        atol=0, rtol=0,
    )


def test_extra_files_go_beside_and_a_second_save_replaces_only_its_own_folder(model, tmp_path):
    def write_extra(tmp):
        (tmp / "tokenizer.json").write_text("{}")

    folder = model.save_pretrained(tmp_path / "m", write_extra=write_extra)
    assert (folder / "tokenizer.json").read_text() == "{}"
    RxT.from_pretrained(folder)  # neighbours do not disturb loading
    with pytest.raises(OutputError, match="not empty"):
        model.save_pretrained(folder)  # an existing folder is replaced only when asked
    with pytest.raises(OutputError, match="tokenizer.json"):
        model.save_pretrained(folder, overwrite=True)  # and never when that would delete a file it does not write
    assert (folder / "tokenizer.json").read_text() == "{}"
    model.save_pretrained(folder, write_extra=write_extra, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folders left behind


def test_missing_and_unexpected_keys_are_listed(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "m")
    state = load_file(folder / "model.safetensors")
    del state["decoder.lm_head.weight"]
    state["decoder.extra.weight"] = torch.zeros(2)
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError) as info:
        RxT.from_pretrained(folder)
    message = str(info.value)
    assert "missing keys: decoder.lm_head.weight" in message
    assert "unexpected keys: decoder.extra.weight" in message


def test_shape_mismatch_with_the_config_is_listed(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["vocab_size"] = 65
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"wrong shapes: .*embedding\.weight \(64, 32\) != \(65, 32\)"):
        RxT.from_pretrained(folder)


def test_incomplete_folders(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "m")
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        RxT.from_pretrained(folder)
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="no config.json"):
        RxT.from_pretrained(folder)
    with pytest.raises(CheckpointError, match="no such model folder"):
        RxT.from_pretrained(tmp_path / "does" / "not" / "exist")


def test_hub_id_is_routed_through_snapshot_download(model, tmp_path, monkeypatch):
    folder = model.save_pretrained(tmp_path / "snapshot")
    calls = []

    def fake_snapshot_download(repo_id, revision=None, **kwargs):
        calls.append((repo_id, revision))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    loaded = RxT.from_pretrained("someone/rxt-test", revision="v1")
    assert calls == [("someone/rxt-test", "v1")]
    assert torch.equal(loaded.embedding.weight, model.embedding.weight)


def test_hub_failure_is_a_checkpoint_error(monkeypatch):
    def offline(repo_id, revision=None, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(CheckpointError, match="someone/missing: could not download.*no network"):
        RxT.from_pretrained("someone/missing")


def test_push_uploads_a_complete_folder(model, monkeypatch):
    seen = {}

    monkeypatch.setattr(huggingface_hub, "create_repo", lambda repo_id, **kw: seen.setdefault("repo", repo_id))

    def fake_upload_folder(repo_id, folder_path, **kwargs):
        from pathlib import Path

        seen["files"] = sorted(p.name for p in Path(folder_path).iterdir())
        seen["loaded"] = RxT.from_pretrained(folder_path)
        return "https://huggingface.co/someone/rxt-test/commit/abc"

    monkeypatch.setattr(huggingface_hub, "upload_folder", fake_upload_folder)
    url = model.push_to_hub("someone/rxt-test")
    assert url.endswith("abc") and seen["repo"] == "someone/rxt-test"
    assert seen["files"] == ["config.json", "model.safetensors"]
    assert torch.equal(seen["loaded"].decoder.lm_head.weight, model.decoder.lm_head.weight)
