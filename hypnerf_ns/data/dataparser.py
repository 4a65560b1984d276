"""Category dataparser: a folder of objects, each a nerf-synthetic (Blender) scene.

    ROOT/objects.json                      optional: {"objects": [{"id", "name", ...}, ...]}
    ROOT/<id>/transforms_{train,val,test}.json
    ROOT/<id>/<file_path>.png              RGBA, transparent background

All views of all objects become one nerfstudio dataset, object after object; every camera
carries its object's index in `cameras.metadata["object_index"]`, which reaches the model in
`RayBundle.metadata`. Object ids and names travel in the dataparser outputs' metadata.

This module imports dataparser code only (nerfstudio's registry imports it early).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple, Type

import numpy as np
import torch
from PIL import Image
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.plugins.registry_dataparser import DataParserSpecification

from hypnerf_ns.errors import HypnerfError, InputError


@dataclass
class ObjectEntry:
    """One object of the category."""

    id: str
    name: str
    folder: Path


@dataclass
class ObjectViews:
    """The views of one object in one split."""

    image_filenames: List[Path]
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


def list_objects(root: Path) -> List[ObjectEntry]:
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
        objects = [ObjectEntry(str(e["id"]), str(e.get("name", e["id"])), root / str(e["id"])) for e in entries]
        for entry in objects:
            if not entry.folder.is_dir():
                raise InputError(entry.folder, f"object {entry.id!r} listed in {index_file.name} has no folder")
    else:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        objects = [ObjectEntry(p.name, p.name, p) for p in folders]
    if not objects:
        raise InputError(root, "no objects (expected one sub-folder per object, each with transforms_train.json)")
    return objects


def read_object_views(entry: ObjectEntry, split: str) -> ObjectViews:
    """Cameras and image files of one object's split, checked: the files exist, the first is a readable
    image (its size is the split's; reading every image header costs minutes for thousands of
    objects, so the others' sizes are checked where they are read, and by `hypnerf-ns data check`)."""
    transforms_file = entry.folder / f"transforms_{split}.json"
    meta = read_json(transforms_file)
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not isinstance(frames, list) or not frames:
        raise InputError(transforms_file, "no frames")
    filenames: List[Path] = []
    poses: List[np.ndarray] = []
    size: Tuple[int, int] | None = None
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


def split_holdout(objects: List[ObjectEntry], every: int) -> Tuple[List[ObjectEntry], List[ObjectEntry]]:
    """(training objects, held-out objects): every `every`-th object is held out; none if 0."""
    if every < 0 or every == 1:
        raise HypnerfError(f"holdout_every must be 0 (keep all) or at least 2, got {every}")
    held = {k for k in range(len(objects)) if every and k % every == every - 1}
    return [o for k, o in enumerate(objects) if k not in held], [o for k, o in enumerate(objects) if k in held]


DEFAULT_DATA = Path("data/chairs")
"""The default category, prepared on first use (`prepare_default_category`)."""


def prepare_default_category(root: Path) -> None:
    """Render the default chairs (Debian's sweethome3d-furniture, CC0 / CC-BY) into `root`.

    Runs when the default data is asked for and its objects.json is missing; object folders
    already rendered are kept, so an interrupted preparation resumes.
    """
    from rich.console import Console

    from hypnerf_ns.data.furniture import Furniture

    Console().print(
        f"[bold]No category at {root}: preparing the default one[/bold] (real chairs from Debian's "
        "sweethome3d-furniture, CC0 / CC-BY), once; a few minutes on a CPU. "
        "Use --data ROOT for your own category."
    )
    Furniture(output=root, category="chair").main()


@dataclass
class CategoryDataParserConfig(DataParserConfig):
    """A category: one sub-folder per object, each in nerf-synthetic layout."""

    _target: Type = field(default_factory=lambda: CategoryDataParser)
    data: Path = DEFAULT_DATA
    """Category root: one sub-folder per object, optional objects.json (default: prepared on first use)."""
    aabb_half_size: float = 0.5
    """Objects lie in [-s, s]^3 (nerf-synthetic scale of the category tooling: s = 0.5)."""
    holdout_every: int = 0
    """Leave out every N-th object (list positions N-1, 2N-1, ...) for generalization tests; 0 keeps all."""


class CategoryDataParser(DataParser):
    """All objects' views in one dataset, each camera tagged with its object."""

    config: CategoryDataParserConfig

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs: Any) -> DataparserOutputs:
        root = Path(self.config.data)
        if root == DEFAULT_DATA and not (root / "objects.json").is_file():
            prepare_default_category(root)
        objects, _ = split_holdout(list_objects(root), self.config.holdout_every)
        filenames: List[Path] = []
        poses, fx, fy, cx, cy, widths, heights, object_index = [], [], [], [], [], [], [], []
        for index, entry in enumerate(objects):
            views = read_object_views(entry, split)
            if heights and (views.width, views.height) != (widths[0], heights[0]):
                raise InputError(
                    views.image_filenames[0],
                    f"{views.width}x{views.height} images, but {objects[0].id} has {widths[0]}x{heights[0]}: "
                    "all objects of a category must share one image size",
                )
            n = len(views.image_filenames)
            filenames += views.image_filenames
            poses.append(views.camera_to_worlds)
            fx += [views.fx] * n
            fy += [views.fy] * n
            cx += [views.cx] * n
            cy += [views.cy] * n
            widths += [views.width] * n
            heights += [views.height] * n
            object_index += [index] * n

        def column(values: List[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32)[:, None]

        cameras = Cameras(
            camera_to_worlds=torch.from_numpy(np.concatenate(poses)).float(),
            fx=column(fx),
            fy=column(fy),
            cx=column(cx),
            cy=column(cy),
            width=torch.tensor(widths)[:, None],
            height=torch.tensor(heights)[:, None],
            camera_type=CameraType.PERSPECTIVE,
            metadata={"object_index": torch.tensor(object_index, dtype=torch.long)[:, None]},
        )
        s = self.config.aabb_half_size
        metadata: Dict[str, Any] = {
            "object_ids": [o.id for o in objects],
            "object_names": [o.name for o in objects],
            "object_index_of_image": object_index,
        }
        return DataparserOutputs(
            image_filenames=filenames,
            cameras=cameras,
            scene_box=SceneBox(aabb=torch.tensor([[-s, -s, -s], [s, s, s]], dtype=torch.float32)),
            metadata=metadata,
        )


category_dataparser = DataParserSpecification(
    config=CategoryDataParserConfig(),
    description="Category of objects, one nerf-synthetic folder each (hypnerf-ns)",
)
