"""`hypnerf-ns data abo`: Amazon Berkeley Objects renders, as HyP-NeRF trains on them -> a category folder.

Input, one folder per object (named by its ABO item id, e.g. B07B4GVN1Q):

    DIR/<object>/metadata.json                   {"views": [{"K": ..., "pose": ...}, ...], "envs": [...]}
    DIR/<object>/render/<env>/render_<i>.jpg     RGB render of view i under environment map <env>
    DIR/<object>/segmentation/segmentation_<i>.jpg   object mask of view i (255 = object)
    (also depth/, normal/, base_color/, metallic_roughness/: not used)

Schema and sources:
- HyP-NeRF's official loader (hyp-nerf/HyP-NeRF `nerf/provider_abo.py`) reads exactly this:
  `metadata.json` -> `views[i]["pose"]` reshaped to 4x4; the image of view i is
  `render/0/render_<i>.jpg`, falling back to `render/1`, then `render/2`; the alpha channel is
  `segmentation/segmentation_<i>.jpg`; H = W = 512; with no intrinsics at the top level it uses a
  focal length of 443.40496826171875 px (a 60 degree field of view at 512 px). It treats the pose as
  a NeRF (Blender/OpenGL) camera-to-world, converting it with instant-ngp's `nerf_matrix_to_ngp`
  (made for Blender's Z-up world) with `--scale 0.33` (`main_nerf.py` default), and crops the
  NeRF to [-0.5, 0.5]^3 when rendering (`main_nerf.py --test`). It picks a category's objects by
  the `product_type` of their ABO listing (`--class_choice chair`).
- These folders are the ABO "abo-benchmark-material" archive (ABO README:
  `archives/abo-benchmark-material.tar`, the Material Prediction benchmark of the CVPR 2022
  paper), not `abo-release-renders.zip` of jazcollins/amazon-berkeley-objects (30 Blender views
  per object with a nerf-synthetic-like transforms.json, which has no metadata.json).
- `K` is a 3x3 matrix stored as 9 numbers, row-major, at the render resolution. Two public
  loaders found by code search (repositories not identified): an `ABODataset` (Google LLC
  copyright) reads `views[0]["K"]` reshaped to 3x3, hard-codes [[443.405, 0, 256], [0, 443.405,
  256], [0, 0, 1]] for 512 px and uses 91 views per environment, `render/<env>/render_<i>.jpg`,
  `depth/depth_<i>.exr`, `normal/normal_<i>.png`; an ABO-tables-to-SRN converter reads f, cx, cy
  as K[0], K[2], K[5]. `metadata.json` also lists the environment maps under "envs"
  (ansh941/abo-dataset-material `datasets/abo.py`).
- `pose` is 16 numbers (a 4x4 camera-to-world) in the OpenGL camera convention (x right, y up,
  looking down -z): besides HyP-NeRF's use, the tables converter negates its y and z columns
  ("abo has a different definition of camera coordinate system") to reach SRN's OpenCV one.
- The masks are JPEGs, so not exactly 0/255: the tables converter snaps values <= 1 to 0 and
  >= 254 to 255; here `mask_snap` does the same with a wider margin.

Defaults: `up="z"` (the poses live in Blender's Z-up world, which is what HyP-NeRF's
`nerf_matrix_to_ngp` assumes), `scale=0.33` (HyP-NeRF's own factor on the ABO camera
translations, after which its objects fit the [-0.5, 0.5]^3 crop it renders with, i.e. our box).
Every object is also checked against the box from its silhouettes and reported with a fitting
`--scale` if it sticks out. Use `ids` to convert one category (e.g. the item ids of the chairs).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from hypnerf_ns.data.category import read_json
from hypnerf_ns.data.srn import (
    CONSOLE,
    ObjectData,
    check_options,
    check_same_size,
    convert_category,
    load_image,
    object_folders,
    to_category_frame,
)
from hypnerf_ns.data.writer import View
from hypnerf_ns.errors import InputError

METADATA_SCHEMA = '{"views": [{"K": [9 numbers], "pose": [16 numbers]}, ...]}'


def read_metadata(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(K [3, 3], camera-to-world [4, 4]) of every view listed in an ABO metadata.json."""
    meta = read_json(path)
    try:
        views = [
            (np.asarray(v["K"], dtype=np.float64).reshape(3, 3), np.asarray(v["pose"], dtype=np.float64).reshape(4, 4))
            for v in meta["views"]
        ]
    except (KeyError, TypeError, ValueError):
        raise InputError(path, f"expected {METADATA_SCHEMA}") from None
    if not views:
        raise InputError(path, "no views")
    if not all(np.isfinite(k).all() and np.isfinite(pose).all() for k, pose in views):
        raise InputError(path, "K and pose must be finite numbers")
    return views


