"""Files appear whole or not at all.

Every result the tools write (checkpoint-like payloads, meshes, videos, images, JSON) goes
through a temporary sibling that is renamed over the target once complete, so an interrupted or
failed run leaves the previous file, never half of a new one.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to (same suffix, for writers that choose the format
    by name); renamed over `path` when the block ends normally, removed when it raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
