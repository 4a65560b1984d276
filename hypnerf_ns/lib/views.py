"""Posed views as data: the pixels of some posed RGBA images as rays, their cameras, image I/O.

Everything that fits, renders or scores a NeRF against images (inversion, finetuning,
retrieval, evaluation) takes `PosedPixels`: one ray per pixel with its colour and view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from PIL import Image
from torch import Tensor

from hypnerf_ns.data.category import ObjectEntry, read_object_views
from hypnerf_ns.errors import InputError


@dataclass
class PosedPixels:
    """Every pixel of some posed RGBA views, as rays.

    Shapes: R = views x height x width rays.
    """

    origins: Tensor
    """[R, 3]"""
    directions: Tensor
    """[R, 3] unit"""
    rgba: Tensor
    """[R, 4] in [0, 1], straight (not premultiplied) colour"""
    view_of_ray: Tensor
    """[R] long: which of the views each ray belongs to."""
    size: tuple[int, int]
    """(height, width) of every view."""
    weight: Tensor | None = None
    """[R] weight of each ray in a fit (all equal if None)."""

    def select(self, index: Tensor) -> PosedPixels:
        weight = None if self.weight is None else self.weight[index]
        return PosedPixels(
            self.origins[index], self.directions[index], self.rgba[index], self.view_of_ray[index], self.size, weight
        )

    def weighted(self, weight: float) -> PosedPixels:
        """The same pixels, each of weight `weight`."""
        return PosedPixels(
            self.origins,
            self.directions,
            self.rgba,
            self.view_of_ray,
            self.size,
            torch.full_like(self.origins[:, 0], weight),
        )

    @property
    def num_views(self) -> int:
        return int(self.view_of_ray.max()) + 1 if len(self.view_of_ray) else 0

    def camera_centres(self) -> Tensor:
        """[V, 3] the origin of each view (pinhole cameras: the origin of its first ray)."""
        first_ray = torch.stack([torch.nonzero(self.view_of_ray == v)[0, 0] for v in range(self.num_views)])
        return self.origins[first_ray]


def join_pixels(first: PosedPixels, second: PosedPixels) -> PosedPixels:
    """The pixels of both (the second's views numbered after the first's); weights 1 where unset."""

    def weight_of(pixels: PosedPixels) -> Tensor:
        return torch.ones_like(pixels.origins[:, 0]) if pixels.weight is None else pixels.weight

    return PosedPixels(
        torch.cat([first.origins, second.origins]),
        torch.cat([first.directions, second.directions]),
        torch.cat([first.rgba, second.rgba]),
        torch.cat([first.view_of_ray, second.view_of_ray + first.num_views]),
        first.size,
        torch.cat([weight_of(first), weight_of(second)]),
    )


def mirrored(pixels: PosedPixels) -> PosedPixels:
    """The views of `pixels` seen in the mirror x -> -x: each a view of the object's mirror image
    from the mirrored camera, rows kept in raster order (the image flipped left-right).

    A category in the project's frame (front -Y, see docs/data.md) is mostly left-right
    symmetric about x = 0, so the mirrored views of an object are nearly views of the object
    itself: one input view becomes two."""
    height, width = pixels.size
    flip = torch.tensor([-1.0, 1.0, 1.0], device=pixels.origins.device)

    def flipped(values: Tensor) -> Tensor:
        return values.reshape(-1, height, width, *values.shape[1:]).flip(2).reshape(values.shape)

    weight = None if pixels.weight is None else flipped(pixels.weight)
    return PosedPixels(
        flipped(pixels.origins) * flip,
        flipped(pixels.directions) * flip,
        flipped(pixels.rgba),
        pixels.view_of_ray,
        pixels.size,
        weight,
    )


def read_rgba(path: Path, size: tuple[int, int]) -> Tensor:
    """An image as RGBA [H, W, 4] in [0, 1] at `size` (height, width), bilinear; opaque if it has no alpha."""
    try:
        with Image.open(path) as image:
            rgba = image.convert("RGBA").resize((size[1], size[0]), Image.Resampling.BILINEAR)
    except OSError:
        raise InputError(path, "not a readable image") from None
    return torch.from_numpy(np.asarray(rgba, dtype=np.float32) / 255.0)


def load_cameras(folder: Path, split: str, views: Sequence[int] | None, scale: float) -> tuple[Cameras, list[Path]]:
    """Cameras of views `views` (all if None) of one object folder, scaled by `scale`, and their image files."""
    object_views = read_object_views(ObjectEntry(folder.name, folder.name, folder), split)
    chosen = list(range(len(object_views.image_filenames))) if views is None else list(views)
    for k in chosen:
        if not 0 <= k < len(object_views.image_filenames):
            raise InputError(
                folder / f"transforms_{split}.json", f"has {len(object_views.image_filenames)} views, no view {k}"
            )
    cameras = Cameras(
        camera_to_worlds=torch.from_numpy(object_views.camera_to_worlds[chosen]).float(),
        fx=object_views.fx,
        fy=object_views.fy,
        cx=object_views.cx,
        cy=object_views.cy,
        width=object_views.width,
        height=object_views.height,
        camera_type=CameraType.PERSPECTIVE,
    )
    cameras.rescale_output_resolution(scale)
    return cameras, [object_views.image_filenames[k] for k in chosen]


def pixels_of(cameras: Cameras, rgba: Tensor | None, device: torch.device) -> PosedPixels:
    """Every pixel of C cameras of one size as rays, with colours `rgba` [C, H, W, 4] (zeros if None)."""
    height, width = int(cameras.height[0]), int(cameras.width[0])
    origins, directions = [], []
    for i in range(len(cameras)):
        bundle = cameras.generate_rays(camera_indices=i)
        origins.append(bundle.origins.reshape(-1, 3))
        directions.append(bundle.directions.reshape(-1, 3))
    rgba = torch.zeros(len(cameras), height, width, 4) if rgba is None else rgba
    view_of_ray = torch.arange(len(cameras)).repeat_interleave(height * width)
    return PosedPixels(
        torch.cat(origins).to(device),
        torch.cat(directions).to(device),
        rgba.reshape(-1, 4).to(device),
        view_of_ray.to(device),
        (height, width),
    )


def load_posed_pixels(
    folder: Path, split: str, views: Sequence[int] | None, scale: float, device: torch.device, mirror: bool = False
) -> PosedPixels:
    """Rays and colours of views `views` (all if None) of one object folder, images scaled by
    `scale`; with `mirror`, each view's mirror image (`mirrored`) joined after them."""
    cameras, files = load_cameras(folder, split, views, scale)
    size = (int(cameras.height[0]), int(cameras.width[0]))
    pixels = pixels_of(cameras, torch.stack([read_rgba(file, size) for file in files]), device)
    return join_pixels(pixels, mirrored(pixels)) if mirror else pixels


def on_white(rgba: Tensor) -> Tensor:
    """[..., 4] RGBA -> [..., 3] RGB composited on white."""
    return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])


def write_renders(rgb: Tensor, size: tuple[int, int], folder: Path) -> None:
    """Rendered colours [V * H * W, 3] of V views of `size` (height, width) as test_<k>.png in `folder`."""
    height, width = size
    images = (rgb.reshape(-1, height, width, 3).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for k, image in enumerate(images):
        Image.fromarray(image).save(folder / f"test_{k}.png")
