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
from pathlib import Path
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import Tensor

from hypnerf_ns.commands import load_prior
from hypnerf_ns.errors import InputError
from hypnerf_ns.hypernetwork import NeRFParams
from hypnerf_ns.inversion import PosedPixels, candidate_codes, load_posed_pixels, on_white, read_rgba, render_candidates
from hypnerf_ns.model import HypNeRFModel

CONSOLE = Console()
TRUNCATION = 0.1
"""Cap on one pixel's squared RGB error (summed over channels) in the retrieval score."""


@dataclass
class Gallery:
    """The generated NeRFs of all training objects, made once and rendered for many queries."""

    params: NeRFParams
    """[N, ...]"""
    occupied: Tensor
    """[N, G, G, G]"""
    names: List[str]


def gallery_of(model: HypNeRFModel) -> Gallery:
    """Every training object's NeRF (from its mean code)."""
    codes, occupied, names = candidate_codes(model)
    count = model.codebook.num_objects  # the last candidate is the mean code: not an object
    with torch.no_grad():
        params = {name: value[:count] for name, value in model.hypernetwork(codes).items()}
    return Gallery(params, occupied[:count], names[:count])


def robust_errors(rendered: Tensor, query_rgb: Tensor) -> Tensor:
    """Score [B] of renders [B, R, 3] against query colours [R, 3]: mean truncated squared error."""
    return ((rendered - query_rgb[None]) ** 2).sum(dim=-1).clamp(max=TRUNCATION).mean(dim=-1)


def pixel_sample(count: int, total: int, seed: int) -> Tensor:
    """`count` distinct pixel indices out of `total` (all if fewer), fixed by `seed`."""
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count]


def render_gallery(model: HypNeRFModel, gallery: Gallery, query: PosedPixels, pixels: int = 2048, seed: int = 0) -> Tuple[Tensor, Tensor]:
    """Every gallery object's RGB [N, P, 3] on a fixed sample of P of the query's pixels, and that sample [P]."""
    index = pixel_sample(pixels, len(query.origins), seed).to(query.origins.device)
    model.eval()
    return render_candidates(model, gallery.params, gallery.occupied, query.origins[index], query.directions[index]), index


def occlude(rgba: Tensor, generator: torch.Generator, boxes: int = 2, box_size: Tuple[float, float] = (0.2, 0.35)) -> Tensor:
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
        box_h, box_w = (int(round((low + (high - low) * float(torch.rand(1, generator=generator))) * side)) for side in (height, width))
        top, left = max(0, int(centre[0]) - box_h // 2), max(0, int(centre[1]) - box_w // 2)
        image[top : top + box_h, left : left + box_w] = torch.rand(3, generator=generator)
    return torch.cat([image, torch.ones_like(alpha)], dim=-1)


@dataclass
class Retrieve:
    """Rank the prior's training objects for a posed query image (robust to occluders and clutter)."""

    load_config: Path
    """config.yml of a trained hyp-nerf."""
    camera: Path
    """A nerf-synthetic transforms file (e.g. OBJECT/transforms_test.json) holding the query's camera."""
    frame: int = 0
    """Which frame of `camera` the query was taken from."""
    image: Optional[Path] = None
    """The query image (default: that frame's own image). RGBA is composited on white; RGB is used as is."""
    top: int = 5
    """How many objects to print."""
    pixels: int = 4096
    """Query pixels rendered per object (at random)."""

    def main(self) -> None:
        split = self.camera.stem.removeprefix("transforms_")
        if self.camera.name != f"transforms_{split}.json":
            raise InputError(self.camera, "expected a transforms_<split>.json file")
        prior = load_prior(self.load_config)
        model, scale = prior.model, prior.scale
        query = load_posed_pixels(self.camera.parent, split, [self.frame], scale, model.device)
        if self.image is not None:
            if not self.image.is_file():
                raise InputError(self.image, "no such image")
            query.rgba = read_rgba(self.image, query.size).reshape(-1, 4).to(model.device)
        gallery = gallery_of(model)
        rendered, index = render_gallery(model, gallery, query, self.pixels)
        scores = robust_errors(rendered, on_white(query.rgba[index]))
        table = Table(title=f"objects most like {self.image or f'{self.camera} frame {self.frame}'}")
        for column in ("rank", "object", "score (lower is closer)"):
            table.add_column(column, justify="right")
        for rank, k in enumerate(torch.argsort(scores)[: self.top].tolist(), start=1):
            table.add_row(str(rank), gallery.names[k], f"{float(scores[k]):.4f}")
        CONSOLE.print(table)
