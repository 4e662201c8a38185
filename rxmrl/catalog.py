"""Find presets in the catalogs (`policies/`, `envs/`, `rewards/`, `curricula/`) by name or path.

A name is looked up, in order, in `./<catalog>/` (a user's edited copy), in the checkout's top-level
folder, and in the copy shipped inside the installed wheel (`rxmrl/_catalog/<catalog>/`).
"""

from __future__ import annotations

from pathlib import Path

from rxmrl.errors import ConfigError

CATALOGS = ("policies", "envs", "rewards", "curricula")
_PACKAGE_DIR = Path(__file__).resolve().parent


def catalog_dirs(catalog: str) -> list[Path]:
    if catalog not in CATALOGS:
        raise ValueError(f"unknown catalog {catalog!r}")
    candidates = [Path.cwd() / catalog, _PACKAGE_DIR.parent / catalog, _PACKAGE_DIR / "_catalog" / catalog]
    seen, dirs = set(), []
    for d in candidates:
        if d.is_dir() and d.resolve() not in seen:
            seen.add(d.resolve())
            dirs.append(d)
    return dirs


def find_preset(catalog: str, name_or_path: str | Path, suffix: str = ".toml") -> Path:
    """Resolve a preset name (`rxt-alpha-micro`) or a file path to an existing file."""
    path = Path(name_or_path)
    if path.suffix == suffix and path.is_file():
        return path
    for d in catalog_dirs(catalog):
        candidate = d / f"{path.name}{suffix}" if path.suffix != suffix else d / path.name
        if candidate.is_file():
            return candidate
    available = ", ".join(list_presets(catalog)) or "none found"
    raise ConfigError(f"no {catalog} preset or file named '{name_or_path}' (available: {available})")


def list_presets(catalog: str, suffix: str = ".toml") -> list[str]:
    names: set[str] = set()
    for d in catalog_dirs(catalog):
        names.update(p.stem for p in d.glob(f"*{suffix}"))
    return sorted(names)
