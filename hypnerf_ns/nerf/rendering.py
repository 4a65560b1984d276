"""Volume rendering of generated NeRFs: rays + per-object parameters + occupancy -> images.

Pure functions, as nerfacc's `volrend.py`: nothing here reads a module's train / eval mode or
holds state. `render_rays` is the one entry point that the nerfstudio Model (training, viewer,
ns-render, ns-export) and every tool (inversion, finetuning, evaluation, videos, meshes) render
with; `occupancy_grids` builds the grids it skips empty space with, from the NeRFs' density.

Rendering of ray r with packed samples i (`sampling.march`) at distances t_i, step delta_i:

    w_i = T_i (1 - exp(-sigma_i delta_i)),   T_i = exp(-sum_{j<i} sigma_j delta_j)
    rgb_r = sum_i w_i c_i + (1 - A_r) background,   A_r = sum_i w_i
    depth_r = sum_i w_i t_i / A_r   (rays with A_r < 0.5 report `background_depth`)
"""

from __future__ import annotations

from typing import Literal

import torch
from nerfacc import accumulate_along_rays
from torch import Tensor

from hypnerf_ns.nerf.field import HyperField
from hypnerf_ns.nerf.hypernetwork import NeRFParams
from hypnerf_ns.nerf.sampling import grid_points, march, occupancy_from_density, packed_weights, ray_aabb

Background = Literal["random", "white", "black"]
"""Behind the NeRF: "random" leaves the colour unblended (composited on black) for
`blend_random_background`, the loss of training and inversion; "white" and "black" are blended in."""

BACKGROUND_RGB = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "random": (0.0, 0.0, 0.0)}

BACKGROUND_DEPTH_BOX = 4.0
"""Rays that hit nothing report the depth where they leave the object box scaled by this: beyond
every voxel that depth-fusion tools look at (ns-export tsdf's default box is 2x ours), so those
carve free space instead of building surfaces at faint fog."""

HIT_ACCUMULATION = 0.5
"""A ray hits a surface when its accumulation reaches this: it reports that depth and a normal."""


def render_rays(
    field: HyperField,
    params: NeRFParams,
    origins: Tensor,
    directions: Tensor,
    slot: Tensor,
    occupied: Tensor,
    *,
    step_size: float,
    background: Background = "white",
    jitter: bool = False,
    normals: bool = False,
    nears: Tensor | None = None,
    fars: Tensor | None = None,
) -> dict[str, Tensor]:
    """Volume-render R rays, each under one of B generated NeRFs.

    Args:
        field: the field the parameters belong to (its box bounds the rays).
        params: NeRF parameters of B objects ({name: [B, ...]}).
        origins, directions: [R, 3] rays, unit directions.
        slot: [R] long, which of the B NeRFs each ray sees (any order).
        occupied: [B, G, G, G] bool occupancy grid of each NeRF (`occupancy_grids`).
        step_size: distance between samples along a ray.
        background: see `Background`.
        jitter: each ray's samples shifted by one random offset within the step (training).
        normals: also output "normals" (one density gradient per ray that hits a surface).
        nears, fars: [R] optional segment of each ray to render.

    Returns:
        "rgb" [R, 3] in [0, 1], "accumulation" [R, 1], "depth" [R, 1], "num_samples" [R, 1]
        (and "normals" [R, 3] in [0, 1], 0.5 where a ray hits nothing).
    """
    order = None
    if len(slot) > 1 and bool((slot[1:] < slot[:-1]).any()):  # the field wants samples grouped by NeRF
        order = torch.argsort(slot, stable=True)
        origins, directions, slot = origins[order], directions[order], slot[order]
        nears = None if nears is None else nears[order]
        fars = None if fars is None else fars[order]
    outputs = _render_grouped(
        field, params, origins, directions, slot, occupied, step_size, background, jitter, normals, nears, fars
    )
    if order is None:
        return outputs
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=order.device)
    return {name: value[inverse] for name, value in outputs.items()}


