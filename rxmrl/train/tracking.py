"""Where training metrics go: TensorBoard event files and `metrics.jsonl` in the run folder.

Metric names follow TRL's style (`reward/mean`, `policy/clip_ratio`, `value/loss`, ...). `metrics.jsonl` holds
one `{"step": N, "name": value, ...}` object per `log` call, so tests, plots and people can read a run
without TensorBoard. Only one process (rank 0) should write: pass `enabled=False` elsewhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"


class Tracker:
    def __init__(self, run_dir: str | Path, *, enabled: bool = True, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._writer = None
        self._file = None
        if enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            path = self.run_dir / METRICS_FILE
            cut = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
            self._file = path.open("a", encoding="utf-8")
            if cut:  # a kill mid-line: end that line, so the next row starts on its own
                self._file.write("\n")
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        if not self.enabled:
            return
        clean = {k: _to_float(v) for k, v in metrics.items()}
        if self._writer is not None:
            for name, value in clean.items():
                if value is not None and math.isfinite(value):
                    self._writer.add_scalar(name, value, step)
        self._file.write(json.dumps({"step": step, **clean}) + "\n")
        self._file.flush()

    def text(self, tag: str, text: str, step: int) -> None:
        """A sample of generated text, for eyeballing in TensorBoard."""
        if self.enabled and self._writer is not None:
            self._writer.add_text(tag, text, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All logged rows of a run, in order. After a resume, a step logged twice keeps its last row."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    rows: dict[tuple[int, tuple[str, ...]], dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue  # a row cut short by a kill
        if isinstance(row, dict) and "step" in row:
            rows[(row["step"], tuple(sorted(row)))] = row
    return list(rows.values())


def _to_float(value: Any) -> float | None:
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    return float(value)
