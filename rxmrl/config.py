"""Typed configs: dataclasses filled strictly from TOML files and `--set key=value` overrides.

An unknown, missing or mistyped key is a `ConfigError` that names the key and the file, so a typo in a preset
fails before any work starts. A dataclass may check cross-field rules in `__post_init__` by raising
`ConfigError("field: what is wrong")`; the file name is added here.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from rxmrl.errors import ConfigError

T = TypeVar("T")


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`["train.lr=1e-4", "name=run"]` -> `{"train": {"lr": 1e-4}, "name": "run"}`.

    Values are read as TOML literals (numbers, booleans, arrays, quoted strings); anything else is a string.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set train.lr=1e-4")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: '{part}' is both a value and a section")
        node[leaf] = value
    return out


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep merge; values in `overrides` win. Neither input is modified."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dict(cls: type[T], data: dict[str, Any], *, source: str = "<config>", prefix: str = "") -> T:
    """Build dataclass `cls` from `data`, checking every key and type. Errors name `source` and the key path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: '{prefix.rstrip('.') or 'config'}' must be a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ConfigError(f"{source}: unknown key '{prefix}{key}'{hint}")
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], source=source, key=f"{prefix}{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key '{prefix}{name}'")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{source}: {prefix}{e}") from None


def load(cls: type[T], path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Read a TOML file into dataclass `cls`, after applying `--set` overrides."""
    data = merge(load_toml(path), parse_overrides(overrides))
    return from_dict(cls, data, source=str(path))


def to_dict(obj: Any) -> dict[str, Any]:
    """Dataclass -> plain dict (tuples become lists) that JSON can hold and `from_dict` reads back."""
    return _plain(dataclasses.asdict(obj))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _convert(tp: Any, value: Any, *, source: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{source}: '{key}' must be {expected}, got {value!r}")

    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, source=source, key=key)
            except ConfigError as e:
                errors.append(e)
        raise errors[0] if len(errors) == 1 else fail(" or ".join(_name(a) for a in args if a is not type(None)))
    if origin is typing.Literal:
        if value not in args:
            raise fail("one of " + ", ".join(repr(a) for a in args))
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, source=source, prefix=f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail("a number")
        if not math.isfinite(value):  # TOML and --set accept nan and inf; no setting means either
            raise fail("a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise fail("a string")
        return value
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise fail("an array")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item_tp = args[0]
        elif origin is tuple and args:
            if len(args) != len(value):
                raise fail(f"an array of {len(args)} items")
            return tuple(_convert(a, v, source=source, key=f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        else:
            item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, source=source, key=f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise fail("a table")
        val_tp = args[1] if args else Any
        return {k: _convert(val_tp, v, source=source, key=f"{key}.{k}") for k, v in value.items()}
    raise TypeError(f"config type {tp!r} of '{key}' is not supported")  # a bug in a config class


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))
