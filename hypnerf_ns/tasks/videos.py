"""Videos of generated NeRFs: frames rendered straight from NeRF parameters (no nerfstudio
pipeline), on white, written as H.264 mp4 through ffmpeg, or as an animated GIF / WebP
(`hypnerf-ns render`, `hypnerf-ns text`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras
from PIL import Image
from rich.console import Console

from hypnerf_ns.errors import InputError
from hypnerf_ns.files import atomic_output
from hypnerf_ns.lib.cameras import category_turntable
from hypnerf_ns.lib.prior import Prior
from hypnerf_ns.lib.rendering import render_image
from hypnerf_ns.method.model import HypNeRFModel
from hypnerf_ns.nerf.hypernetwork import NeRFParams
from hypnerf_ns.progress import progress_bar

CONSOLE = Console()


ANIMATED_IMAGE_SUFFIXES = (".gif", ".webp")
"""Outputs written as animated images (Pillow, no ffmpeg), small enough for a web page or README."""


def write_video(frames: list[np.ndarray], path: Path, fps: int) -> None:
    """Frames [H, W, 3] uint8 as a video at `path`, written to a temporary name and renamed: an
    animated image looping forever if the suffix is .gif or .webp, else an mp4 (H.264 through ffmpeg)."""
    if path.suffix.lower() in ANIMATED_IMAGE_SUFFIXES:
        images = [Image.fromarray(frame) for frame in frames]
        with atomic_output(path) as temporary:
            images[0].save(
                temporary,
                format=path.suffix[1:].upper(),
                save_all=True,
                append_images=images[1:],
                duration=round(1000 / fps),
                loop=0,
            )
        return
    import mediapy

    try:
        with atomic_output(path) as temporary:
            mediapy.write_video(str(temporary), np.stack(frames), fps=fps)
    except (RuntimeError, FileNotFoundError) as error:
        raise InputError(path, f"could not write the video ({error}); is ffmpeg installed?") from None


@dataclass
class TurntableOptions:
    """A turntable video: the camera once around the object, at the category's distance and intrinsics."""

    frames: int = 48
    resolution: int = 128
    """Image width and height in pixels."""
    elevation_deg: float = 20.0
    fps: int = 24


def write_turntable(
    prior: Prior,
    params_of_frame: Callable[[int], NeRFParams],
    options: TurntableOptions,
    output: Path,
    description: str,
) -> None:
    """An mp4 of NeRF `params_of_frame(k)` at frame k, the camera going once around (`TurntableOptions`)."""
    cameras = category_turntable(prior, options.frames, options.resolution, options.elevation_deg)
    write_frames(prior.model, params_of_frame, cameras, output, options.fps, description)


def write_frames(
    model: HypNeRFModel,
    params_of_frame: Callable[[int], NeRFParams],
    cameras: Cameras,
    output: Path,
    fps: int,
    description: str,
) -> None:
    """An mp4 whose frame k is NeRF `params_of_frame(k)` seen by camera k of `cameras`."""
    frames = []
    with progress_bar() as bar:
        task = bar.add_task(description, total=len(cameras))
        for k in range(len(cameras)):
            with torch.no_grad():
                frames.append(render_image(model, params_of_frame(k), cameras, k))
            bar.advance(task)
    write_video(frames, output, fps)
    CONSOLE.print(f"wrote {output} ({len(frames)} frames)", soft_wrap=True)
