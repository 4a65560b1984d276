"""Denoise and finetune: a generated NeRF refitted on denoised views of itself and the real inputs.

    generated NeRF --render--> V views on a sphere --denoiser--> V cleaned views
    NeRF's own parameters <--fit-- cleaned views (weight 1 - input_share) + input views (input_share)
                                   + consistency_weight * see-through

The NeRF's parameters (hash tables and MLP weights) start from the hypernetwork's output and
are then free. Fitting one 3D field to all views makes the views agree by construction, except
where the field is semi-transparent: the consistency term penalises `see_through`, the
transmittance, seen from other cameras, across the surface points that one view shows. It is
also the consistency figure reported by `hypnerf-ns eval --finetune`.
"""

from __future__ import annotations

import torch
from nerfstudio.cameras.cameras import Cameras
from torch import Tensor

from hypnerf_ns.lib.rendering import occupancy_for, render_nerf, render_views
from hypnerf_ns.lib.views import PosedPixels, join_pixels, pixels_of
from hypnerf_ns.method.model import HypNeRFModel
from hypnerf_ns.nerf.hypernetwork import NeRFParams
from hypnerf_ns.tasks.denoise import Denoiser, as_straight_rgba
from hypnerf_ns.tasks.inversion import fit

ORBIT_VIEWS = 16
"""Views rendered around an object and denoised, by default."""


def see_through(
    model: HypNeRFModel,
    params: NeRFParams,
    occupied: Tensor,
    points: Tensor,
    centres: Tensor,
    margin: float = 0.04,
    jitter: bool = False,
) -> Tensor:
    """Transmittance [S, C] through each surface point [S, 3] (within +-`margin` along the ray)
    seen from each camera centre [C, 3].

    A point at the expected depth of a view's ray is where that view sees a surface. Density does
    not depend on the view, so every camera should find it solid (transmittance 0 across it, an
    occluder in front notwithstanding). Transmittance left means that views disagree there: a
    half-transparent surface, or an expected depth in empty space between two surfaces.
    Only the short segment is rendered, so pushing this down cannot fill space with fog.
    `jitter` jitters the samples (as the photometric loss does, when this term trains).
    """
    offsets = points[:, None, :] - centres[None, :, :]
    distance = offsets.norm(dim=-1, keepdim=True)
    origins = centres[None].expand_as(offsets).reshape(-1, 3)
    outputs = render_nerf(
        model,
        params,
        origins,
        (offsets / distance).reshape(-1, 3),
        occupied=occupied,
        nears=(distance - margin).reshape(-1),
        fars=(distance + margin).reshape(-1),
        jitter=jitter,
        chunk=len(origins),
    )
    return (1.0 - outputs["accumulation"]).reshape(points.shape[0], centres.shape[0])


def surface_points(
    depth: Tensor, accumulation: Tensor, origins: Tensor, directions: Tensor, min_accumulation: float = 0.5
) -> Tensor:
    """Points [S, 3] at the expected depth of the rays [R] that hit something (accumulation > `min_accumulation`)."""
    hit = accumulation[:, 0] > min_accumulation
    return origins[hit] + directions[hit] * depth[hit]


def consistency(model: HypNeRFModel, params: NeRFParams, pixels: PosedPixels, rays: int = 2048, seed: int = 0) -> float:
    """Mean `see_through` of `rays` random rays' surface points of `pixels`' views, seen from every view's camera."""
    generator = torch.Generator().manual_seed(seed)
    sample = pixels.select(torch.randperm(len(pixels.origins), generator=generator)[:rays].to(pixels.origins.device))
    with torch.no_grad():
        occupied = occupancy_for(model, params)
        outputs = render_nerf(model, params, sample.origins, sample.directions, occupied=occupied)
        points = surface_points(outputs["depth"], outputs["accumulation"], sample.origins, sample.directions)
        if len(points) == 0:
            return 1.0  # nothing is solid: every view is seen through
        return float(see_through(model, params, occupied, points, pixels.camera_centres()).mean())


def denoised_views(model: HypNeRFModel, params: NeRFParams, denoiser: Denoiser | None, cameras: Cameras) -> PosedPixels:
    """The views of `cameras` rendered from `params` and cleaned by `denoiser` (as rendered if None), as
    straight-RGBA pixels."""
    template = pixels_of(cameras, None, model.device)
    images = render_views(model, params, template)
    if denoiser is not None:
        with torch.no_grad():
            images = denoiser(images)
    return pixels_of(cameras, as_straight_rgba(images), model.device)


def finetune(
    model: HypNeRFModel,
    params: NeRFParams,
    targets: PosedPixels,
    inputs: PosedPixels | None,
    steps: int = 300,
    input_share: float = 0.5,
    consistency_weight: float = 0.003,
    lr: float = 0.003,
    consistency_rays: int = 128,
    seed: int = 0,
) -> NeRFParams:
    """The NeRF `params` [1, ...] fitted by its own parameters to `targets` (the denoised views)
    and `inputs` (real views, `input_share` of the photometric loss), plus `consistency_weight` x
    the see-through of surface points of target rays from the target cameras, for `steps` steps."""
    free = {name: value.detach().clone().requires_grad_(True) for name, value in params.items()}
    pixels = targets
    if inputs is not None:
        total = len(targets.origins) + len(inputs.origins)
        pixels = join_pixels(
            inputs.weighted(input_share * total / len(inputs.origins)),
            targets.weighted((1.0 - input_share) * total / len(targets.origins)),
        )
    centres = targets.camera_centres()
    generator = torch.Generator().manual_seed(seed + 1)
    solid = torch.nonzero(targets.rgba[:, 3] > 0.5)[:, 0]

    def see_through_term(current: NeRFParams, occupied: Tensor) -> Tensor:
        if consistency_weight == 0 or len(solid) == 0:
            return torch.zeros((), device=model.device)
        rays = targets.select(
            solid[torch.randint(len(solid), (consistency_rays,), generator=generator).to(solid.device)]
        )
        with torch.no_grad():
            outputs = render_nerf(model, current, rays.origins, rays.directions, occupied=occupied, jitter=True)
        points = surface_points(outputs["depth"], outputs["accumulation"], rays.origins, rays.directions)
        if len(points) == 0:
            return torch.zeros((), device=model.device)
        chosen = centres[torch.randint(len(centres), (2,), generator=generator).to(centres.device)]
        return consistency_weight * see_through(model, current, occupied, points, chosen, jitter=True).mean()

    fit(model, pixels, list(free.values()), lambda: free, steps, lr=lr, regulariser=see_through_term, seed=seed)
    return {name: value.detach() for name, value in free.items()}
