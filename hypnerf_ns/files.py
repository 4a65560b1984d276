"""Files appear whole or not at all, and files we wrote are read back safely.

Every result the tools write (latents, NeRFs, denoisers, meshes, videos, images, JSON) goes
through a temporary sibling that is renamed over the target once complete, so an interrupted or
failed run leaves the previous file, never half of a new one. Our torch files are dicts tagged
with a format name and version, read back with `weights_only=True`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from hypnerf_ns.errors import InputError


def partial_name(path: Path) -> str:
    """The name `atomic_output` gives the temporary file of `path` in this process."""
    return f".{path.stem}.partial-{os.getpid()}{path.suffix}"


@contextmanager
def atomic_output(path: Path, staging: Path | None = None) -> Iterator[Path]:
    """A temporary path to write to (same suffix, for writers that choose the format by name);
    renamed over `path` when the block ends normally, removed when it raises. It lies beside
    `path`, or in `staging` (same file system) for folders whose readers list every file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = (staging or path.parent) / partial_name(path)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def save_torch_atomic(payload: dict[str, Any], path: Path, staging: Path | None = None) -> None:
    """torch.save through a temporary file and a rename: readers see the old file or the new, never half."""
    with atomic_output(path, staging) as temporary:
        torch.save(payload, temporary)


def load_torch_payload(path: Path, file_format: str, version: int, what: str) -> dict[str, Any]:
    """The dict of a file written by `save_torch_atomic` with {"format": file_format, "version":
    version}, read with weights_only; InputError naming the file if it is missing or something else."""
    if not path.is_file():
        raise InputError(path, f"no such {what} file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for non-torch files
        raise InputError(path, f"not a {what} file ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != file_format:
        raise InputError(path, f"not a hypnerf-ns {what} file")
    if payload.get("version") != version:
        raise InputError(path, f"{what} file version {payload.get('version')}, this hypnerf-ns reads version {version}")
    return payload
