"""Run checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is a folder `RUN_DIR/checkpoints/step-00000123/` holding the model (`model.safetensors`,
`config.json`), the tokenizer (`tokenizer.json`) and `trainer_state.pt` (extra modules such as the critic,
optimizers, schedulers, RNG states, named `torch.Generator`s and a JSON-able `state` dict with the data
cursor and counters), plus `trainer_state.json`, a readable copy of `state`. Folders are written with
`atomic_dir` under new names and never overwritten, so a SIGKILL at any moment leaves the previous
checkpoint intact; only after a new one is complete are the oldest beyond `keep` deleted.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rxmrl.atomic import atomic_dir
from rxmrl.errors import CheckpointError

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def capture_rng() -> dict[str, Any]:
    """The global RNG states (Python, NumPy, torch CPU and CUDA)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    *,
    model: Any,
    tokenizer: Any = None,
    modules: Mapping[str, torch.nn.Module] = {},
    optimizers: Mapping[str, torch.optim.Optimizer] = {},
    schedulers: Mapping[str, Any] = {},
    generators: Mapping[str, torch.Generator] = {},
    state: Mapping[str, Any] = {},
    keep: int = 2,
    name: str | None = None,
) -> Path:
    """Write a complete checkpoint and return its folder. `model` must have `save_pretrained(dir)`.

    `name` writes `RUN_DIR/<name>/` instead of a numbered step folder (used for `final`).
    """
    run_dir = Path(run_dir)
    target = run_dir / name if name else run_dir / CHECKPOINTS / f"step-{step:08d}"
    with atomic_dir(target) as tmp:
        _write_model(model, tmp)
        if tokenizer is not None:
            tokenizer.save(tmp / "tokenizer.json")
        torch.save(
            {
                "step": step,
                "modules": {k: m.state_dict() for k, m in modules.items()},
                "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
                "generators": {k: g.get_state() for k, g in generators.items()},
                "rng": capture_rng(),
                "state": dict(state),
            },
            tmp / STATE_FILE,
        )
        (tmp / "trainer_state.json").write_text(json.dumps({"step": step, **state}, indent=2, default=str))
    if not name:
        for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    return target


def _write_model(model: Any, folder: Path) -> None:
    # save_pretrained writes atomically into its own folder; we are already inside one, so write in place.
    inner = folder / "_model"
    model.save_pretrained(inner)
    for f in inner.iterdir():
        f.rename(folder / f.name)
    inner.rmdir()


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete step checkpoints of a run, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def load_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module | None = None,
    modules: Mapping[str, torch.nn.Module] = {},
    optimizers: Mapping[str, torch.optim.Optimizer] = {},
    schedulers: Mapping[str, Any] = {},
    generators: Mapping[str, torch.Generator] = {},
    restore_global_rng: bool = True,
) -> dict[str, Any]:
    """Restore a checkpoint into live objects (strictly) and return its `state` dict (with `step`)."""
    path = Path(path)
    state_file = path / STATE_FILE
    if not state_file.is_file():
        raise CheckpointError(f"{path}: not a training checkpoint (no {STATE_FILE})")
    blob = torch.load(state_file, map_location="cpu", weights_only=False)
    if model is not None:
        from safetensors.torch import load_file

        _load_strict(model, load_file(str(path / "model.safetensors")), f"{path}/model.safetensors")
    for kind, live in (("modules", modules), ("optimizers", optimizers), ("schedulers", schedulers)):
        missing = set(live) - set(blob[kind])
        if missing:
            raise CheckpointError(f"{path}: checkpoint has no {kind} named {sorted(missing)}")
        for key, obj in live.items():
            if kind == "modules":
                _load_strict(obj, blob[kind][key], f"{path}:{key}")
            else:
                obj.load_state_dict(blob[kind][key])
    for key, gen in generators.items():
        if key not in blob["generators"]:
            raise CheckpointError(f"{path}: checkpoint has no generator named '{key}'")
        gen.set_state(blob["generators"][key])
    if restore_global_rng:
        restore_rng(blob["rng"])
    return {"step": blob["step"], **blob["state"]}


def _load_strict(module: torch.nn.Module, weights: Mapping[str, torch.Tensor], where: str) -> None:
    try:
        result = module.load_state_dict(weights, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise CheckpointError(f"{where}: weights do not match the model: {str(e).splitlines()[-1].strip()}") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{where}: weights do not match the model "
            f"(missing: {result.missing_keys[:5]}, unexpected: {result.unexpected_keys[:5]})"
        )
