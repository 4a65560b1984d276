"""Write objects in the category layout (nerf-synthetic folders + objects.json), atomically.

Every tool that makes category data (mesh renderer, furniture catalogue, SRN/ABO converters)
ends here, so there is one on-disk format, read by `CategoryDataParser` and, per object, by
nerfstudio's own `blender-data` dataparser:

    ROOT/objects.json                     {"category": ..., "objects": [{"id", "name", ...}]}
    ROOT/<id>/transforms_<split>.json     camera_angle_x, fl_x, fl_y, cx, cy, w, h, frames
    ROOT/<id>/<split>/r_<k>.png           RGBA, transparent background

An object folder appears all at once (written to a temporary sibling, then renamed), so an
interrupted run never leaves a half-written object that looks complete.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hypnerf_ns.files import write_text_atomic


@dataclass
class View:
    """One posed RGBA image."""

    image: np.ndarray
    """[H, W, 4] uint8 RGBA, alpha 0 on the background."""
    camera_to_world: np.ndarray
    """[4, 4] (or [3, 4]) camera-to-world, OpenGL convention: x right, y up, looking down -z."""


def write_object(
    folder: Path, splits: Mapping[str, Sequence[View]], focal: float, cx: float | None = None, cy: float | None = None
) -> None:
    """Write one object folder (all splits) atomically, replacing any previous version.

    Args:
        folder: the object's folder, `ROOT/<id>`.
        splits: views per split name ("train", "val", "test"); all of one image size.
        focal: focal length in pixels (square pixels).
        cx, cy: principal point in pixels; the image centre by default.
    """
    sizes = {view.image.shape for views in splits.values() for view in views}
    if len(sizes) != 1 or len(next(iter(sizes))) != 3 or next(iter(sizes))[2] != 4:
        raise ValueError(f"views of {folder.name} must all be RGBA images of one size, got shapes {sorted(sizes)}")
    height, width, _ = next(iter(sizes))
    cx = width / 2.0 if cx is None else cx
    cy = height / 2.0 if cy is None else cy
    staging = folder.with_name(f".{folder.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    for split, views in splits.items():
        (staging / split).mkdir(parents=True)
        frames: list[dict[str, Any]] = []
        for k, view in enumerate(views):
            Image.fromarray(np.ascontiguousarray(view.image, dtype=np.uint8), "RGBA").save(
                staging / split / f"r_{k}.png"
            )
            pose = np.eye(4)
            pose[:3, :4] = np.asarray(view.camera_to_world, dtype=np.float64)[:3, :4]
            frames.append({"file_path": f"./{split}/r_{k}", "transform_matrix": pose.round(8).tolist()})
        meta = {
            "camera_angle_x": 2.0 * math.atan(0.5 * width / focal),
            "fl_x": focal,
            "fl_y": focal,
            "cx": cx,
            "cy": cy,
            "w": width,
            "h": height,
            "frames": frames,
        }
        (staging / f"transforms_{split}.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)


def write_index(root: Path, category: str, objects: Sequence[Mapping[str, Any]]) -> None:
    """Write `ROOT/objects.json` atomically; each entry needs at least "id" and "name"."""
    for entry in objects:
        if "id" not in entry or "name" not in entry:
            raise ValueError(f"objects.json entries need an id and a name, got {dict(entry)}")
    write_text_atomic(
        root / "objects.json", json.dumps({"category": category, "objects": list(objects)}, indent=1) + "\n"
    )
