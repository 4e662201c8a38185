"""Refuse, before allocating, a model whose weights cannot fit in this machine's memory.

A config with `vocab_size = 10000000000` would otherwise start allocating tens of gigabytes and end in the
kernel's OOM killer (or a swapping machine) rather than in an error message. The check is a cheap lower
bound, so it never refuses a model that fits: the shared embedding and the decoder's LM head, each
`vocab_size x dim`, against the machine's physical memory.
"""

from __future__ import annotations

import os
from typing import Any

from rxmrl.errors import ConfigError

_FLOAT32_BYTES = 4


def physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system that reports it: no check
        return None


def check_fits_in_memory(config: Any) -> None:
    """ConfigError naming the sizes when the weights of `config` cannot fit in physical memory."""
    limit = physical_memory_bytes()
    if limit is None:
        return
    needed = 2 * config.vocab_size * config.dim * _FLOAT32_BYTES
    if needed > limit:
        raise ConfigError(f"model '{config.name}': vocab_size {config.vocab_size:,} x dim {config.dim:,} needs at "
                          f"least {needed / 2**30:,.1f} GiB for the embedding and LM head alone, more than this "
                          f"machine's {limit / 2**30:,.1f} GiB; check the sizes in the config")
