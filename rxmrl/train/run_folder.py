"""A run folder belongs to one run: recognise it, refuse anyone else's, and hold it while the run lives.

`rxmrl train --out DIR` and `rxmrl warmstart STAGE --out DIR` continue in their own folder (re-running the
command resumes), so an existing folder is fine when it is theirs: it holds the run's record (`marker`, e.g.
`curriculum.json`), which the run writes first. Any other non-empty folder is refused, so a typo in `--out`
never mixes a run into (or prunes checkpoints out of) someone else's files.

While a run lives it holds an exclusive `flock` on `DIR/.rxmrl.lock`, so a second run on the same folder is
refused instead of interleaving its checkpoints with the first one's; the kernel drops the lock when the
process ends, however it ends, so a killed run never leaves a stale lock behind.

A run re-started in its folder must be the run that folder records: `first_difference` names the first
setting that differs. Relative paths in a config are made absolute at first start (`absolute_paths`), so a
resume from another working directory reads the same files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rxmrl.errors import OutputError
from rxmrl.reward.similarity import DEFAULT_MODEL

LOCK_FILE = ".rxmrl.lock"
# Config keys whose value may be a local file or folder (a preset name, "synthetic" or a Hub id is left alone).
_PATH_KEYS = {"source", "eval_source", "path", "spec", "mlm_head_from", "tokenizer", "model"}
# Values of those keys that choose something built in (generated data, sft's MLM head rule, the bundled embedding
# model): a config records them even where the user left them out, and a file of that name in the working
# directory must not turn them into a path.
_BUILT_IN = {"synthetic", "auto", "none", DEFAULT_MODEL}


def claim_run_folder(run_dir: str | Path, marker: str, *, what: str = "run") -> None:
    """Raise `OutputError` unless `run_dir` is missing, empty, or an earlier run's folder holding `marker`."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputError(f"--out {run_dir}: exists and is not a folder")
    if not run_dir.is_dir() or (run_dir / marker).is_file():
        return
    if any(p.name != LOCK_FILE for p in run_dir.iterdir()):
        raise OutputError(f"--out {run_dir}: the folder is not empty and is not an rxmrl {what} folder (no {marker}); "
                          f"choose a new --out")


@contextlib.contextmanager
def run_lock(run_dir: str | Path, enabled: bool = True) -> Iterator[None]:
    """Hold the run folder's exclusive lock for the block; a second holder gets an `OutputError` at once."""
    import fcntl

    if not enabled:  # the other ranks of a distributed run: rank 0 holds it for all of them
        yield
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            raise OutputError(f"{run_dir}: another rxmrl run is using this folder (pid {holder}); wait for it to end "
                              f"or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def absolute_paths(data: Any, key: str = "") -> Any:
    """A config dict with every path-valued setting that names an existing local path made absolute."""
    if isinstance(data, dict):
        out = {k: absolute_paths(v, k) for k, v in data.items()}
        if key == "model" and isinstance(out.get("name"), str):
            out["name"] = _absolute(out["name"])
        return out
    if isinstance(data, list):
        return [absolute_paths(v, key) for v in data]
    if isinstance(data, str) and key in _PATH_KEYS and data not in _BUILT_IN:
        return _absolute(data)
    return data


def _absolute(value: str) -> str:
    file, sep, attr = value.rpartition(":")
    if sep and file.endswith(".py") and attr.isidentifier():  # a plug-in spec: file.py:function
        return f"{_absolute(file)}:{attr}"
    path = Path(value).expanduser()
    return str(path.resolve()) if value and path.exists() else value


def first_difference(recorded: Any, new: Any, key: str = "") -> str | None:
    """'key: recorded -> new' for the first setting that differs between two config dicts, or None."""
    if isinstance(recorded, dict) and isinstance(new, dict):
        for k in sorted(set(recorded) | set(new)):
            found = first_difference(recorded.get(k), new.get(k), f"{key}.{k}" if key else k)
            if found:
                return found
        return None
    if isinstance(recorded, list) and isinstance(new, list) and len(recorded) == len(new):
        for i, (a, b) in enumerate(zip(recorded, new)):
            found = first_difference(a, b, f"{key}[{i}]")
            if found:
                return found
        return None
    return None if recorded == new else f"{key}: {recorded!r} -> {new!r}"