def _render_grouped(
    field: HyperField,
    params: NeRFParams,
    origins: Tensor,
    directions: Tensor,
    slot: Tensor,
    occupied: Tensor,
    step_size: float,
    background: Background,
    jitter: bool,
    normals: bool,
    nears: Tensor | None,
    fars: Tensor | None,
) -> dict[str, Tensor]:
    """`render_rays` for rays whose `slot` is non-decreasing."""
    num_rays = origins.shape[0]
    t_near, t_far = ray_aabb(origins, directions, field.aabb)
    if nears is not None:
        t_near = torch.maximum(t_near, nears)
    if fars is not None:
        t_far = torch.minimum(t_far, fars)
    ray_index, t_starts, t_ends = march(
        origins, directions, t_near, t_far, step_size, occupied, slot, field.aabb, jitter=jitter
    )
    sample_slot = slot[ray_index]
    counts = torch.bincount(sample_slot, minlength=len(params["tables"])).tolist()
    t_mid = 0.5 * (t_starts + t_ends)
    samples = field(
        origins[ray_index] + directions[ray_index] * t_mid[:, None], directions[ray_index], sample_slot, counts, params
    )
    weights = packed_weights(samples["density"][:, 0], t_ends - t_starts, ray_index, num_rays)

    accumulation = accumulate_along_rays(weights, None, ray_index, num_rays)
    rgb = accumulate_along_rays(weights, samples["rgb"], ray_index, num_rays)
    rgb = rgb + rgb.new_tensor(BACKGROUND_RGB[background]) * (1.0 - accumulation)
    depth = accumulate_along_rays(weights, t_mid[:, None], ray_index, num_rays) / (accumulation + 1e-10)
    hit = accumulation[:, 0] >= HIT_ACCUMULATION
    outputs = {
        "rgb": rgb.clamp(0.0, 1.0),
        "accumulation": accumulation,
        "depth": torch.where(hit[:, None], depth, background_depth(origins, directions, field.aabb)[:, None]),
        "num_samples": torch.bincount(ray_index, minlength=num_rays)[:, None].float(),
    }
    if normals:
        outputs["normals"] = surface_normals(field, params, origins + directions * depth, directions, hit, slot)
    return outputs


def background_depth(origins: Tensor, directions: Tensor, aabb: Tensor) -> Tensor:
    """Depth [R] reported by rays [R] that hit nothing: where they leave the box `aabb` [2, 3]
    scaled by `BACKGROUND_DEPTH_BOX` about the origin."""
    _, t_far = ray_aabb(origins, directions, BACKGROUND_DEPTH_BOX * aabb)
    return t_far.clamp_min(0.0)


def surface_normals(
    field: HyperField, params: NeRFParams, points: Tensor, directions: Tensor, hit: Tensor, slot: Tensor
) -> Tensor:
    """Normals [R, 3] in [0, 1] (nerfstudio's convention) at the surface points [R, 3] of rays that
    `hit` [R] one: minus the density gradient there, one evaluation per ray (not per sample); 0.5
    (no direction) elsewhere. `slot` [R] must be non-decreasing."""
    hit_slot = slot[hit]
    counts = torch.bincount(hit_slot, minlength=len(params["tables"])).tolist()
    found = field(points[hit], directions[hit], hit_slot, counts, params, compute_normals=True)
    normals = torch.zeros_like(points)
    normals[hit] = found["normals"].detach()
    return (normals + 1.0) / 2.0


def density_at(field: HyperField, params: NeRFParams, points: Tensor) -> Tensor:
    """Density [B, M] at points [B, M, 3]: row b under NeRF b of `params` ({name: [B, ...]})."""
    num_objects, per_object = points.shape[:2]
    slot = torch.arange(num_objects, device=points.device).repeat_interleave(per_object)
    density = field.density(points.reshape(-1, 3), slot, [per_object] * num_objects, params)
    return density.reshape(num_objects, per_object)


@torch.no_grad()
def occupancy_grids(field: HyperField, params: NeRFParams, resolution: int, density_threshold: float) -> Tensor:
    """Occupancy grids [B, G, G, G] (G = `resolution`) of B generated NeRFs: cells whose centre's
    density reaches `occupancy_from_density`'s level, dilated by one cell."""
    points = grid_points(field.aabb, resolution).expand(len(params["tables"]), -1, -1)
    density = density_at(field, params, points).reshape(-1, resolution, resolution, resolution)
    return occupancy_from_density(density, density_threshold)


def blend_random_background(rgb: Tensor, accumulation: Tensor, target_rgba: Tensor) -> tuple[Tensor, Tensor]:
    """Prediction and target on the same random background, so that a loss between them learns
    transparency: `rgb` [R, 3] rendered with background "random", `accumulation` [R, 1], target
    [R, 4] straight RGBA (or [R, 3], opaque). Returns (rgb + b (1 - A), target_rgb alpha + b (1 - alpha)),
    b ~ U[0, 1)^3 per ray (torch's global generator)."""
    background = torch.rand_like(rgb)
    prediction = rgb + background * (1.0 - accumulation)
    if target_rgba.shape[-1] == 3:  # an opaque target
        return prediction, target_rgba
    alpha = target_rgba[..., 3:]
    return prediction, target_rgba[..., :3] * alpha + background * (1.0 - alpha)
