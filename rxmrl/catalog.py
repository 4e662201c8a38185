"""Find presets in the catalogs (`policies/`, `rewards/`, `curricula/`) by name or path.

A *name* (`rxt-tiny`, `mrl-composite`) resolves only to the presets that ship with rxmrl: the checkout's
top-level folder (when rxmrl runs from its source tree) or the copy inside the installed wheel
(`rxmrl/_catalog/<catalog>/`). The working directory is never searched: a preset can name plug-in code, so a
`./rewards/mrl-composite.toml` planted where a command happens to run must not replace the built-in one. A
local file is used only when the user names a path: one with a folder in it (`./my.toml`, `cfg/my.toml`)
or ending in the catalog's suffix (`my.toml`) that exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from rxmrl.errors import ConfigError

CATALOGS = ("policies", "rewards", "curricula")
_PACKAGE_DIR = Path(__file__).resolve().parent


def catalog_dirs(catalog: str) -> list[Path]:
    """The folders a preset name is looked up in, in order: the source checkout's, then the installed copy."""
    if catalog not in CATALOGS:
        raise ValueError(f"unknown catalog {catalog!r}")
    candidates = [_PACKAGE_DIR / "_catalog" / catalog]
    if (_PACKAGE_DIR.parent / "pyproject.toml").is_file():  # a source checkout, not site-packages' neighbours
        candidates.insert(0, _PACKAGE_DIR.parent / catalog)
    seen, dirs = set(), []
    for d in candidates:
        if d.is_dir() and d.resolve() not in seen:
            seen.add(d.resolve())
            dirs.append(d)
    return dirs


def names_a_path(name_or_path: str | Path, suffix: str = ".toml") -> bool:
    """Whether the user wrote a path (a folder separator in it, or the file suffix) rather than a name."""
    text = str(name_or_path)
    return os.sep in text or "/" in text or text.endswith(suffix) or text.startswith("~")


def find_preset(catalog: str, name_or_path: str | Path, suffix: str = ".toml") -> Path:
    """Resolve a preset name (`rxt-alpha-micro`) or a file path to an existing file."""
    path = Path(name_or_path).expanduser()
    if names_a_path(name_or_path, suffix):
        if path.is_file():
            return path
        # `curricula/smoke.toml` as the README writes it works from any folder: the shipped preset
        shipped = path.parent.name in ("", catalog) and path.suffix in ("", suffix)
        if not shipped:
            raise ConfigError(f"{name_or_path}: no such file")
    for d in catalog_dirs(catalog):
        candidate = d / f"{path.stem if path.suffix == suffix else path.name}{suffix}"
        if candidate.is_file():
            return candidate
    available = ", ".join(list_presets(catalog)) or "none found"
    raise ConfigError(f"no {catalog} preset or file named '{name_or_path}' (available: {available})")


def list_presets(catalog: str, suffix: str = ".toml") -> list[str]:
    names: set[str] = set()
    for d in catalog_dirs(catalog):
        names.update(p.stem for p in d.glob(f"*{suffix}"))
    return sorted(names)
