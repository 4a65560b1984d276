"""The image encoder: posed views of an object -> the prior's codes, in one forward pass.

HyP-NeRF's second stage maps an image embedding to the codes. No pretrained image network can be
downloaded here, so a small CNN is trained on the category's own views: every training object's
views -> its codebook means (standardised per dimension, squared error). The camera's direction
from the object is an input too, so the network need not guess the viewpoint. It replaces the
O(N) start of inversion (render every training object's NeRF at the input views) by one pass,
and is a method of its own in `hypnerf-ns eval` (`encoder`: codes straight from the images).

    views [V, 4, S, S] (colour on white + alpha, resized to S) + view directions [V, 3]
      -> 4 strided conv blocks -> mean over pixels -> MLP -> standardised codes -> mean over views
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F
from nerfstudio.cameras.cameras import Cameras
from torch import Tensor, nn

from hypnerf_ns.errors import InputError
from hypnerf_ns.files import load_torch_payload, save_torch_atomic
from hypnerf_ns.lib.views import PosedPixels, load_cameras, read_rgba
from hypnerf_ns.nerf.hypernetwork import Codes, HyperNetwork
from hypnerf_ns.nerf.latent_files import check_prior

FILE_NAME = "encoder.pt"
"""Written in the run folder next to config.yml."""
FORMAT = "hypnerf-encoder"
VERSION = 1


def encoder_input(rgba: Tensor, size: int) -> Tensor:
    """Images [V, H, W, 4] straight RGBA in [0, 1] -> [V, 4, size, size]: colour on white, then alpha."""
    alpha = rgba[..., 3:]
    on_white = rgba[..., :3] * alpha + (1.0 - alpha)
    images = torch.cat([on_white, alpha], dim=-1).permute(0, 3, 1, 2)
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class ImageEncoder(nn.Module):
    """Views [V, 4, S, S] and unit view directions [V, 3] -> codes [V, D] of the prior.

    Args:
        shape_dim, color_dim: the prior's code sizes.
        width: channels of the first conv block (doubled at each of the next three).
        size: input side S in pixels.
    """

    def __init__(self, shape_dim: int, color_dim: int, width: int = 32, size: int = 64) -> None:
        super().__init__()
        self.dims = (shape_dim, color_dim, width, size)
        channels = [4, width, 2 * width, 4 * width, 8 * width]
        blocks: list[nn.Module] = []
        for inputs, outputs in pairwise(channels):
            blocks += [
                nn.Conv2d(inputs, outputs, 3, stride=2, padding=1),
                nn.GroupNorm(8, outputs),
                nn.SiLU(),
                nn.Conv2d(outputs, outputs, 3, padding=1),
                nn.GroupNorm(8, outputs),
                nn.SiLU(),
            ]
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Linear(channels[-1] + 3, 256), nn.SiLU(), nn.Linear(256, shape_dim + color_dim))
        self.register_buffer("code_mean", torch.zeros(shape_dim + color_dim))
        self.register_buffer("code_std", torch.ones(shape_dim + color_dim))

    @property
    def size(self) -> int:
        return self.dims[3]

    def standardised(self, images: Tensor, directions: Tensor) -> Tensor:
        """Standardised codes [V, D_s + D_c] of each view."""
        pooled = self.features(images).mean(dim=(2, 3))
        return self.head(torch.cat([pooled, directions], dim=1))

    def forward(self, images: Tensor, directions: Tensor) -> Codes:
        """Codes [1, D] of one object seen in V views: the mean of the views' standardised codes."""
        codes = self.standardised(images, directions).mean(dim=0, keepdim=True) * self.code_std + self.code_mean
        return Codes(codes[:, : self.dims[0]], codes[:, self.dims[0] :])


@dataclass
class EncoderViews:
    """Views of objects for the encoder: images, view directions and each view's object."""

    images: Tensor
    """[N, 4, S, S] uint8 (colour on white, alpha): a thousand objects' views fit in memory."""
    directions: Tensor
    """[N, 3] unit vectors from the object's centre to the camera."""
    objects: Tensor
    """[N] long index of each view's object."""


def view_directions(camera_centres: Tensor) -> Tensor:
    """[V, 3] unit vectors from the origin (the object's centre) to the camera centres [V, 3]."""
    return F.normalize(camera_centres, dim=-1)


def camera_views(cameras: Cameras, files: list[Path], size: int) -> tuple[Tensor, Tensor]:
    """Encoder input [V, 4, S, S] (float) and view directions [V, 3] of V cameras and their image files."""
    height, width = int(cameras.height[0]), int(cameras.width[0])
    rgba = torch.stack([read_rgba(file, (height, width)) for file in files])
    return encoder_input(rgba, size), view_directions(cameras.camera_to_worlds[:, :3, 3])


