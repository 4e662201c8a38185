"""Tell a Hugging Face Hub id (`owner/name`) from a local path that does not exist.

`runs/x/final` typed with a typo must say "no such folder" at once, not wait on the network for a repo
`runs/x` that nobody has. A name is a Hub id only when it has the `owner/name` shape, does not exist here,
and does not look local: no leading `./`, `../`, `/` or `~`, and its first part is not a local folder.
"""

from __future__ import annotations

import re
from pathlib import Path

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def looks_like_hub_id(name: object) -> bool:
    if not isinstance(name, str) or not _HUB_ID.fullmatch(name):
        return False
    path = Path(name)
    return not path.exists() and not path.parent.exists()
