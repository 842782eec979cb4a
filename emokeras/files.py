"""Writing outputs whole: to a temporary name first, renamed when complete."""

from __future__ import annotations

import json
import os


def write_text(path: str, text: str) -> None:
    """Writes `text` so that a reader never sees half a file."""
    partial = os.path.join(os.path.dirname(path) or ".", "." + os.path.basename(path) + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, path)


def write_json(path: str, content) -> None:
    """Writes `content` as indented JSON with sorted keys (see `write_text`)."""
    write_text(path, json.dumps(content, indent=2, sort_keys=True) + "\n")