def pixels_views(pixels: PosedPixels, size: int) -> tuple[Tensor, Tensor]:
    """Encoder input [V, 4, S, S] and view directions [V, 3] of the views of `pixels` (e.g. an inversion's inputs)."""
    height, width = pixels.size
    rgba = pixels.rgba.reshape(-1, height, width, 4).cpu()
    return encoder_input(rgba, size), view_directions(pixels.camera_centres().cpu())


def load_encoder_views(
    folders: list[Path],
    scale: float,
    size: int,
    views_per_object: int,
    seed: int = 0,
    on_object: Callable[[], None] | None = None,
) -> EncoderViews:
    """Up to `views_per_object` random training views of each object folder (codebook order)."""
    generator = torch.Generator().manual_seed(seed)
    images, directions, objects = [], [], []
    for index, folder in enumerate(folders):
        cameras, files = load_cameras(folder, "train", None, scale)
        chosen = torch.randperm(len(cameras), generator=generator)[:views_per_object].tolist()
        view_images, view_directions_ = camera_views(cameras[torch.tensor(chosen)], [files[k] for k in chosen], size)
        images.append((view_images * 255).round().to(torch.uint8))
        directions.append(view_directions_)
        objects += [index] * len(chosen)
        if on_object is not None:
            on_object()
    return EncoderViews(torch.cat(images), torch.cat(directions), torch.tensor(objects))


@dataclass
class EncoderLog:
    losses: list[float] = field(default_factory=list)
    """Training loss (standardised squared error) of every step."""
    validation: list[tuple[int, float]] = field(default_factory=list)
    """(step, squared error on held-out views of the training objects)."""


def train_encoder(
    encoder: ImageEncoder,
    views: EncoderViews,
    targets: Codes,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    validation_fraction: float = 0.1,
    on_step: Callable[[int, float], None] | None = None,
) -> EncoderLog:
    """Fit `encoder` so that each view maps to its object's code `targets` [O, D] (standardised
    with the codes' own statistics, stored in the encoder). A share of the views is held out to
    report how well unseen views of the same objects are encoded."""
    codes = torch.cat([targets.shape, targets.color], dim=1).detach().cpu()
    mean, std = codes.mean(dim=0), codes.std(dim=0).clamp_min(1e-6)
    encoder.code_mean.copy_(mean)
    encoder.code_std.copy_(std)
    standard = (codes - mean) / std
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(views.objects), generator=generator)
    held = order[: int(len(order) * validation_fraction)]
    train = order[len(held) :]
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    log = EncoderLog()

    def error(index: Tensor) -> Tensor:
        images = views.images[index].float() / 255.0
        predicted = encoder.standardised(images, views.directions[index])
        return (predicted - standard[views.objects[index]]).pow(2).mean()

    encoder.train()
    for step in range(1, steps + 1):
        batch = train[torch.randint(len(train), (batch_size,), generator=generator)]
        loss = error(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        log.losses.append(float(loss.detach()))
        if len(held) and (step % 200 == 0 or step == steps):
            encoder.eval()
            with torch.no_grad():
                log.validation.append((step, float(torch.stack([error(part) for part in held.split(256)]).mean())))
            encoder.train()
        if on_step is not None:
            on_step(step, log.losses[-1])
    encoder.eval()
    return log


def save_encoder(encoder: ImageEncoder, path: Path, hypernetwork: HyperNetwork, report: dict[str, object]) -> None:
    """Write atomically: weights, sizes, the prior's fingerprint and how it was trained."""
    save_torch_atomic(
        {
            "format": FORMAT,
            "version": VERSION,
            "dims": list(encoder.dims),
            "state": encoder.state_dict(),
            "prior": hypernetwork.fingerprint(),
            "report": report,
        },
        path,
    )


def load_encoder(path: Path, hypernetwork: HyperNetwork) -> ImageEncoder:
    """The encoder at `path` (weights_only), checked against the prior; InputError naming the file otherwise."""
    if not path.is_file():
        raise InputError(path, "no image encoder (train one: hypnerf-ns encoder train --load-config CONFIG)")
    payload = load_torch_payload(path, FORMAT, VERSION, "image encoder")
    check_prior(payload["prior"], hypernetwork, path)
    encoder = ImageEncoder(*payload["dims"])
    encoder.load_state_dict(payload["state"])
    return encoder.eval()


def encode(encoder: ImageEncoder, pixels: PosedPixels) -> Codes:
    """Codes [1, D] (on the pixels' device) of the object the views of `pixels` show."""
    images, directions = pixels_views(pixels, encoder.size)
    with torch.no_grad():
        codes = encoder(images, directions)
    device = pixels.origins.device
    return Codes(codes.shape.to(device), codes.color.to(device))
