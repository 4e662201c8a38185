"""Model presets: `policies/<name>.toml` files read into an `RxTConfig`.

`load_preset("rxt-tiny", vocab_size=100, decoder={"layers": 3})` or, with dotted keys,
`load_preset("rxt-tiny", **{"decoder.layers": 3})`; `overrides` may also be `--set key=value` strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rxmrl.catalog import find_preset, list_presets
from rxmrl.config import from_dict, load_toml, merge, parse_overrides
from rxmrl.model.config import RxTConfig


def load_preset(name_or_path: str | Path, *, set_items: list[str] | tuple[str, ...] = (), **overrides: Any) -> RxTConfig:
    """Resolve a preset name or TOML path and build its config; `overrides` win over the file."""
    path = find_preset("policies", name_or_path)
    data = load_toml(path)
    data = merge(data, parse_overrides(list(set_items)))
    data = merge(data, _nest(overrides))
    return from_dict(RxTConfig, data, source=str(path))


def available_presets() -> list[str]:
    return list_presets("policies")


def _nest(overrides: dict[str, Any]) -> dict[str, Any]:
    """{"decoder.layers": 3} -> {"decoder": {"layers": 3}}; plain keys and nested dicts pass through."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = merge(node[leaf], value) if isinstance(value, dict) and isinstance(node.get(leaf), dict) else value
    return out
