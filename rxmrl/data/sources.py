"""Where rows come from: local files, local snapshots in the Hugging Face Hub layout, or Hub dataset ids.

A *source* is one of
- a `.jsonl`, `.json` (a list of objects) or `.parquet` file;
- a directory in the Hub layout: `README.md` whose YAML header lists `configs` (subset name, and per split the
  files as globs), or, without such a header, one sub-directory per subset holding `<split>-*.parquet`
  (or `.jsonl` / `.json`) files; files at the top level form the subset `None`;
- a Hub dataset id (`owner/name`), read through the optional `datasets` package.

`open_table(source, subset, split)` returns a `Table`: a label for messages and an iterator of
`(row_number, row)` where `row_number` is 1-based per file and `row` is a dict, or a `RowError` for a line
that is not even JSON.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rxmrl.data.rows import RowError
from rxmrl.errors import DataError

FILE_SUFFIXES = (".parquet", ".jsonl", ".json")


@dataclass(frozen=True)
class Table:
    """The rows of one subset/split of a source (possibly spread over several files)."""

    label: str  # what error messages name, e.g. "data/steps-2/train-00000-of-00001.parquet"
    subset: str | None
    split: str | None
    read: Callable[[], Iterator[tuple[str, int, Any]]]  # yields (file label, 1-based row number, row)


def is_hub_id(source: str | Path) -> bool:
    from rxmrl.hub_names import looks_like_hub_id

    return looks_like_hub_id(source)


def list_subsets(source: str | Path) -> list[str | None]:
    """Subset names of a snapshot or Hub dataset; `[None]` for a plain file or a directory without subsets."""
    if is_hub_id(source):
        datasets = _import_datasets(str(source))
        try:
            return list(datasets.get_dataset_config_names(str(source)))
        except Exception as e:  # network, auth, or not found: the user's environment, not a bug here
            raise DataError(_hub_failure(str(source), e)) from None
    path = _existing(source)
    if path.is_file():
        return [None]
    return list(_snapshot_layout(path))


def list_splits(source: str | Path, subset: str | None) -> list[str]:
    """Split names of one subset; `[]` for a plain file (it has no splits)."""
    if is_hub_id(source):
        datasets = _import_datasets(str(source))
        try:
            return list(datasets.get_dataset_split_names(str(source), subset))
        except Exception as e:
            raise DataError(_hub_failure(str(source), e)) from None
    path = _existing(source)
    if path.is_file():
        return []
    return list(_subset_files(path, subset))


def open_table(source: str | Path, subset: str | None = None, split: str = "train") -> Table:
    """The rows of `subset`/`split` of `source` (a plain file ignores both)."""
    if is_hub_id(source):
        return _hub_table(str(source), subset, split)
    path = _existing(source)
    if path.is_file():
        return Table(str(path), None, None, lambda: _read_file(path))
    files = _subset_files(path, subset).get(split)
    if not files:
        available = ", ".join(sorted(_subset_files(path, subset))) or "none"
        raise DataError(f"{path}: subset {_name(subset)} has no split '{split}' (available: {available})")
    label = f"{path}[{_name(subset)}/{split}]"
    return Table(label, subset, split, lambda: (item for f in files for item in _read_file(f)))


def resolve_subset(source: str | Path, subset: str | None) -> str | None:
    """`subset` itself, or the only subset when `None` was given; a clear error when there is a choice."""
    if subset is not None and is_hub_id(source):
        return subset  # the Hub answers for it when the table is read
    subsets = list_subsets(source)
    if subset is not None:
        if subset not in subsets:
            raise DataError(f"{source}: no subset '{subset}' (available: {', '.join(map(_name, subsets))})")
        return subset
    if len(subsets) == 1:
        return subsets[0]
    raise DataError(f"{source}: choose a subset with --subset / subset= (available: {', '.join(map(_name, subsets))})")


def _name(subset: str | None) -> str:
    return "(top level)" if subset is None else subset


def _existing(source: str | Path) -> Path:
    path = Path(source)
    if not path.exists():
        hint = " (a Hub dataset id looks like owner/name)" if isinstance(source, str) and "/" not in source else ""
        raise DataError(f"{source}: no such file or directory{hint}")
    if path.is_file() and path.suffix not in FILE_SUFFIXES:
        raise DataError(f"{path}: unsupported file type '{path.suffix}' (use {', '.join(FILE_SUFFIXES)})")
    return path


# ---- local snapshots -------------------------------------------------------------------------------------


def _snapshot_layout(root: Path) -> dict[str | None, dict[str, list[Path]]]:
    """subset -> split -> files, from README.md `configs` if it lists any, else from the folder names."""
    layout = _layout_from_readme(root)
    if layout:
        return layout
    layout = {}
    top = _split_files(root)
    if top:
        layout[None] = top
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        splits = _split_files(sub)
        if splits:
            layout[sub.name] = splits
    if not layout:
        raise DataError(f"{root}: no data files found (expected <subset>/<split>-*.parquet, "
                        f"or README.md with configs; or pass a .jsonl/.json/.parquet file)")
    return layout


def _subset_files(root: Path, subset: str | None) -> dict[str, list[Path]]:
    layout = _snapshot_layout(root)
    if subset not in layout:
        raise DataError(f"{root}: no subset {_name(subset)} (available: {', '.join(map(_name, layout))})")
    return layout[subset]


def _split_files(folder: Path) -> dict[str, list[Path]]:
    """`train-00000-of-00002.parquet` -> split "train" (the Hub's shard names); also `train.jsonl`."""
    splits: dict[str, list[Path]] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix in FILE_SUFFIXES:
            split = f.stem.split("-", 1)[0]
            splits.setdefault(split, []).append(f)
    return splits


def _layout_from_readme(root: Path) -> dict[str | None, dict[str, list[Path]]]:
    readme = root / "README.md"
    if not readme.is_file():
        return {}
    header = _front_matter(readme)
    configs = header.get("configs") if isinstance(header, dict) else None
    if not configs:
        return {}
    if not isinstance(configs, list):
        raise DataError(f"{readme}: 'configs' must be a list of {{config_name, data_files}}")
    layout: dict[str | None, dict[str, list[Path]]] = {}
    for i, config in enumerate(configs):
        if not isinstance(config, dict) or "config_name" not in config:
            raise DataError(f"{readme}: configs[{i}] needs a config_name")
        name = str(config["config_name"])
        splits: dict[str, list[Path]] = {}
        for split, patterns in _data_files(config.get("data_files"), readme, name).items():
            files = sorted(Path(p) for pattern in patterns for p in glob.glob(str(root / pattern)))
            if not files:
                raise DataError(f"{readme}: config '{name}' split '{split}' matches no files ({', '.join(patterns)})")
            splits[split] = files
        layout[name] = splits
    return layout


def _data_files(spec: Any, readme: Path, name: str) -> dict[str, list[str]]:
    """The forms the Hub accepts: a path, a list of paths (split "train"), or per-split entries."""
    if spec is None:
        raise DataError(f"{readme}: config '{name}' has no data_files")
    if isinstance(spec, str):
        return {"train": [spec]}
    if isinstance(spec, dict):
        return {str(k): [v] if isinstance(v, str) else list(v) for k, v in spec.items()}
    if isinstance(spec, list) and all(isinstance(s, str) for s in spec):
        return {"train": list(spec)}
    out: dict[str, list[str]] = {}
    for entry in spec:
        if not isinstance(entry, dict) or "split" not in entry or "path" not in entry:
            raise DataError(f"{readme}: config '{name}': each data_files entry needs split and path")
        paths = entry["path"]
        out.setdefault(str(entry["split"]), []).extend([paths] if isinstance(paths, str) else paths)
    return out


def _front_matter(readme: Path) -> Any:
    try:
        text = readme.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{readme}: not UTF-8 text: {e}") from None
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    import yaml  # a dependency of huggingface_hub, which rxmrl requires

    try:
        return yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as e:
        raise DataError(f"{readme}: invalid YAML header: {e}") from None


# ---- files -----------------------------------------------------------------------------------------------


def _read_file(path: Path) -> Iterator[tuple[str, int, Any]]:
    if path.suffix == ".parquet":
        yield from _read_parquet(path)
    elif path.suffix == ".jsonl":
        yield from _read_jsonl(path)
    elif path.suffix == ".json":
        yield from _read_json(path)
    else:  # a README config may point at any file
        raise DataError(f"{path}: unsupported file type '{path.suffix}' (use {', '.join(FILE_SUFFIXES)})")


def _read_parquet(path: Path) -> Iterator[tuple[str, int, Any]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a damaged or non-parquet file
        raise DataError(f"{path}: cannot read parquet: {e}") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            yield str(path), number, row


def _read_jsonl(path: Path) -> Iterator[tuple[str, int, Any]]:
    with path.open("rb") as f:  # decoded line by line: one line of bad bytes is one bad row
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield str(path), number, RowError(f"not UTF-8 text: {e}")
                continue
            if not line.strip():
                continue
            try:
                yield str(path), number, json.loads(line)
            except json.JSONDecodeError as e:
                yield str(path), number, RowError(f"not valid JSON: {e}")


def _read_json(path: Path) -> Iterator[tuple[str, int, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text: {e}") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of rows, got {type(data).__name__} "
                        f"(use .jsonl for one row a line)")
    for number, row in enumerate(data, start=1):
        yield str(path), number, row


# ---- the Hub ---------------------------------------------------------------------------------------------


def _hub_table(source: str, subset: str | None, split: str) -> Table:
    label = f"{source}[{_name(subset)}/{split}]"

    def read() -> Iterator[tuple[str, int, Any]]:
        datasets = _import_datasets(source)
        try:
            dataset = datasets.load_dataset(source, subset, split=split)
        except Exception as e:
            raise DataError(_hub_failure(source, e)) from None
        for number, row in enumerate(dataset, start=1):
            yield label, number, row

    return Table(label, subset, split, read)


def _import_datasets(source: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError(f"{source}: reading a Hub dataset needs the 'datasets' package: "
                        f"pip install 'rxmrl[hub]'") from None
    return datasets


def _hub_failure(source: str, error: Exception) -> str:
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return (f"cannot load Hub dataset '{source}' ({type(error).__name__}: {first_line}); offline? download it once "
            f"with `hf download {source} --repo-type dataset --local-dir DIR` and pass DIR")
