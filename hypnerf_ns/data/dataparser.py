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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.plugins.registry_dataparser import DataParserSpecification

from hypnerf_ns.data.category import list_objects, read_object_views, split_holdout
from hypnerf_ns.errors import InputError

DEFAULT_DATA = Path("data/chairs")
"""The default category, prepared on first use (`prepare_default_category`)."""


@dataclass
class CategoryDataParserConfig(DataParserConfig):
    """A category: one sub-folder per object, each in nerf-synthetic layout."""

    _target: type = field(default_factory=lambda: CategoryDataParser)
    data: Path = DEFAULT_DATA
    """Category root: one sub-folder per object, optional objects.json (the default is prepared on first
    use by the datamanager: `hypnerf_ns.data.furniture.prepare_default_category`)."""
    aabb_half_size: float = 0.5
    """Objects lie in [-s, s]^3 (nerf-synthetic scale of the category tooling: s = 0.5)."""
    holdout_every: int = 0
    """Leave out every N-th object (list positions N-1, 2N-1, ...) for generalization tests; 0 keeps all."""


class CategoryDataParser(DataParser):
    """All objects' views in one dataset, each camera tagged with its object."""

    config: CategoryDataParserConfig

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs: Any) -> DataparserOutputs:
        root = Path(self.config.data)
        objects, _ = split_holdout(list_objects(root), self.config.holdout_every)
        filenames: list[Path] = []
        poses, fx, fy, cx, cy, object_index = [], [], [], [], [], []
        widths: list[int] = []
        heights: list[int] = []
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

        def column(values: list[float]) -> torch.Tensor:
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
        metadata: dict[str, Any] = {
            "object_ids": [o.id for o in objects],
            "object_names": [o.name for o in objects],
            "object_weights": [o.weight for o in objects],
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
