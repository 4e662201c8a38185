"""What a resume may change: the learning rates of the MRL stages, nothing else.

A run that stopped on non-finite updates says "lower the learning rates, then resume"; that has to be
possible without giving up the run. Everything else a checkpoint depends on (data, model, seeds, the reward)
is fixed for the run's life, because a resumed run must be the run it continues.

    rxmrl train --resume RUN_DIR --set stage.*.lr.decoder=1e-5 --set stage.0.lr.critic=1e-4

The new values are written into `RUN_DIR/curriculum.json` (the record of what the run now uses) and each
iteration's `train/lr/<group>` metrics show them from the resume on.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from rxmrl.errors import ConfigError
from rxmrl.recipes.curriculum_config import (RESOLVED_FILE, CurriculumConfig, apply_overrides, curriculum_from_dict,
                                             save_resolved)

_LR_KEY = re.compile(r"^stage\.(\*|\d+)\.lr\.(decoder|encoder|memory_attention|critic)$")


def check_resume_overrides(items: list[str]) -> None:
    """Refuse any `--set` on a resume that is not a stage learning rate."""
    for item in items:
        key = item.partition("=")[0].strip()
        if not _LR_KEY.match(key):
            raise ConfigError(f"--set {item}: a resume may change only learning rates (stage.N.lr.decoder, "
                              f".encoder, .memory_attention, .critic; N or *); the rest of the run is fixed, so "
                              f"start a new --out to change it")


def resume_with_learning_rates(run_dir: str | Path, items: list[str]) -> CurriculumConfig:
    """The run's resolved curriculum with the `--set` learning rates applied, validated and recorded."""
    from rxmrl.config import parse_overrides, to_dict

    check_resume_overrides(items)
    path = Path(run_dir) / RESOLVED_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    updated = apply_overrides(raw, parse_overrides(items), source=f"{path} (resume)")
    config = curriculum_from_dict(updated, source=f"{path} (resume --set)")
    if to_dict(config) != raw:
        save_resolved(config, run_dir)
        print(f"rxmrl: resuming with changed learning rates ({', '.join(items)}); recorded in {path}", file=sys.stderr)
    return config