def shared_intrinsics(path: Path, matrices: list[np.ndarray]) -> tuple[float, float, float]:
    """(focal, cx, cy) of the object's views, which must share one K ([3, 3]) with square pixels."""
    k = matrices[0]
    if not all(np.allclose(m, k, rtol=1e-5) for m in matrices):
        raise InputError(path, "views have different intrinsics (K); one per object is supported")
    if not (k[0, 0] > 0 and np.isclose(k[0, 0], k[1, 1], rtol=1e-5) and k[0, 1] == 0):
        raise InputError(path, f"K must have one positive focal length and no skew, got {k.tolist()}")
    return float(k[0, 0]), float(k[0, 2]), float(k[1, 2])


def render_folder(folder: Path, environment: int | None) -> Path:
    """`render/<environment>`, or by default the lowest-numbered one present (as HyP-NeRF falls back 0, 1, 2)."""
    if environment is not None:
        chosen = folder / "render" / str(environment)
        if not chosen.is_dir():
            raise InputError(chosen, "missing folder")
        return chosen
    present = sorted(
        (p for p in (folder / "render").glob("*") if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    )
    if not present:
        raise InputError(folder / "render", "missing, or no numbered environment folders in it")
    return present[0]


def abo_rgba(render: Path, mask: Path, mask_snap: int) -> np.ndarray:
    """[H, W, 4] uint8: the render's RGB with the segmentation mask as alpha, near-0/255 values snapped."""
    rgb = np.asarray(load_image(render, "RGB"))  # [H, W, 3]
    alpha = np.asarray(load_image(mask, "L"))  # [H, W]
    if alpha.shape != rgb.shape[:2]:
        raise InputError(
            mask, f"mask is {alpha.shape[1]}x{alpha.shape[0]} but its render is {rgb.shape[1]}x{rgb.shape[0]}"
        )
    alpha = np.where(alpha <= mask_snap, 0, np.where(alpha >= 255 - mask_snap, 255, alpha))
    return np.dstack([rgb, alpha]).astype(np.uint8)


def load_abo_object(folder: Path, environment: int | None, up: str, scale: float, mask_snap: int) -> ObjectData:
    """All views of one ABO object in our world."""
    metadata_path = folder / "metadata.json"
    metadata = read_metadata(metadata_path)
    focal, cx, cy = shared_intrinsics(metadata_path, [k for k, _ in metadata])
    renders = render_folder(folder, environment)
    views: list[View] = []
    for i, (_, pose) in enumerate(metadata):
        render = renders / f"render_{i}.jpg"
        image = abo_rgba(render, folder / "segmentation" / f"segmentation_{i}.jpg", mask_snap)
        check_same_size(render, image, views)
        views.append(View(image, to_category_frame(pose, up, scale)))
    return ObjectData(views, focal, cx, cy)


def read_ids(path: Path) -> list[str]:
    """Object ids listed in a text file, one per line (blank lines and `#` comments ignored)."""
    if not path.is_file():
        raise InputError(path, "missing")
    ids = [line.split("#")[0].strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    ids = [i for i in ids if i]
    if not ids:
        raise InputError(path, "lists no object ids")
    return ids


@dataclass
class ConvertABO:
    """Convert ABO renders (<obj>/metadata.json, render/, segmentation/: the layout HyP-NeRF reads) into a category
    folder."""

    input: Path
    """ABO render folder: one sub-folder per object, named by item id."""
    output: Path
    """Category root to write (one nerf-synthetic folder per object + objects.json)."""
    category: str = "abo"
    """Category name stored in objects.json."""
    ids: Path | None = None
    """Text file of the object ids to convert, one per line (e.g. the chairs); all sub-folders by default."""
    environment: int | None = None
    """Environment map (render/<n>) to take the images from; the lowest-numbered present by default."""
    up: Literal["y", "z"] = "z"
    """Up axis of the input world; ABO poses are in Blender's Z-up world. "y" rotates Y-up to Z-up."""
    scale: float = 0.33
    """Factor on the camera translations; 0.33 is HyP-NeRF's for ABO (its objects then fit [-0.5, 0.5]^3). Objects
    that stick out are reported with a scale that fits."""
    mask_snap: int = 8
    """JPEG masks: values within this of 0 or 255 become exactly 0 or 255."""
    test_every: int = 8
    """Views 0, n, 2n, ... of each object (in metadata order) go to the test split."""
    val_every: int = 8
    """Of the other views, the 1st, (n+1)-th, ... go to the val split; the rest to train."""

    def main(self) -> None:
        """Convert the selected object folders of `input` into `output`."""
        check_options(self.scale, self.test_every, self.val_every)
        folders = object_folders(self.input)
        if self.ids is not None:
            folders = [self.input / i for i in read_ids(self.ids)]
        load = functools.partial(
            load_abo_object, environment=self.environment, up=self.up, scale=self.scale, mask_snap=self.mask_snap
        )
        ids = convert_category(
            folders, load, self.output, self.category, "abo", self.test_every, self.val_every, self.scale
        )
        CONSOLE.print(f"{len(ids)} of {len(folders)} objects written to {self.output}")
