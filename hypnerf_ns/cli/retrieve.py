"""`hypnerf-ns retrieve`: which training objects a posed query image shows (tasks.retrieval)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from hypnerf_ns.errors import InputError
from hypnerf_ns.lib.prior import load_prior
from hypnerf_ns.lib.views import load_posed_pixels, on_white, read_rgba
from hypnerf_ns.tasks.retrieval import gallery_of, render_gallery, robust_errors

CONSOLE = Console()


@dataclass
class Retrieve:
    """Rank the prior's training objects for a posed query image (robust to occluders and clutter)."""

    load_config: Path
    """config.yml of a trained hyp-nerf."""
    camera: Path
    """A nerf-synthetic transforms file (e.g. OBJECT/transforms_test.json) holding the query's camera."""
    frame: int = 0
    """Which frame of `camera` the query was taken from."""
    image: Path | None = None
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
