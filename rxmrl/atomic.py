"""Write folders and files atomically, and never destroy what rxmrl did not write.

A folder is filled in a temporary sibling, then renamed into place; a file is written to a temporary sibling,
flushed, then renamed over the old one. A crash at any moment leaves either the old version or the new one,
never a half-written one.

An existing folder is replaced only when the caller says so (`overwrite=True`, the CLI's `--overwrite`), and
even then only when every file in it is one the new folder also holds: a folder with any other file in it
(a user's notes, another tool's output) is refused, never deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from rxmrl.errors import OutputError


def check_output_dir(path: str | Path, *, overwrite: bool = False, flag: str = "--out",
                     offer_overwrite: bool = True) -> None:
    """Refuse, before any work, an output folder that exists and is not empty (unless `overwrite`)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path}: exists and is not a folder")
    if not overwrite and _non_empty(path):
        hint = (", or pass --overwrite to replace it (files rxmrl did not write there are never deleted)"
                if offer_overwrite else "")
        raise OutputError(f"{flag} {path}: the folder exists and is not empty; choose a new {flag}{hint}")


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """`with atomic_dir(out) as tmp:` write files into `tmp`; on success `tmp` becomes `out`.

    An existing non-empty `out` is an `OutputError`, unless `overwrite` and it holds only files that the new
    folder holds too (then it is replaced).
    """
    path = Path(path)
    check_output_dir(path, overwrite=overwrite, flag="output folder", offer_overwrite=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        if path.exists():
            _check_only_own_files(path, tmp)
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """`with atomic_file(out) as tmp:` write `tmp` (any writer that takes a path); on success it becomes `out`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the suffix stays last, for writers that pick the format from it (savefig)
    tmp = path.parent / f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}"
    try:
        yield tmp
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a UTF-8 text file atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _non_empty(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _check_only_own_files(old: Path, new: Path) -> None:
    # Replacing deletes the old folder: only allowed when nothing in it would be lost that we do not rewrite.
    written = {p.relative_to(new) for p in new.rglob("*")}
    foreign = sorted(str(p.relative_to(old)) for p in old.rglob("*") if p.relative_to(old) not in written)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputError(f"{old}: holds files rxmrl would not write there ({shown}); it is left as it is. Move them "
                          f"away or choose a new output folder")


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(root)


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
