"""`hypnerf-ns render`: the videos and sheets nerfstudio has no verb for.

    turntable  one object (training object, latent file or finetuned NeRF) once around
    morph      one object turning into another, shape and colour codes blended separately
    sheet      a contact sheet of training objects, or of random samples from the prior

Frames are rendered straight from the generated NeRFs (no nerfstudio pipeline), on white, with
the intrinsics of the category's first training view resized to `--resolution`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Literal, Optional, Tuple

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from nerfstudio.cameras.cameras import Cameras

from hypnerf_ns.atomic import atomic_output
from hypnerf_ns.camera_paths import reference_camera, sphere_cameras, turntable_cameras
from hypnerf_ns.commands import Prior, load_prior
from hypnerf_ns.errors import InputError
from hypnerf_ns.hypernetwork import Codes, NeRFParams
from hypnerf_ns.inversion import pixels_of, render_rays
from hypnerf_ns.latent import load_codes
from hypnerf_ns.model import HypNeRFModel
from hypnerf_ns.select import chosen_params

CONSOLE = Console()


def render_image(model: HypNeRFModel, params: NeRFParams, cameras: Cameras, index: int) -> np.ndarray:
    """Camera `index` of `cameras` as one NeRF renders it: uint8 [H, W, 3] on white."""
    pixels = pixels_of(cameras[index : index + 1], None, model.device)
    model.eval()
    with torch.no_grad():
        rgb = render_rays(model, params, pixels.origins, pixels.directions, model.occupancy_of(params))
    height, width = pixels.size
    return (rgb.reshape(height, width, 3).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)


def category_cameras(prior: Prior, resolution: int) -> Tuple[Cameras, float]:
    """The first training object's first view, resized to `resolution` pixels wide, and its distance."""
    reference, radius = reference_camera(prior.training_folder(prior.model.object_ids[0]), 0, 1.0)
    reference.rescale_output_resolution(resolution / float(reference.width[0]))
    return reference, radius


def category_turntable(prior: Prior, frames: int, resolution: int, elevation_deg: float = 20.0) -> Cameras:
    """`frames` cameras once around the object, with the category's intrinsics and distance (`category_cameras`)."""
    reference, radius = category_cameras(prior, resolution)
    return turntable_cameras(reference, frames, radius, elevation_deg)


def codes_of(model: HypNeRFModel, spec: str) -> Codes:
    """Codes [1, D] of a training object id (or name), or of a latent file (a path ending in .pt)."""
    if spec.endswith(".pt"):
        return load_codes(Path(spec), model)
    try:
        index = model.object_index(spec)
    except KeyError as error:
        raise InputError(spec, str(error.args[0])) from None
    return model.codebook(torch.tensor([index], device=model.device), sample=False)


def write_video(frames: List[np.ndarray], path: Path, fps: int) -> None:
    """An mp4 (H.264 through ffmpeg), written to a temporary name and renamed."""
    import mediapy

    try:
        with atomic_output(path) as temporary:
            mediapy.write_video(str(temporary), np.stack(frames), fps=fps)
    except (RuntimeError, FileNotFoundError) as error:
        raise InputError(path, f"could not write the video ({error}); is ffmpeg installed?") from None


def write_frames(model: HypNeRFModel, params_of_frame: Callable[[int], NeRFParams], cameras: Cameras, output: Path, fps: int, description: str) -> None:
    """An mp4 whose frame k is NeRF `params_of_frame(k)` seen by camera k of `cameras`."""
    frames = []
    with progress() as bar:
        task = bar.add_task(description, total=len(cameras))
        for k in range(len(cameras)):
            with torch.no_grad():
                frames.append(render_image(model, params_of_frame(k), cameras, k))
            bar.advance(task)
    write_video(frames, output, fps)
    CONSOLE.print(f"wrote {output} ({len(frames)} frames)", soft_wrap=True)


def progress() -> Progress:
    return Progress(TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=CONSOLE)


@dataclass
class Turntable:
    """A video of one object once around (training object, latent file or finetuned NeRF)."""

    load_config: Path
    output: Path
    """The mp4 to write."""
    object: Optional[str] = None
    latent: Optional[Path] = None
    finetuned: Optional[Path] = None
    frames: int = 48
    resolution: int = 128
    """Image width and height in pixels."""
    elevation_deg: float = 20.0
    fps: int = 24

    def main(self) -> None:
        prior = load_prior(self.load_config)
        name, params = chosen_params(prior.model, self.load_config, self.object, self.latent, self.finetuned)
        cameras = category_turntable(prior, self.frames, self.resolution, self.elevation_deg)
        write_frames(prior.model, lambda k: params, cameras, self.output, self.fps, f"turntable of {name}")


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
    frames: int = 48
    resolution: int = 128
    elevation_deg: float = 20.0
    fps: int = 24

    def main(self) -> None:
        prior = load_prior(self.load_config)
        model = prior.model
        first, last = codes_of(model, self.start), codes_of(model, self.end)
        cameras = category_turntable(prior, self.frames, self.resolution, self.elevation_deg)

        def params_of_frame(k: int) -> NeRFParams:
            t = k / max(self.frames - 1, 1)
            return model.hypernetwork(first.lerp(last, t if self.blend in ("both", "shape") else 0.0, t if self.blend in ("both", "colour") else 0.0))

        write_frames(model, params_of_frame, cameras, self.output, self.fps, f"morph {self.start} -> {self.end}")


@dataclass
class Sheet:
    """A contact sheet (PNG): training objects, or random samples from the prior."""

    load_config: Path
    output: Path
    objects: Tuple[str, ...] = ()
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
            items = [(f"sample {k}", Codes(codes.shape[k : k + 1], codes.color[k : k + 1])) for k in range(self.samples)]
        else:
            items = [(spec, codes_of(model, spec)) for spec in (self.objects or model.object_ids)]
        reference, radius = category_cameras(prior, self.resolution)
        camera = sphere_cameras(reference, [math.radians(self.azimuth_deg)], [math.radians(self.elevation_deg)], radius)
        images = []
        with progress() as bar:
            task = bar.add_task("contact sheet", total=len(items))
            for _, codes in items:
                with torch.no_grad():
                    images.append(render_image(model, model.hypernetwork(codes), camera, 0))
                bar.advance(task)
        sheet = contact_sheet(images, self.columns)
        with atomic_output(self.output) as temporary:
            Image.fromarray(sheet).save(temporary, format="PNG")
        CONSOLE.print(f"wrote {self.output} ({len(images)} objects)", soft_wrap=True)


def contact_sheet(images: List[np.ndarray], columns: int) -> np.ndarray:
    """Images [H, W, 3] of one size tiled row by row, `columns` per row, white where none."""
    height, width = images[0].shape[:2]
    rows = math.ceil(len(images) / columns)
    sheet = np.full((rows * height, min(columns, len(images)) * width, 3), 255, dtype=np.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        sheet[r * height : (r + 1) * height, c * width : (c + 1) * width] = image
    return sheet

