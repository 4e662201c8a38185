"""What every benchmark's JSON shares: a description of the machine it ran on, and how the file is written."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from rxmrl.atomic import atomic_write_text


def machine_info(device: Any = "cpu") -> dict[str, Any]:
    """The machine, torch build and thread count; the load average because other jobs skew timings."""
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def write_json(path: str | Path, data: Any) -> None:
    path = atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")
