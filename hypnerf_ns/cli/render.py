"""`hypnerf-ns render turntable|morph|sheet`: the videos and sheets nerfstudio has no verb for.

    turntable  one object (training object, latent file or finetuned NeRF) once around
    morph      one object turning into another, shape and colour codes blended separately
    sheet      a contact sheet of training objects, or of random samples from the prior

Frames are rendered straight from the generated NeRFs (tasks.videos), on white, with the
intrinsics of the category's first training view resized to `--resolution`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import tyro
from rich.console import Console

from hypnerf_ns.data.preview import save_png, tile
from hypnerf_ns.lib.cameras import category_cameras, sphere_cameras
from hypnerf_ns.lib.prior import NeRFChoice, codes_of, load_prior
from hypnerf_ns.lib.rendering import render_image
from hypnerf_ns.nerf.hypernetwork import NeRFParams
from hypnerf_ns.progress import progress_bar
from hypnerf_ns.tasks.videos import TurntableOptions, write_turntable

CONSOLE = Console()


@dataclass
class Turntable:
    """A video of one object once around (training object, latent file or finetuned NeRF)."""

    load_config: Path
    output: Path
    """The video to write: .mp4 (ffmpeg), or .gif / .webp (an animated image)."""
    nerf: tyro.conf.OmitArgPrefixes[NeRFChoice] = field(default_factory=NeRFChoice)
    video: tyro.conf.OmitArgPrefixes[TurntableOptions] = field(default_factory=TurntableOptions)

    def main(self) -> None:
        prior = load_prior(self.load_config)
        name, params = self.nerf.resolve(prior.model, self.load_config)
        write_turntable(prior, lambda k: params, self.video, self.output, f"turntable of {name}")


@dataclass
class Morph:
    """A video of one object turning into another while the camera goes once around."""

    load_config: Path
    start: str
    """Training object id or latent file (.pt)."""
    end: str
    """Training object id or latent file (.pt)."""
    output: Path
    blend: Literal["both", "shape", "colour"] = "both"
    """Which codes move from start to end (the others stay the start's)."""
    video: tyro.conf.OmitArgPrefixes[TurntableOptions] = field(default_factory=TurntableOptions)

    def main(self) -> None:
        prior = load_prior(self.load_config)
        model = prior.model
        first, last = codes_of(model, self.start), codes_of(model, self.end)

        def params_of_frame(k: int) -> NeRFParams:
            t = k / max(self.video.frames - 1, 1)
            return model.hypernetwork(
                first.lerp(
                    last, t if self.blend in ("both", "shape") else 0.0, t if self.blend in ("both", "colour") else 0.0
                )
            )

        write_turntable(prior, params_of_frame, self.video, self.output, f"morph {self.start} -> {self.end}")


@dataclass
class Sheet:
    """A contact sheet (PNG): training objects, or random samples from the prior."""

    load_config: Path
    output: Path
    objects: tuple[str, ...] = ()
    """Training object ids; default: all of them (unless --samples)."""
    samples: int = 0
    """Instead: this many new objects sampled from the prior (`Codebook.blends`)."""
    columns: int = 8
    resolution: int = 96
    elevation_deg: float = 20.0
    azimuth_deg: float = 45.0
    seed: int = 0

    def main(self) -> None:
        prior = load_prior(self.load_config)
        model = prior.model
        if self.samples > 0:
            codes = model.codebook.blends(self.samples, torch.Generator().manual_seed(self.seed))
            items = [codes.rows(slice(k, k + 1)) for k in range(self.samples)]
        else:
            items = [codes_of(model, spec) for spec in (self.objects or model.object_ids)]
        reference, radius = category_cameras(prior, self.resolution)
        camera = sphere_cameras(reference, [math.radians(self.azimuth_deg)], [math.radians(self.elevation_deg)], radius)
        images = []
        with progress_bar() as bar:
            task = bar.add_task("contact sheet", total=len(items))
            for codes in items:
                with torch.no_grad():
                    images.append(render_image(model, model.hypernetwork(codes), camera, 0))
                bar.advance(task)
        save_png(tile(images, self.columns), self.output)
        CONSOLE.print(f"wrote {self.output} ({len(images)} objects)", soft_wrap=True)
