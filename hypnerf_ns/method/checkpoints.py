"""Let nerfstudio's checkpoints load under torch's `weights_only` default (torch >= 2.6).

nerfstudio 1.1.5 calls `torch.load` without `weights_only`, and its checkpoints hold numpy
float64 scalars (optimizer and scheduler learning rates). Without this, resuming, ns-export,
ns-render and ns-viewer fail on a hyp-nerf checkpoint. Allow exactly those numpy types; the
pipeline does so when it is built, before any checkpoint is loaded (not at import).
"""

from __future__ import annotations

import numpy as np
import torch


def allow_numpy_scalars_in_checkpoints() -> None:
    """Register numpy's scalar reconstructor and dtypes as safe for `torch.load(weights_only=True)`."""
    safe = [np.core.multiarray.scalar, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32))]
    torch.serialization.add_safe_globals(safe)
