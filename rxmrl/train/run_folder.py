"""A run folder belongs to one run: recognise it, refuse anyone else's, and hold it while the run lives.

`rxmrl train --out DIR` and `rxmrl warmstart STAGE --out DIR` continue in their own folder (re-running the
command resumes), so an existing folder is fine when it is theirs: it holds the run's record (`marker`, e.g.
`curriculum.json`), which the run writes first. Any other non-empty folder is refused, so a typo in `--out`
never mixes a run into (or prunes checkpoints out of) someone else's files.
"""

from __future__ import annotations

from pathlib import Path

from rxmrl.errors import OutputError


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


LOCK_FILE = ".rxmrl.lock"
