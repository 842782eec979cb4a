"""Writing outputs whole: to a temporary name first, renamed when complete."""

from __future__ import annotations

import json
import os


def write_json(path: str, content) -> None:
    """Writes `content` as JSON so that a reader never sees half a file."""
    partial = os.path.join(os.path.dirname(path) or ".", "." + os.path.basename(path) + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(partial, path)
