"""The on-disk category layout, read: which objects a category root holds and their views.

    ROOT/objects.json                      optional: {"category": ..., "objects": [{"id", "name", ...}, ...]}
                                           an entry may name its "folder" (relative to ROOT, or absolute;
                                           default ROOT/<id>) and a sampling "weight" (default 1)
    ROOT/<id>/transforms_{train,val,test}.json
    ROOT/<id>/<file_path>.png              RGBA, transparent background

(`writer.py` is the writing side.) Every reader of category data (the dataparser, the tools,
the evaluation) lists objects and reads views here, with one-line errors naming the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hypnerf_ns.errors import HypnerfError, InputError


@dataclass
class ObjectEntry:
    """One object of the category."""

    id: str
    name: str
    folder: Path
    weight: float = 1.0
    """How often training batches draw this object, relative to the others (objects.json "weight")."""


@dataclass
class ObjectViews:
    """The views of one object in one split."""

    image_filenames: list[Path]
    camera_to_worlds: np.ndarray  # [N, 3, 4] OpenGL convention
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int


def read_json(path: Path) -> Any:
    """Parsed JSON, or an InputError naming the file."""
    if not path.is_file():
        raise InputError(path, "missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(path, f"malformed JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    except UnicodeDecodeError:
        raise InputError(path, "not a UTF-8 text file") from None


def list_objects(root: Path) -> list[ObjectEntry]:
    """Objects of a category root: as listed in objects.json, else its sorted sub-folders."""
    if not root.exists():
        raise InputError(root, "no such folder")
    if not root.is_dir():
        raise InputError(root, "not a folder")
    index_file = root / "objects.json"
    if index_file.exists():
        listing = read_json(index_file)
        entries = listing.get("objects") if isinstance(listing, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "id" in e for e in entries):
            raise InputError(index_file, 'expected {"objects": [{"id": ..., "name": ...}, ...]}')
        objects = [listed_object(root, index_file, entry) for entry in entries]
        seen = set()
        for entry in objects:
            if entry.id in seen:
                raise InputError(index_file, f"object id {entry.id!r} is listed twice")
            seen.add(entry.id)
            if not entry.folder.is_dir():
                raise InputError(entry.folder, f"object {entry.id!r} listed in {index_file.name} has no folder")
    else:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        objects = [ObjectEntry(p.name, p.name, p) for p in folders]
    if not objects:
        raise InputError(root, "no objects (expected one sub-folder per object, each with transforms_train.json)")
    return objects


def listed_object(root: Path, index_file: Path, entry: dict[str, Any]) -> ObjectEntry:
    """One objects.json entry: its folder (ROOT/<id> unless "folder" names another) and weight."""
    object_id = str(entry["id"])
    folder = root / str(entry.get("folder", object_id))
    try:
        weight = float(entry.get("weight", 1.0))
    except (TypeError, ValueError):
        weight = float("nan")
    if not math.isfinite(weight) or weight <= 0:
        raise InputError(
            index_file, f"object {object_id!r}: weight must be a positive number, got {entry.get('weight')!r}"
        )
    return ObjectEntry(object_id, str(entry.get("name", object_id)), folder, weight)


def read_object_views(entry: ObjectEntry, split: str) -> ObjectViews:
    """Cameras and image files of one object's split, checked: the files exist, the first is a readable
    image (its size is the split's; reading every image header costs minutes for thousands of
    objects, so the others' sizes are checked where they are read, and by `hypnerf-ns data check`)."""
    transforms_file = entry.folder / f"transforms_{split}.json"
    meta = read_json(transforms_file)
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not isinstance(frames, list) or not frames:
        raise InputError(transforms_file, "no frames")
    filenames: list[Path] = []
    poses: list[np.ndarray] = []
    size: tuple[int, int] | None = None
    for k, frame in enumerate(frames):
        try:
            name = str(frame["file_path"])
            pose = np.asarray(frame["transform_matrix"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            raise InputError(transforms_file, f"frame {k} needs file_path and a 4x4 transform_matrix") from None
        if pose.shape != (4, 4) or not np.isfinite(pose).all():
            raise InputError(transforms_file, f"frame {k}: transform_matrix must be a finite 4x4 matrix")
        path = (entry.folder / name).resolve()
        if path.suffix.lower() != ".png":
            path = path.with_name(path.name + ".png")
        if not path.is_file():
            raise InputError(path, f"image missing (frame {k} of {transforms_file.name})")
        if size is None:
            try:
                with Image.open(path) as image:
                    size = image.size
            except OSError:
                raise InputError(path, "not a readable image") from None
        filenames.append(path)
        poses.append(pose[:3, :4])
    assert size is not None
    width, height = size
    if "fl_x" in meta:
        fx, fy = float(meta["fl_x"]), float(meta.get("fl_y", meta["fl_x"]))
    elif "camera_angle_x" in meta:
        fx = fy = 0.5 * width / float(np.tan(0.5 * float(meta["camera_angle_x"])))
    else:
        raise InputError(transforms_file, "needs camera_angle_x (or fl_x) for the intrinsics")
    cx, cy = float(meta.get("cx", width / 2.0)), float(meta.get("cy", height / 2.0))
    return ObjectViews(filenames, np.stack(poses), fx, fy, cx, cy, width, height)


def split_holdout(objects: list[ObjectEntry], every: int) -> tuple[list[ObjectEntry], list[ObjectEntry]]:
    """(training objects, held-out objects): every `every`-th object is held out; none if 0."""
    if every < 0 or every == 1:
        raise HypnerfError(f"holdout_every must be 0 (keep all) or at least 2, got {every}")
    held = {k for k in range(len(objects)) if every and k % every == every - 1}
    return [o for k, o in enumerate(objects) if k not in held], [o for k, o in enumerate(objects) if k in held]
