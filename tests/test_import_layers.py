"""The import graph of `rxmrl/`: packages form layers, and an import may only run down.

Read from the source with `ast` (nothing is imported, so a lazy import inside a function counts as much as
one at the top of a file, and so does a module named in a string: the lazy export tables in `__init__.py`
files and `importlib.import_module(f"rxmrl.bench.{name}")`). A package may import its own modules and any
package in a lower layer; one in the same layer or above is refused, and so is any cycle between packages.
See "Layers" in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "rxmrl"

# Lowest first. "rxmrl" stands for the modules directly in rxmrl/ (errors, atomic, config, tokens, ...);
# "__main__" is `python -m rxmrl`, which only starts the CLI.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"rxmrl"}),
    frozenset({"data"}),
    frozenset({"model", "reward"}),
    frozenset({"env", "policy"}),
    frozenset({"train", "baseline"}),
    frozenset({"bench"}),
    frozenset({"recipes"}),
    frozenset({"cli"}),
    frozenset({"__main__"}),
)
LAYER_OF = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}

# Named, not imported: `import rxmrl` registers the gymnasium environment by entry-point string, and gymnasium
# loads that module only when an environment is made.
ALLOWED = {
    ("rxmrl/__init__.py", "'rxmrl.env.memory_env:MemoryRetentionEnv'"),
    ("rxmrl/__init__.py", "'rxmrl.env.vector_env:VectorMemoryEnv'"),
}

# a string that is nothing but a dotted module path (optionally `module:attribute`, as in an entry point)
MODULE_STRING = re.compile(r"rxmrl(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?")


def package_of_file(path: Path) -> str:
    """rxmrl/train/rollout.py -> "train"; rxmrl/errors.py -> "rxmrl"; rxmrl/__main__.py -> "__main__"."""
    parts = path.relative_to(PACKAGE_DIR).parts
    if len(parts) > 1:
        return parts[0]
    return "__main__" if parts[0] == "__main__.py" else "rxmrl"


def package_of_module(dotted: str) -> str | None:
    """"rxmrl.train.rollout" -> "train"; "rxmrl.errors" -> "rxmrl"; None for a name that is not a module
    of this source tree (an entry-point group such as "rxmrl.rewards", say)."""
    parts = dotted.split(".")
    if parts[0] != "rxmrl":
        return None
    if len(parts) == 1:
        return "rxmrl"
    if (PACKAGE_DIR / parts[1]).is_dir():
        return parts[1]
    if (PACKAGE_DIR / f"{parts[1]}.py").is_file():
        return "__main__" if parts[1] == "__main__" else "rxmrl"
    return None


def imports_of(path: Path) -> list[tuple[int, str, str]]:
    """Every `rxmrl` module this file names, wherever it does: (line, what the source says, its package)."""
    found: list[tuple[int, str, str]] = []

    def add(line: int, text: str, dotted: str) -> None:
        package = package_of_module(dotted)
        if package is not None:
            found.append((line, text, package))

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node.lineno, f"import {alias.name}", alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: relative import; write the absolute rxmrl.* path")
            if node.module == "rxmrl":
                # `from rxmrl import errors` names a module; `from rxmrl import __version__` names the root
                for alias in node.names:
                    add(node.lineno, f"from rxmrl import {alias.name}", f"rxmrl.{alias.name}")
            elif node.module:
                names = ", ".join(alias.name for alias in node.names)
                add(node.lineno, f"from {node.module} import {names}", node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if MODULE_STRING.fullmatch(node.value):
                add(node.lineno, repr(node.value), node.value.split(":")[0])
        elif isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            if isinstance(head, ast.Constant) and isinstance(head.value, str) and head.value.startswith("rxmrl."):
                add(node.lineno, f"f{head.value!r}...", head.value.rstrip("."))
    return sorted(found)


def checked_imports(path: Path) -> list[tuple[int, str, str]]:
    """`imports_of(path)` less the ALLOWED ones."""
    name = path.relative_to(PACKAGE_DIR.parent).as_posix()
    return [found for found in imports_of(path) if (name, found[1]) not in ALLOWED]


def source_files() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def test_every_package_has_a_layer():
    packages = {package_of_file(path) for path in source_files()}
    unplaced = sorted(packages - LAYER_OF.keys())
    assert not unplaced, f"packages with no layer in {__file__}: {unplaced}; place them in LAYERS"


def test_imports_run_only_down_the_layers():
    wrong = []
    for path in source_files():
        importer = package_of_file(path)
        for line, text, imported in checked_imports(path):
            if imported == importer or importer not in LAYER_OF or imported not in LAYER_OF:
                continue
            if LAYER_OF[imported] >= LAYER_OF[importer]:
                where = "the same layer as" if LAYER_OF[imported] == LAYER_OF[importer] else "a layer above"
                wrong.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{line}: {text}  "
                             f"({imported} is in {where} {importer})")
    assert not wrong, "imports that run up or across the layers:\n" + "\n".join(wrong)


def test_no_cycle_between_packages():
    # package -> package it imports -> the first place it does so
    edges: dict[str, dict[str, str]] = {}
    for path in source_files():
        importer = package_of_file(path)
        for line, text, imported in checked_imports(path):
            if imported != importer:
                edges.setdefault(importer, {}).setdefault(
                    imported, f"{path.relative_to(PACKAGE_DIR.parent)}:{line}: {text}")

    def cycle_from(start: str) -> list[str] | None:
        """A path start -> ... -> start, depth first, or None."""
        stack = [(start, [start])]
        seen = set()
        while stack:
            package, trail = stack.pop()
            for target in sorted(edges.get(package, {})):
                if target == start:
                    return trail + [start]
                if target not in seen:
                    seen.add(target)
                    stack.append((target, trail + [target]))
        return None

    for package in sorted(edges):
        cycle = cycle_from(package)
        if cycle:
            steps = [f"  {a} -> {b}: {edges[a][b]}" for a, b in zip(cycle, cycle[1:])]
            raise AssertionError(f"import cycle {' -> '.join(cycle)}:\n" + "\n".join(steps))
