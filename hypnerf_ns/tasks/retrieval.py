"""Retrieval: which training object does a posed query image show?

Analysis-by-synthesis, like the choice of a starting code for inversion: every training
object's generated NeRF renders the query's camera, and the objects are ranked by a robust
photometric score, the per-pixel squared RGB error truncated at `TRUNCATION`. A pixel that no
object can explain (an occluder, background clutter) then costs every object about the same
capped amount, while the pixels that show the object still separate right from wrong. No
encoder is trained and nothing is downloaded.

`occlude` makes the paper's harder queries: the view pasted on a cluttered background with
random boxes over the object.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from hypnerf_ns.lib.prior import training_codes
from hypnerf_ns.lib.rendering import render_candidates
from hypnerf_ns.lib.views import PosedPixels
from hypnerf_ns.method.model import HypNeRFModel
from hypnerf_ns.nerf.hypernetwork import NeRFParams

TRUNCATION = 0.1
"""Cap on one pixel's squared RGB error (summed over channels) in the retrieval score."""


@dataclass
class Gallery:
    """The generated NeRFs of all training objects, made once and rendered for many queries."""

    params: NeRFParams
    """[N, ...]"""
    occupied: Tensor
    """[N, G, G, G]"""
    names: list[str]


def gallery_of(model: HypNeRFModel) -> Gallery:
    """Every training object's NeRF (from its mean code), with the occupancy grids training keeps."""
    with torch.no_grad():
        params = model.hypernetwork(training_codes(model))
    return Gallery(params, model.occupancy.occupied(), list(model.object_ids))


def robust_errors(rendered: Tensor, query_rgb: Tensor) -> Tensor:
    """Score [B] of renders [B, R, 3] against query colours [R, 3]: mean truncated squared error."""
    return ((rendered - query_rgb[None]) ** 2).sum(dim=-1).clamp(max=TRUNCATION).mean(dim=-1)


def pixel_sample(count: int, total: int, seed: int) -> Tensor:
    """`count` distinct pixel indices out of `total` (all if fewer), fixed by `seed`."""
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count]


def render_gallery(
    model: HypNeRFModel, gallery: Gallery, query: PosedPixels, pixels: int = 2048, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Every gallery object's RGB [N, P, 3] on a fixed sample of P of the query's pixels, and that sample [P]."""
    index = pixel_sample(pixels, len(query.origins), seed).to(query.origins.device)
    return render_candidates(
        model, gallery.params, gallery.occupied, query.origins[index], query.directions[index]
    ), index


def occlude(
    rgba: Tensor, generator: torch.Generator, boxes: int = 2, box_size: tuple[float, float] = (0.2, 0.35)
) -> Tensor:
    """A harder query: the view [H, W, 4] on background clutter with `boxes` occluders, opaque [H, W, 4].

    The clutter is a smooth random colour field (a 4 x 4 grid of random colours, upsampled);
    each occluder is a solid box of random colour, with sides a random fraction `box_size` of
    the image, centred at a random pixel of the object (alpha > 0.5).
    """
    height, width = rgba.shape[:2]
    grid = torch.rand(1, 3, 4, 4, generator=generator)
    clutter = F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    alpha = rgba[..., 3:]
    image = rgba[..., :3] * alpha + clutter * (1.0 - alpha)
    object_pixels = torch.nonzero(rgba[..., 3] > 0.5)
    if len(object_pixels) == 0:
        object_pixels = torch.tensor([[height // 2, width // 2]])
    for _ in range(boxes):
        centre = object_pixels[int(torch.randint(len(object_pixels), (1,), generator=generator))]
        low, high = box_size
        box_h, box_w = (
            round((low + (high - low) * float(torch.rand(1, generator=generator))) * side) for side in (height, width)
        )
        top, left = max(0, int(centre[0]) - box_h // 2), max(0, int(centre[1]) - box_w // 2)
        image[top : top + box_h, left : left + box_w] = torch.rand(3, generator=generator)
    return torch.cat([image, torch.ones_like(alpha)], dim=-1)
