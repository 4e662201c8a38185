"""Run checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is a folder `RUN_DIR/checkpoints/step-00000123/` holding the model (`model.safetensors`,
`config.json`), the tokenizer (`tokenizer.json`) and `trainer_state.pt` (extra modules such as the critic,
optimizers, schedulers, RNG states, named `torch.Generator`s and a JSON-able `state` dict with the data
cursor and counters), plus `trainer_state.json`, a readable copy of `state`. Folders are written with
`atomic_dir` under new names and never overwritten, so a SIGKILL at any moment leaves the previous
checkpoint intact; only after a new one is complete are the oldest beyond `keep` deleted.

A distributed run (rank 0 writes) adds `ranks/rank-<r>.pt` for every rank r: what differs between ranks
(per-rank modules such as the carried STM, named generators, the global RNG), gathered by `rank_state` and
restored by `load_rank_state`. The main `trainer_state.pt` records the world size, and a checkpoint resumes
only with the world size it was written with (the data each rank reads depends on it).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rxmrl.atomic import atomic_dir
from rxmrl.errors import CheckpointError

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.pt"
RANKS = "ranks"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def capture_rng() -> dict[str, Any]:
    """The global RNG states (Python, NumPy, torch CPU and CUDA), as tensors and plain data only."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys  # older checkpoints hold the NumPy array
    np.random.set_state((name, keys.astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_state_file(file: str | Path) -> Any:
    """`torch.load` of a trainer-state file with `weights_only=True`: tensors and plain data only, so a file
    that would run code when unpickled (a planted or foreign `.pt`) is refused, never executed."""
    import pickle

    # checkpoints written before the NumPy RNG state was stored as a tensor hold one NumPy array: allow
    # exactly the types that rebuild an array (no callables)
    legacy = [np.ndarray, np.dtype, type(np.dtype(np.uint32)), _numpy_reconstruct()]
    try:
        with torch.serialization.safe_globals(legacy):
            return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e).strip().splitlines()[-1][:200]
        raise CheckpointError(f"{file}: refused to load: it holds Python objects that are not tensors or plain data "
                              f"({reason}); loading it could run code. Only load trainer state that rxmrl wrote"
                              ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{file}: cannot read it (truncated or corrupt?): {str(e).splitlines()[0][:200]}"
                              ) from None


def _numpy_reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct  # NumPy 2
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


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
    rank_states: list[dict[str, Any]] | None = None,
) -> Path:
    """Write a complete checkpoint and return its folder. `model` must have `save_pretrained(dir)`.

    `name` writes `RUN_DIR/<name>/` instead of a numbered step folder (used for `final`). `rank_states` (one
    `rank_state(...)` per rank, in rank order) makes it a distributed checkpoint.
    """
    run_dir = Path(run_dir)
    target = run_dir / name if name else run_dir / CHECKPOINTS / f"step-{step:08d}"
    with atomic_dir(target, overwrite=True) as tmp:  # inside the run's own folder
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
                "world_size": len(rank_states) if rank_states else 1,
            },
            tmp / STATE_FILE,
        )
        for r, blob in enumerate(rank_states or []):
            (tmp / RANKS).mkdir(exist_ok=True)
            torch.save(blob, tmp / RANKS / f"rank-{r}.pt")
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


def set_aside_from(run_dir: str | Path, step: int) -> Path | None:
    """Rename the step checkpoints at `step` or later to `set-aside-step-N` (kept, but no longer resumed
    from) and return the newest one left, or None."""
    for path in list_checkpoints(run_dir):
        if int(_STEP_DIR.match(path.name).group(1)) >= step:
            path.rename(path.with_name(f"set-aside-{path.name}"))
    return latest_checkpoint(run_dir)


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
    world_size: int | None = None,
) -> dict[str, Any]:
    """Restore a checkpoint into live objects (strictly) and return its `state` dict (with `step`).

    With `world_size`, the checkpoint must have been written by a run of that many processes."""
    path = Path(path)
    state_file = path / STATE_FILE
    if not state_file.is_file():
        raise CheckpointError(f"{path}: not a training checkpoint (no {STATE_FILE})")
    blob = load_state_file(state_file)
    saved_world = blob.get("world_size", 1)
    if world_size is not None and saved_world != world_size:
        raise CheckpointError(
            f"{path}: written by a run of {saved_world} process(es), resumed with {world_size}; resume with the same "
            f"number (e.g. torchrun --nproc_per_node {saved_world} ...), since each process's data and random "
            f"streams depend on it")
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


def rank_state(modules: Mapping[str, torch.nn.Module] = {},
               generators: Mapping[str, torch.Generator] = {}) -> dict[str, Any]:
    """What one rank of a distributed run holds on its own: modules, named generators, the global RNG (CPU)."""
    return {
        "modules": {k: {n: t.detach().cpu() for n, t in m.state_dict().items()} for k, m in modules.items()},
        "generators": {k: g.get_state() for k, g in generators.items()},
        "rng": capture_rng(),
    }


def load_rank_state(path: str | Path, rank: int, *, modules: Mapping[str, torch.nn.Module] = {},
                    generators: Mapping[str, torch.Generator] = {}) -> None:
    """Restore what `rank_state` saved for `rank` in checkpoint `path` (after `load_checkpoint`)."""
    file = Path(path) / RANKS / f"rank-{rank}.pt"
    if not file.is_file():
        raise CheckpointError(f"{path}: no per-rank state for rank {rank} ({file.name}); not a distributed checkpoint")
    blob = load_state_file(file)
    for key, module in modules.items():
        _load_strict(module, blob["modules"][key], f"{file}:{key}")
    for key, gen in generators.items():
        gen.set_state(blob["generators"][key])
    restore_rng(blob["rng"])


def save_run_checkpoint(run_dir: str | Path, step: int, *, local: Sequence[str] = (), **kwargs: Any) -> Path:
    """`save_checkpoint` from every process of a run (call it on all ranks): rank 0 writes; in a distributed
    run it adds each rank's own state (the modules named in `local`, all `generators`, the global RNG).
    Returns the folder on every rank once it is complete."""
    from rxmrl.train import distributed

    ranks = None
    if distributed.world_size() > 1:
        modules = kwargs.get("modules", {})
        ranks = distributed.gather_objects(rank_state({k: modules[k] for k in local}, kwargs.get("generators", {})))
    path = save_checkpoint(run_dir, step, rank_states=ranks, **kwargs) if distributed.is_main() else None
    return distributed.broadcast_object(path)


def load_run_checkpoint(path: str | Path, *, local: Sequence[str] = (), **kwargs: Any) -> dict[str, Any]:
    """`load_checkpoint` on every process of a run: shared objects from the main file, then (distributed) this
    rank's own modules named in `local`, generators and RNG. The world size must match the checkpoint's."""
    from rxmrl.train import distributed

    state = load_checkpoint(path, world_size=distributed.world_size(), **kwargs)
    if distributed.world_size() > 1:
        modules = kwargs.get("modules", {})
        load_rank_state(path, distributed.rank(), modules={k: modules[k] for k in local},
                        generators=kwargs.get("generators", {}))
    return state
