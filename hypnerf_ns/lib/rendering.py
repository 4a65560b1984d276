"""Render a generated NeRF of a trained prior: its parameters + rays -> outputs.

`render_nerf` is what every tool renders with (inversion, finetuning, retrieval, evaluation,
videos, meshes' colours): the core `nerf.rendering.render_rays` with the prior's field and
settings, in chunks of rays. The occupancy grids are those the viewer renders with
(`occupancy_for`); the background and the sample jitter are arguments, never read from the
model's train / eval mode. Gradients flow to `params` when the caller enables them.
"""

from __future__ import annotations

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras
from torch import Tensor

from hypnerf_ns.lib.views import PosedPixels, pixels_of
from hypnerf_ns.method.model import HypNeRFModel
from hypnerf_ns.nerf.hypernetwork import NeRFParams
from hypnerf_ns.nerf.rendering import Background, occupancy_grids, render_rays
from hypnerf_ns.nerf.sampling import density_threshold


def occupancy_for(model: HypNeRFModel, params: NeRFParams) -> Tensor:
    """Occupancy grids [B, G, G, G] of B NeRFs `params` ([B, ...]) of `model`'s prior, as its viewer
    builds them: G = `occupancy_resolution`, the training grids' density threshold."""
    config = model.config
    threshold = density_threshold(config.occupancy_alpha_threshold, config.render_step_size)
    return occupancy_grids(model.field, params, config.occupancy_resolution, threshold)


def render_nerf(
    model: HypNeRFModel,
    params: NeRFParams,
    origins: Tensor,
    directions: Tensor,
    *,
    slot: Tensor | None = None,
    occupied: Tensor | None = None,
    background: Background = "white",
    jitter: bool = False,
    normals: bool = False,
    nears: Tensor | None = None,
    fars: Tensor | None = None,
    chunk: int = 8192,
) -> dict[str, Tensor]:
    """Rays [R] (`origins`, unit `directions` [R, 3]) under B NeRFs `params` [B, ...].

    Args:
        slot: [R] long, which NeRF each ray sees (all the first if None).
        occupied: [B, G, G, G] occupancy grids (`occupancy_for(model, params)` if None).
        background: "white", "black", or "random" (`nerf.rendering.Background`).
        jitter: jitter sample positions within their step (as in training).
        normals: also "normals" [R, 3] (a density gradient per ray).
        nears, fars: [R] optional segment of each ray to render.
        chunk: rays per model call (memory).

    Returns "rgb" [R, 3], "accumulation" [R, 1], "depth" [R, 1] (and "normals" [R, 3]).
    """
    slot = torch.zeros(len(origins), dtype=torch.long, device=origins.device) if slot is None else slot
    if occupied is None:
        occupied = occupancy_for(model, params)
    names = ("rgb", "accumulation", "depth", *(("normals",) if normals else ()))
    pieces = []
    for start in range(0, len(origins), chunk):
        part = slice(start, start + chunk)
        # Only the NeRFs this chunk's rays see (a range of slots): scoring N candidates on the same
        # rays otherwise marched and ran every chunk through all N grids and MLPs.
        first, last = int(slot[part].min()), int(slot[part].max()) + 1
        outputs = render_rays(
            model.field,
            {name: value[first:last] for name, value in params.items()},
            origins[part],
            directions[part],
            slot[part] - first,
            occupied[first:last],
            step_size=model.config.render_step_size,
            background=background,
            jitter=jitter,
            normals=normals,
            nears=None if nears is None else nears[part],
            fars=None if fars is None else fars[part],
        )
        pieces.append({name: outputs[name] for name in names})
    return {name: torch.cat([piece[name] for piece in pieces]) for name in names}


def render_pixels(model: HypNeRFModel, params: NeRFParams, pixels: PosedPixels) -> Tensor:
    """RGB [R, 3] on white of every pixel of `pixels` under one NeRF, without gradients."""
    with torch.no_grad():
        return render_nerf(model, params, pixels.origins, pixels.directions)["rgb"]


def render_views(model: HypNeRFModel, params: NeRFParams, pixels: PosedPixels) -> Tensor:
    """The views of `pixels` as one NeRF renders them: [V, 4, H, W] (RGB on white, accumulation), no gradients."""
    with torch.no_grad():
        outputs = render_nerf(model, params, pixels.origins, pixels.directions)
    height, width = pixels.size
    return (
        torch.cat([outputs["rgb"], outputs["accumulation"]], dim=-1)
        .reshape(-1, height, width, 4)
        .permute(0, 3, 1, 2)
        .clamp(0, 1)
    )


def render_image(model: HypNeRFModel, params: NeRFParams, cameras: Cameras, index: int) -> np.ndarray:
    """Camera `index` of `cameras` as one NeRF renders it: uint8 [H, W, 3] on white."""
    pixels = pixels_of(cameras[index : index + 1], None, model.device)
    rgb = render_pixels(model, params, pixels)
    height, width = pixels.size
    return (rgb.reshape(height, width, 3).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)


def render_candidates(
    model: HypNeRFModel, params: NeRFParams, occupied: Tensor, origins: Tensor, directions: Tensor
) -> Tensor:
    """RGB [B, R, 3] on white of the same rays [R] seen by each of B NeRFs (`params` [B, ...],
    `occupied` [B, G, G, G]), without gradients."""
    count = len(occupied)
    slot = torch.arange(count, device=origins.device).repeat_interleave(len(origins))
    with torch.no_grad():
        rgb = render_nerf(
            model, params, origins.repeat(count, 1), directions.repeat(count, 1), slot=slot, occupied=occupied
        )["rgb"]
    return rgb.reshape(count, len(origins), 3)
