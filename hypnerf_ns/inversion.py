"""Fit the prior to posed images of an object: pick the best starting code, then optimise it.

The hypernetwork stays frozen; only the object's shape and colour codes move. Starting codes
are chosen by analysis-by-synthesis rather than a learnt image encoder: every training
object's code (and the mean code) renders a few thousand of the input pixels, and the code with
the lowest photometric error wins. That needs no extra network or weights (none can be
downloaded here), is exact rather than amortised, and costs one batched render (about 2 s for
36 objects on a 2-core CPU); it grows linearly with the number of training objects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.cameras.rays import RayBundle

from hypnerf_ns.data.dataparser import ObjectEntry, read_object_views
from hypnerf_ns.errors import InputError
from hypnerf_ns.hypernetwork import Codes, NeRFParams
from hypnerf_ns.model import HypNeRFModel


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
    size: Tuple[int, int]
    """(height, width) of every view."""
    weight: Optional[Tensor] = None
    """[R] weight of each ray in a fit (all equal if None)."""

    def select(self, index: Tensor) -> "PosedPixels":
        weight = None if self.weight is None else self.weight[index]
        return PosedPixels(self.origins[index], self.directions[index], self.rgba[index], self.view_of_ray[index], self.size, weight)

    def weighted(self, weight: float) -> "PosedPixels":
        """The same pixels, each of weight `weight`."""
        return PosedPixels(self.origins, self.directions, self.rgba, self.view_of_ray, self.size, torch.full_like(self.origins[:, 0], weight))

    @property
    def num_views(self) -> int:
        return int(self.view_of_ray.max()) + 1 if len(self.view_of_ray) else 0


def join_pixels(first: PosedPixels, second: PosedPixels) -> PosedPixels:
    """The pixels of both (the second's views numbered after the first's); weights 1 where unset."""
    def weight_of(pixels: PosedPixels) -> Tensor:
        return torch.ones_like(pixels.origins[:, 0]) if pixels.weight is None else pixels.weight

    return PosedPixels(
        torch.cat([first.origins, second.origins]), torch.cat([first.directions, second.directions]), torch.cat([first.rgba, second.rgba]),
        torch.cat([first.view_of_ray, second.view_of_ray + first.num_views]), first.size, torch.cat([weight_of(first), weight_of(second)]),
    )


def read_rgba(path: Path, size: Tuple[int, int]) -> Tensor:
    """An image as RGBA [H, W, 4] in [0, 1] at `size` (height, width), bilinear; opaque if it has no alpha."""
    try:
        with Image.open(path) as image:
            rgba = image.convert("RGBA").resize((size[1], size[0]), Image.Resampling.BILINEAR)
    except OSError:
        raise InputError(path, "not a readable image") from None
    return torch.from_numpy(np.asarray(rgba, dtype=np.float32) / 255.0)


def load_cameras(folder: Path, split: str, views: Optional[Sequence[int]], scale: float) -> Tuple[Cameras, List[Path]]:
    """Cameras of views `views` (all if None) of one object folder, scaled by `scale`, and their image files."""
    object_views = read_object_views(ObjectEntry(folder.name, folder.name, folder), split)
    chosen = list(range(len(object_views.image_filenames))) if views is None else list(views)
    for k in chosen:
        if not 0 <= k < len(object_views.image_filenames):
            raise InputError(folder / f"transforms_{split}.json", f"has {len(object_views.image_filenames)} views, no view {k}")
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


def pixels_of(cameras: Cameras, rgba: Optional[Tensor], device: torch.device) -> PosedPixels:
    """Every pixel of C cameras of one size as rays, with colours `rgba` [C, H, W, 4] (zeros if None)."""
    height, width = int(cameras.height[0]), int(cameras.width[0])
    origins, directions = [], []
    for i in range(len(cameras)):
        bundle = cameras.generate_rays(camera_indices=i)
        origins.append(bundle.origins.reshape(-1, 3))
        directions.append(bundle.directions.reshape(-1, 3))
    rgba = torch.zeros(len(cameras), height, width, 4) if rgba is None else rgba
    view_of_ray = torch.arange(len(cameras)).repeat_interleave(height * width)
    return PosedPixels(torch.cat(origins).to(device), torch.cat(directions).to(device), rgba.reshape(-1, 4).to(device), view_of_ray.to(device), (height, width))


def load_posed_pixels(folder: Path, split: str, views: Optional[Sequence[int]], scale: float, device: torch.device) -> PosedPixels:
    """Rays and colours of views `views` (all if None) of one object folder, images scaled by `scale`."""
    cameras, files = load_cameras(folder, split, views, scale)
    size = (int(cameras.height[0]), int(cameras.width[0]))
    return pixels_of(cameras, torch.stack([read_rgba(file, size) for file in files]), device)


def render_ray_outputs(
    model: HypNeRFModel, params: NeRFParams, origins: Tensor, directions: Tensor, occupied: Tensor, slot: Optional[Tensor] = None, chunk: int = 8192
) -> Dict[str, Tensor]:
    """rgb [R, 3] (on the model's background: white in eval mode), accumulation [R, 1] and depth
    [R, 1] of rays [R] under B NeRFs.

    `slot` [R] says which of the B NeRFs each ray sees (all the first if None); `occupied` is
    [B, G, G, G]. Normals are not computed (they cost a second backward pass per chunk).
    """
    slot = torch.zeros(len(origins), dtype=torch.long, device=origins.device) if slot is None else slot
    pieces = []
    for start in range(0, len(origins), chunk):
        part = slice(start, start + chunk)
        bundle = RayBundle(origins=origins[part], directions=directions[part], pixel_area=torch.ones_like(origins[part, :1]))
        pieces.append(model.render(bundle, params, slot[part], occupied, normals=False))
    return {name: torch.cat([piece[name] for piece in pieces]) for name in ("rgb", "accumulation", "depth")}


def render_rays(model: HypNeRFModel, params: NeRFParams, origins: Tensor, directions: Tensor, occupied: Tensor, slot: Optional[Tensor] = None) -> Tensor:
    """RGB [R, 3] of `render_ray_outputs`."""
    return render_ray_outputs(model, params, origins, directions, occupied, slot)["rgb"]


def on_white(rgba: Tensor) -> Tensor:
    """[..., 4] RGBA -> [..., 3] RGB composited on white."""
    return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])


def render_candidates(model: HypNeRFModel, params: NeRFParams, occupied: Tensor, origins: Tensor, directions: Tensor) -> Tensor:
    """RGB [B, R, 3] on white of the same rays [R] seen by each of B NeRFs (`params` [B, ...],
    `occupied` [B, G, G, G]), without gradients."""
    count = len(occupied)
    slot = torch.arange(count, device=origins.device).repeat_interleave(len(origins))
    with torch.no_grad():
        rgb = render_rays(model, params, origins.repeat(count, 1), directions.repeat(count, 1), occupied, slot)
    return rgb.reshape(count, len(origins), 3)


def photometric_errors(model: HypNeRFModel, candidates: Codes, occupied: Tensor, pixels: PosedPixels) -> Tensor:
    """Mean squared error [B] of each of B candidate codes on the same pixels (white background)."""
    with torch.no_grad():
        rgb = render_candidates(model, model.hypernetwork(candidates), occupied, pixels.origins, pixels.directions)
    return ((rgb - on_white(pixels.rgba)[None]) ** 2).mean(dim=(1, 2))


def candidate_codes(model: HypNeRFModel) -> Tuple[Codes, Tensor, List[str]]:
    """Every training object's mean code plus the mean of them all: codes [N+1], occupancy, names."""
    book = model.codebook
    index = torch.arange(book.num_objects, device=book.shape_mean.device)
    codes = book(index, sample=False)
    mean = Codes(codes.shape.mean(0, keepdim=True), codes.color.mean(0, keepdim=True))
    with torch.no_grad():
        mean_occupancy = model.occupancy_of(model.hypernetwork(mean))
    all_codes = Codes(torch.cat([codes.shape, mean.shape]).detach(), torch.cat([codes.color, mean.color]).detach())
    occupied = torch.cat([model.occupancy.occupied(), mean_occupancy])
    return all_codes, occupied, [*model.object_ids, "mean code"]


def fit(
    model: HypNeRFModel,
    pixels: PosedPixels,
    variables: List[Tensor],
    make_params: Callable[[], NeRFParams],
    steps: int,
    rays_per_step: int = 1024,
    lr: float = 0.02,
    regulariser: Optional[Callable[[NeRFParams, Tensor], Tensor]] = None,
    occupancy_every: int = 25,
    seed: int = 0,
    on_step: Optional[Callable[[int, float], None]] = None,
    seconds: Optional[float] = None,
) -> None:
    """Optimise `variables` (in place, Adam) so that the NeRF `make_params()` renders `pixels`.

    The model's own weights stay frozen. Loss per step: RGB MSE on `rays_per_step` random pixels
    against a random background (as in training, so the views' alpha is used), weighted by the
    pixels' `weight` if set, plus `regulariser(params, occupied)` if given. The occupancy grid
    follows the parameters every few steps.
    Stops early once `seconds` (if given) have passed.
    """
    deadline = None if seconds is None else time.perf_counter() + seconds
    generator = torch.Generator(device="cpu").manual_seed(seed)
    optimizer = torch.optim.Adam(variables, lr=lr)
    was_training = model.training
    model.train()
    model.requires_grad_(False)
    try:
        occupied = None
        for step in range(steps):
            params = make_params()
            if occupied is None or step % occupancy_every == 0:
                occupied = model.occupancy_of({name: value.detach() for name, value in params.items()})
            batch = pixels.select(torch.randint(len(pixels.origins), (rays_per_step,), generator=generator).to(pixels.origins.device))
            bundle = RayBundle(origins=batch.origins, directions=batch.directions, pixel_area=torch.ones_like(batch.origins[:, :1]))
            outputs = model.render(bundle, params, torch.zeros(len(batch.origins), dtype=torch.long, device=batch.origins.device), occupied)
            pred, gt = model.renderer_rgb.blend_background_for_loss_computation(outputs["rgb"], outputs["accumulation"], batch.rgba)
            errors = ((pred - gt) ** 2).mean(dim=-1)
            loss = errors.mean() if batch.weight is None else (errors * batch.weight).sum() / batch.weight.sum()
            if regulariser is not None:
                loss = loss + regulariser(params, occupied)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if on_step is not None:
                on_step(step, float(loss.detach()))
            if deadline is not None and time.perf_counter() > deadline:
                break
    finally:
        model.requires_grad_(True)
        model.train(was_training)


def invert(
    model: HypNeRFModel,
    pixels: PosedPixels,
    start: Codes,
    steps: int = 200,
    lr: float = 0.02,
    prior_weight: float = 1e-3,
    seed: int = 0,
    on_step: Optional[Callable[[int, float], None]] = None,
) -> Codes:
    """Optimise one object's codes [1, D] to render `pixels`, the hypernetwork frozen.

    `prior_weight` * 0.5 |z|^2 keeps the codes where the prior was trained (matters for one view).
    """
    shape = start.shape.detach().clone().requires_grad_(True)
    color = start.color.detach().clone().requires_grad_(True)
    fit(
        model, pixels, [shape, color], lambda: model.hypernetwork(Codes(shape, color)), steps, lr=lr,
        regulariser=lambda params, occupied: prior_weight * 0.5 * (shape.square().sum() + color.square().sum()), seed=seed, on_step=on_step,
    )
    return Codes(shape.detach(), color.detach())


def fresh_params(model: HypNeRFModel, seed: int = 0) -> NeRFParams:
    """One untrained NeRF of the model's architecture, as leaf tensors [1, ...] that require grad:
    the same start the hypernetwork's heads have (near-zero tables, He-initialised MLPs)."""
    generator = torch.Generator().manual_seed(seed)
    tables = (torch.rand(model.field.table_shape, generator=generator) * 2 - 1) * 1e-4
    params = {"tables": tables, **model.field.init_mlp_params(generator)}
    return {name: value[None].to(model.device).requires_grad_(True) for name, value in params.items()}


def refine(model: HypNeRFModel, pixels: PosedPixels, codes: Codes, seconds: float, lr: float = 0.003, seed: int = 0) -> NeRFParams:
    """The NeRF generated from `codes`, then fitted on `pixels` by its own parameters (tables and
    MLP weights, no longer tied to the hypernetwork) for `seconds`, at a small learning rate."""
    with torch.no_grad():
        params = {name: value.detach().clone().requires_grad_(True) for name, value in model.hypernetwork(codes).items()}
    fit(model, pixels, list(params.values()), lambda: params, 10**9, lr=lr, seed=seed, seconds=seconds)
    return {name: value.detach() for name, value in params.items()}


def fit_from_scratch(model: HypNeRFModel, pixels: PosedPixels, steps: int, lr: float = 0.01, seed: int = 0, seconds: Optional[float] = None) -> NeRFParams:
    """The baseline without the prior: the same small NeRF fitted to `pixels` from `fresh_params`
    (for `steps` steps or `seconds`, whichever ends first)."""
    params = fresh_params(model, seed)
    fit(model, pixels, list(params.values()), lambda: params, steps, lr=lr, seed=seed, seconds=seconds)
    return {name: value.detach() for name, value in params.items()}
