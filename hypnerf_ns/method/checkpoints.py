"""nerfstudio checkpoints (`nerfstudio_models/step-*.ckpt`): written whole, read back safely.

nerfstudio writes a checkpoint straight to its final name and, on resume, takes the highest
step; a process killed mid-save leaves a truncated newest checkpoint that stops every later
resume. Our Trainer writes through a temporary file staged outside the checkpoint folder
(nerfstudio parses the name of every file in it) and resumes from the newest *complete* one.

nerfstudio 1.1.5 also calls `torch.load` without `weights_only`, and its checkpoints hold numpy
float64 scalars (optimizer and scheduler learning rates): `allow_numpy_scalars_in_checkpoints`
lets them load under torch's `weights_only` default (torch >= 2.6).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from hypnerf_ns.errors import InputError

CHECKPOINT_NAME = re.compile(r"step-(\d+)\.ckpt")


def numpy_multiarray() -> ModuleType:
    """numpy's `multiarray` module without a deprecation warning: `numpy._core` (numpy >= 2, and an
    alias in 1.26) where it exists, else `numpy.core` (`np.core` warns from numpy 2 on)."""
    name = "numpy._core" if importlib.util.find_spec("numpy._core") is not None else "numpy.core"
    return importlib.import_module(f"{name}.multiarray")


def allow_numpy_scalars_in_checkpoints() -> None:
    """Register numpy's scalar reconstructor and dtypes as safe for `torch.load(weights_only=True)`."""
    scalar = numpy_multiarray().scalar  # pickle's reconstructor of numpy scalars
    safe = [scalar, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32))]
    torch.serialization.add_safe_globals(safe)


def checkpoint_path(folder: Path, step: int) -> Path:
    """nerfstudio's name for the checkpoint of `step`."""
    return folder / f"step-{step:09d}.ckpt"


def checkpoint_steps(folder: Path) -> list[int]:
    """Steps of the checkpoints in `folder`, oldest first (other files ignored)."""
    if not folder.is_dir():
        return []
    matches = (CHECKPOINT_NAME.fullmatch(entry.name) for entry in folder.iterdir())
    return sorted(int(match.group(1)) for match in matches if match)


def is_complete(path: Path) -> bool:
    """Whether a torch checkpoint file is whole: torch saves a zip archive, whose directory is
    written last, so a truncated or empty file does not open."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def newest_complete_step(folder: Path, warn: Callable[[str], None]) -> int:
    """The step of the newest complete checkpoint in `folder`; `warn` gets one line per newer
    checkpoint skipped. InputError naming the folder when there is none."""
    for step in reversed(checkpoint_steps(folder)):
        path = checkpoint_path(folder, step)
        if is_complete(path):
            return step
        warn(f"skipping {path}: truncated or unreadable (an interrupted save?)")
    raise InputError(folder, "no complete checkpoint (step-*.ckpt) in this folder")
