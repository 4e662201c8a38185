"""Write tables in the Hugging Face Hub dataset layout, so `load_episodes` and `datasets` both read them.

Layout: `README.md` whose YAML header lists each subset (`config_name`) and its splits' files, and
`<subset>/<split>-00000-of-00001.parquet` (or `.jsonl`). The folder appears atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rxmrl.atomic import atomic_dir

FORMATS = ("parquet", "jsonl")


def write_snapshot(out: str | Path, tables: dict[str, dict[str, list[dict[str, Any]]]], *,
                   title: str, description: str = "", fmt: str = "parquet", overwrite: bool = False) -> Path:
    """`tables[subset][split]` = rows (dicts). Columns are taken from the first row of each table."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        configs = []
        for subset, splits in tables.items():
            (tmp / subset).mkdir()
            data_files = []
            for split, rows in splits.items():
                path = tmp / subset / f"{split}-00000-of-00001.{fmt}"
                if fmt == "parquet":
                    _write_parquet(path, rows)
                else:
                    _write_jsonl(path, rows)
                data_files.append({"split": split, "path": f"{subset}/{split}-*"})
            configs.append({"config_name": subset, "data_files": data_files})
        (tmp / "README.md").write_text(_readme(configs, title, description), encoding="utf-8")
    return out


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(rows[0]) if rows else []
    schema = pa.schema([(name, _arrow_type(name)) for name in columns])
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path)


def _arrow_type(column: str) -> Any:
    import pyarrow as pa

    if column == "interactions":
        return pa.list_(pa.struct([("query", pa.string()), ("answer", pa.string())]))
    return pa.string()  # query, answer, text, strategy, and facts as a JSON string


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            if isinstance(row.get("facts"), str):
                row = {**row, "facts": json.loads(row["facts"])}  # a JSON object reads better in jsonl
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _readme(configs: list[dict[str, Any]], title: str, description: str) -> str:
    import yaml

    header = yaml.safe_dump({"configs": configs}, sort_keys=False)
    return f"---\n{header}---\n\n# {title}\n\n{description}\n"
