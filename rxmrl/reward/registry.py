"""Find a reward by spec: registered names, presets, TOML files, plug-in modules, files and entry points.

`get_reward(spec)` accepts, tried in this order:
  1. a callable (an rxmrl reward `fn(batch)`, or a TRL-style `fn(prompts, completions, **kwargs)`);
  2. a name registered with `@register_reward("name")` (the built-ins live in `rxmrl.reward.builtin`);
  3. a preset name of the `rewards/` catalog, or a path to a reward spec `.toml` (a `CompositeReward`);
  4. a `.py` file path, optionally `file.py:function` (without a function: the file's `reward`
     attribute, else the one reward the file registers); a bare file name is also looked up in the
     `rewards/` catalog (`example_plugin.py:question_echo`);
  5. `module:function` (dotted names allowed on both sides);
  6. the name of an entry point in the group `rxmrl.rewards` (`[project.entry-points."rxmrl.rewards"]`).
A registered or loaded class is instantiated with no arguments. A function whose parameters include
`prompts` and `completions` is treated as TRL-style and adapted (`rxmrl.reward.trl_adapter`).

Every result is a `NamedReward`: calling it checks the output (B finite floats, components [B] and finite)
and, for code that is not part of rxmrl, turns an exception into a `RewardError` that names the reward.

The registry is one dict per process (filled by decorators at import time), which is what lets a plug-in
register itself by being imported.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rxmrl.catalog import find_preset, list_presets
from rxmrl.errors import RewardError, RxmrlError
from rxmrl.reward.base import RewardBatch, RewardOutput, as_output

ENTRY_POINT_GROUP = "rxmrl.rewards"
_REGISTRY: dict[str, Any] = {}
_MODULE_SPEC_RE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


class NamedReward:
    """A reward with a name: `reward(batch) -> RewardOutput`, checked. `fn` is the wrapped callable."""

    def __init__(self, name: str, fn: Callable[[RewardBatch], Any], *, user_code: bool) -> None:
        self.name = name
        self.fn = fn
        self.user_code = user_code
        self.__name__ = name  # TRL and loggers read __name__

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        try:
            result = self.fn(batch)
        except RxmrlError:
            raise
        except SystemExit as e:  # a plug-in must not end the run (and skip its checkpoint) by exiting
            raise RewardError(f"reward '{self.name}' called sys.exit({e.code!r}) instead of returning scores") from None
        except Exception as e:
            if not self.user_code:
                raise  # a bug in rxmrl: keep the traceback
            raise RewardError(f"reward '{self.name}' raised {type(e).__name__}: {e}") from e
        out = as_output(result, len(batch), self.name)
        for key, value in out.components.items():
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != (len(batch),):
                raise RewardError(f"reward '{self.name}': component '{key}' is not a [B] tensor")
            bad = [i for i, v in enumerate(value.tolist()) if not math.isfinite(v)]
            if bad:
                raise RewardError(f"reward '{self.name}': component '{key}' is non-finite for samples {bad[:5]}")
        return out

    def __repr__(self) -> str:
        return f"NamedReward({self.name!r})"


def register_reward(name: str) -> Callable[[Any], Any]:
    """Decorator: `@register_reward("my-reward")` on a reward function or a class with a no-argument init."""

    def decorate(obj: Any) -> Any:
        known = _REGISTRY.get(name)
        if known is not None and _identity(known) != _identity(obj):
            raise RewardError(
                f"reward name '{name}' is already registered by {_identity(known)}; choose another name"
            )
        _REGISTRY[name] = obj
        return obj

    return decorate


def get_reward(spec: Any) -> NamedReward:
    """The reward for `spec` (see the module docstring for what a spec may be)."""
    if isinstance(spec, NamedReward):
        return spec
    if callable(spec) and not isinstance(spec, (str, Path)):
        return _wrap(spec, _callable_name(spec), user_code=_is_user_code(spec))
    if isinstance(spec, Path):
        spec = str(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise RewardError(f"a reward spec must be a name, a path or a callable, got {spec!r}")
    _load_builtins()

    if spec in _REGISTRY:
        obj = _REGISTRY[spec]
        return _wrap(obj, spec, user_code=_is_user_code(obj))
    if spec.endswith(".toml") or spec in list_presets("rewards"):
        return _from_toml(find_preset("rewards", spec))
    file_part, attr = _split_file_spec(spec)
    if file_part is not None:
        return _from_file(Path(file_part), attr, spec)
    if _MODULE_SPEC_RE.fullmatch(spec):
        return _from_module(spec)
    entry_points = _entry_points()
    if spec in entry_points:
        return _from_entry_point(entry_points[spec])
    raise RewardError(
        f"unknown reward '{spec}'. Known: {', '.join(list_rewards()) or 'none'}; "
        "or give a TOML spec path, module:function, or file.py[:function]"
    )


def list_rewards() -> dict[str, str]:
    """Every reward available by name -> where it comes from (built-in, plug-in, preset, entry point)."""
    _load_builtins()
    found: dict[str, str] = {}
    for name, ep in _entry_points().items():
        found[name] = f"entry point {ep.value}"
    for name in list_presets("rewards"):
        found[name] = f"preset {find_preset('rewards', name)}"
    for name, obj in _REGISTRY.items():
        found[name] = "built-in" if not _is_user_code(obj) else f"plug-in {_identity(obj)}"
    return dict(sorted(found.items()))


def _wrap(obj: Any, name: str, *, user_code: bool) -> NamedReward:
    if inspect.isclass(obj):
        try:
            obj = obj()
        except RxmrlError:
            raise
        except (Exception, SystemExit) as e:
            if not user_code:
                raise
            raise RewardError(f"reward '{name}': could not create {obj.__name__}(): {type(e).__name__}: {e}") from e
    if not callable(obj):
        raise RewardError(f"reward '{name}' is a {type(obj).__name__}, not a callable")
    if _is_trl_style(obj):
        from rxmrl.reward.trl_adapter import from_trl_reward

        obj = from_trl_reward(obj, name=name)
    return NamedReward(name, obj, user_code=user_code)


def _from_toml(path: Path) -> NamedReward:
    from rxmrl.reward.composite import CompositeReward
    from rxmrl.reward.spec import load_spec

    spec = load_spec(path)
    return NamedReward(spec.name, CompositeReward(spec, base_dir=path.parent), user_code=False)


def _split_file_spec(spec: str) -> tuple[str | None, str | None]:
    """"dir/x.py" -> ("dir/x.py", None); "dir/x.py:fn" -> ("dir/x.py", "fn"); anything else -> (None, None)."""
    if spec.endswith(".py"):
        return spec, None
    head, sep, attr = spec.rpartition(":")
    if sep and head.endswith(".py") and attr.isidentifier():
        return head, attr
    return None, None


def _from_file(path: Path, attr: str | None, spec: str) -> NamedReward:
    if not path.is_file() and len(path.parts) == 1:  # a bare file name may be one shipped in the catalog
        try:
            path = find_preset("rewards", path.name, suffix=".py")
        except RxmrlError:
            pass
    if not path.is_file():
        raise RewardError(f"reward plug-in file '{path}' does not exist (from spec '{spec}')")
    resolved = path.resolve()
    module_name = f"rxmrl_reward_plugin_{resolved.stem}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:10]}"
    module = sys.modules.get(module_name)
    if module is None:  # load each file once per process, so its @register_reward calls are not repeated
        before = set(_REGISTRY)
        module_spec = importlib.util.spec_from_file_location(module_name, resolved)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except (Exception, SystemExit) as e:  # importing a plug-in must not exit the process either
            del sys.modules[module_name]
            for name in set(_REGISTRY) - before:
                del _REGISTRY[name]
            raise RewardError(f"reward plug-in file '{path}' failed to load: {type(e).__name__}: {e}") from e
    if attr is not None:
        if not hasattr(module, attr):
            raise RewardError(f"reward plug-in file '{path}' has no '{attr}' (it defines: {_public_callables(module)})")
        return _wrap(getattr(module, attr), attr, user_code=True)
    if hasattr(module, "reward"):
        return _wrap(module.reward, path.stem, user_code=True)
    registered = [name for name, obj in _REGISTRY.items() if getattr(obj, "__module__", None) == module_name]
    if len(registered) == 1:
        return _wrap(_REGISTRY[registered[0]], registered[0], user_code=True)
    raise RewardError(
        f"reward plug-in file '{path}': say which reward to use as '{path}:NAME' "
        f"(it defines: {_public_callables(module)})"
    )


def _from_module(spec: str) -> NamedReward:
    module_name, _, attr_path = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as e:
        raise RewardError(f"reward '{spec}': cannot import module '{module_name}': {type(e).__name__}: {e}") from e
    obj: Any = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise RewardError(f"reward '{spec}': module '{module_name}' has no '{attr_path}'")
        obj = getattr(obj, part)
    return _wrap(obj, spec, user_code=_is_user_code(obj))


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _from_entry_point(ep: importlib.metadata.EntryPoint) -> NamedReward:
    try:
        obj = ep.load()
    except Exception as e:
        raise RewardError(
            f"reward entry point '{ep.name}' ({ep.value}, group {ENTRY_POINT_GROUP}) failed to load: "
            f"{type(e).__name__}: {e}"
        ) from e
    return _wrap(obj, ep.name, user_code=True)


def _load_builtins() -> None:
    import rxmrl.reward.builtin  # noqa: F401  (its decorators fill the registry)


def _is_trl_style(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "prompts" in params and "completions" in params


def _is_user_code(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return not (module == "rxmrl" or module.startswith("rxmrl."))


def _callable_name(obj: Any) -> str:
    return getattr(obj, "__name__", None) or getattr(obj, "name", None) or type(obj).__name__


def _identity(obj: Any) -> str:
    module = getattr(obj, "__module__", "?")
    return f"{module}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _public_callables(module: Any) -> str:
    names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
             and getattr(v, "__module__", None) == module.__name__]
    return ", ".join(sorted(names)) or "nothing callable"
