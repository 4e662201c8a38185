"""Save and load a model folder: `config.json` + `model.safetensors`, locally or on the Hugging Face Hub.

The folder is written atomically (a crash leaves the old folder or the new one, never half of one). Other
components may add their own files beside ours (e.g. `tokenizer.json`, trainer state) by passing
`write_extra(tmp_dir)`, which runs inside the temporary folder before it is renamed into place.

Loading is strict: a weight file whose keys or shapes differ from what the config builds is a
`CheckpointError` listing the differences. `name_or_path` is a local folder, or else a Hub repo id
("owner/name"), fetched with `huggingface_hub.snapshot_download` (all files, so neighbours come too).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rxmrl.atomic import atomic_dir
from rxmrl.config import from_dict, to_dict
from rxmrl.errors import CheckpointError
from rxmrl.model.config import RxTConfig

if TYPE_CHECKING:
    from rxmrl.model.rxt import RxT

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_LISTED = 10  # key names shown per kind of mismatch before "... and N more"


def save_pretrained(model: RxT, directory: str | Path, write_extra: Callable[[Path], None] | None = None, *,
                    overwrite: bool = False) -> Path:
    from safetensors.torch import save_file

    directory = Path(directory)
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    with atomic_dir(directory, overwrite=overwrite) as tmp:
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        (tmp / CONFIG_FILE).write_text(json.dumps(to_dict(model.config), indent=2) + "\n")
        if write_extra is not None:
            write_extra(tmp)
    return directory


def is_hub_id(name: str) -> bool:
    from rxmrl.hub_names import looks_like_hub_id

    return looks_like_hub_id(name)


def resolve_pretrained_dir(name_or_path: str | Path, revision: str | None = None) -> Path:
    """A local model folder, downloading it from the Hub first when `name_or_path` is a repo id."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if not is_hub_id(str(name_or_path)):
        raise CheckpointError(f"{name_or_path}: no such model folder (and not a Hub repo id like 'owner/name')")
    import huggingface_hub

    try:
        local = huggingface_hub.snapshot_download(repo_id=str(name_or_path), revision=revision)
    except Exception as e:  # network, auth, missing repo: all mean "cannot get it", reported on one line
        reason = " ".join(str(e).split())  # the Hub's messages span lines; the CLI prints one
        raise CheckpointError(f"{name_or_path}: could not download from the Hugging Face Hub: {reason}") from None
    return Path(local)


def load_config(directory: Path) -> RxTConfig:
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory}: no {CONFIG_FILE}; is this a model folder written by save_pretrained?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: invalid JSON: {e}") from None
    return from_dict(RxTConfig, data, source=str(path))


def load_pretrained(
    cls: type[RxT], name_or_path: str | Path, *, revision: str | None = None, device: str | torch.device = "cpu"
) -> RxT:
    from safetensors.torch import load_file

    directory = resolve_pretrained_dir(name_or_path, revision)
    config = load_config(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{directory}: no {WEIGHTS_FILE}")
    model = cls(config)
    try:
        state = load_file(str(weights), device=str(device))
    except Exception as e:  # safetensors raises its own error type (or OSError) for a truncated or corrupt file
        raise CheckpointError(f"{weights}: cannot read the weights (truncated or corrupt?): "
                              f"{str(e).splitlines()[0][:200]}") from None
    check_state_matches(model.state_dict(), state, weights)
    model.load_state_dict(state, strict=True)
    return model.to(device)


def check_state_matches(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], source: Path) -> None:
    """Raise CheckpointError listing missing keys, unexpected keys and shape mismatches, if any."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    reshaped = sorted(
        f"{name} {tuple(found[name].shape)} != {tuple(expected[name].shape)}"
        for name in set(expected) & set(found)
        if found[name].shape != expected[name].shape
    )
    problems = []
    for label, names in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", reshaped)):
        if names:
            shown = ", ".join(names[:_LISTED]) + (f" ... and {len(names) - _LISTED} more" if len(names) > _LISTED else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise CheckpointError(f"{source}: weights do not match {CONFIG_FILE}: " + "; ".join(problems))


def push_to_hub(
    model: RxT,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload RxT model",
    write_extra: Callable[[Path], None] | None = None,
) -> str:
    """Save to a temporary folder and upload it with `huggingface_hub.upload_folder`; returns the commit URL."""
    import tempfile

    import huggingface_hub

    with tempfile.TemporaryDirectory() as tmp:
        folder = save_pretrained(model, Path(tmp) / "model", write_extra)
        try:
            huggingface_hub.create_repo(repo_id, private=private, token=token, exist_ok=True)
            commit = huggingface_hub.upload_folder(
                repo_id=repo_id, folder_path=str(folder), token=token, commit_message=commit_message
            )
        except Exception as e:
            raise CheckpointError(f"{repo_id}: could not upload to the Hugging Face Hub: {e}") from None
    return str(commit)
