"""The denoiser: a category-specific image-to-image network that cleans renders of generated NeRFs.

HyP-NeRF's second stage renders views of a generated NeRF, removes its artefacts with a
network trained on the category, and finetunes the NeRF on the cleaned views (finetune.py).

The network is a small residual U-Net (`Denoiser`): RGBA in (rendered colour on white and
accumulation), RGBA out. A U-Net rather than a plain residual conv stack because the
artefacts of a generated NeRF (blur, fog, a smeared leg) span tens of pixels: two
down-sampling levels give a receptive field of about 40 px at 64 px for a few convolutions at
full resolution, which keeps it trainable in minutes on a CPU. The last convolution starts at
zero, so an untrained denoiser is the identity and training only ever learns a correction.

Training pairs are (render of an inverted NeRF, ground-truth view at the same camera), made
the way the denoiser will be used: each training object is inverted from one of its views as
if the prior had never seen it (its own code is left out of the starting candidates), and the
resulting NeRF renders several of its training views. Renders of the training objects' own
codes would teach little: they are already close to the ground truth (31 dB at 64 px on the
dev chairs, against about 16 dB for inversions of unseen chairs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hypnerf_ns.errors import InputError
from hypnerf_ns.files import load_torch_payload, save_torch_atomic
from hypnerf_ns.lib.metrics import psnr
from hypnerf_ns.lib.rendering import render_views
from hypnerf_ns.lib.views import load_posed_pixels, on_white
from hypnerf_ns.method.model import HypNeRFModel
from hypnerf_ns.nerf.latent_files import check_prior
from hypnerf_ns.tasks.inversion import SEARCH_PIXELS, best_start, invert

FORMAT = "hypnerf-denoiser"
VERSION = 1
FILE_NAME = "denoiser.pt"
"""Written in the run folder next to config.yml (nerfstudio_models/ holds only step-*.ckpt)."""


def conv_block(inputs: int, outputs: int) -> nn.Sequential:
    """Two 3x3 convolutions with SiLU."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1), nn.SiLU(), nn.Conv2d(outputs, outputs, 3, padding=1), nn.SiLU()
    )


class Denoiser(nn.Module):
    """Residual U-Net on RGBA images [B, 4, H, W] in [0, 1] (colour on white, then alpha), any size.

    Args:
        width: channels at full resolution (twice that at the two coarser levels).
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = width
        self.encode0 = conv_block(4, width)
        self.encode1 = conv_block(width, 2 * width)
        self.encode2 = conv_block(2 * width, 2 * width)
        self.decode1 = conv_block(4 * width, 2 * width)
        self.decode0 = conv_block(3 * width, width)
        self.head = nn.Conv2d(width, 4, 1)
        nn.init.zeros_(self.head.weight)  # starts as the identity
        nn.init.zeros_(self.head.bias)

    def forward(self, images: Tensor) -> Tensor:
        height, width = images.shape[-2:]
        padded = F.pad(images, (0, -width % 4, 0, -height % 4), mode="replicate")
        x0 = self.encode0(padded)
        x1 = self.encode1(F.avg_pool2d(x0, 2))
        x2 = self.encode2(F.avg_pool2d(x1, 2))
        y1 = self.decode1(torch.cat([x1, F.interpolate(x2, scale_factor=2.0, mode="bilinear")], dim=1))
        y0 = self.decode0(torch.cat([x0, F.interpolate(y1, scale_factor=2.0, mode="bilinear")], dim=1))
        return (padded + self.head(y0)).clamp(0.0, 1.0)[..., :height, :width]


def as_straight_rgba(images: Tensor) -> Tensor:
    """[V, 4, H, W] colour-on-white + alpha -> [V, H, W, 4] straight RGBA (colour un-blended from white)."""
    rgb, alpha = images[:, :3], images[:, 3:]
    straight = ((rgb - (1.0 - alpha)) / alpha.clamp_min(1e-3)).clamp(0.0, 1.0)
    return torch.cat([straight, alpha], dim=1).permute(0, 2, 3, 1)


def training_pairs(
    model: HypNeRFModel,
    objects: list[tuple[int, Path]],
    scale: float,
    inversions_per_object: int,
    views_per_inversion: int,
    steps: int,
    seed: int,
    search_pixels: int = SEARCH_PIXELS,
    on_object: Callable[[], None] | None = None,
) -> tuple[Tensor, Tensor]:
    """(renders, ground truth), each [N, 4, H, W], of training objects given as (index in the
    codebook, folder), all of them or a subset.

    Each object is inverted `inversions_per_object` times from one random training view of it as
    if it were unseen (its own code excluded from the starting candidates, which are scored on
    `search_pixels` of the view: that search renders every training code, so its cost grows
    with the prior's objects; `steps` steps), and the inverted NeRF renders that view and
    `views_per_inversion` - 1 other random training views.
    """
    generator = torch.Generator().manual_seed(seed)
    inputs, targets = [], []
    for index, folder in objects:
        views = load_posed_pixels(folder, "train", None, scale, model.device)
        height, width = views.size
        for _ in range(inversions_per_object):
            chosen = torch.randperm(views.num_views, generator=generator)[:views_per_inversion].tolist()
            source = views.select(torch.nonzero(views.view_of_ray == chosen[0])[:, 0])
            start, _ = best_start(model, source, count=search_pixels, seed=seed, exclude=index)
            params = model.hypernetwork(invert(model, source, start, steps, seed=seed))
            for view in chosen:
                pixels = views.select(torch.nonzero(views.view_of_ray == view)[:, 0])
                inputs.append(render_views(model, params, pixels))
                target = torch.cat([on_white(pixels.rgba), pixels.rgba[:, 3:]], dim=-1)
                targets.append(target.reshape(1, height, width, 4).permute(0, 3, 1, 2))
        if on_object is not None:
            on_object()
    return torch.cat(inputs), torch.cat(targets)


@dataclass
class TrainingLog:
    losses: list[float]
    """Training L1 of every step."""
    validation_psnr: list[tuple[int, float]]
    """(step, held-out PSNR) at every check; step 0 is the untrained (identity) denoiser."""
    kept_step: int
    """Step whose weights were kept: the best held-out PSNR (0: identity), or the last step without validation."""


def train_denoiser(
    denoiser: Denoiser,
    inputs: Tensor,
    targets: Tensor,
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    validation: tuple[Tensor, Tensor] | None = None,
    validate_every: int = 100,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainingLog:
    """Fit `denoiser` to map `inputs` to `targets` ([N, 4, H, W]) by L1, with random horizontal flips.

    With `validation` pairs (of objects not in `inputs`), the weights with the best validation
    PSNR are kept, counting the untrained identity: a denoiser that does not generalise beyond
    the training objects is never used in place of the renders it would spoil.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(denoiser.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    log = TrainingLog([], [], steps)
    best: tuple[float, dict] | None = None

    def check(step: int) -> None:
        nonlocal best
        denoiser.eval()
        with torch.no_grad():
            score = float(psnr(denoiser(validation[0])[:, :3], validation[1][:, :3]).mean())
        log.validation_psnr.append((step, score))
        if best is None or score > best[0]:
            best, log.kept_step = (score, {k: v.clone() for k, v in denoiser.state_dict().items()}), step
        denoiser.train()

    if validation is not None:
        check(0)
    denoiser.train()
    for step in range(1, steps + 1):
        index = torch.randint(len(inputs), (batch_size,), generator=generator)
        x, y = inputs[index], targets[index]
        if bool(torch.rand((), generator=generator) < 0.5):
            x, y = x.flip(-1), y.flip(-1)
        loss = (denoiser(x) - y).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        log.losses.append(float(loss.detach()))
        if validation is not None and (step % validate_every == 0 or step == steps):
            check(step)
        if on_step is not None:
            on_step(step, log.losses[-1])
    if best is not None:
        denoiser.load_state_dict(best[1])
    denoiser.eval()
    return log


def save_denoiser(denoiser: Denoiser, path: Path, prior: str, report: dict) -> None:
    """Write atomically: weights, width, the prior's fingerprint and how it was trained."""
    save_torch_atomic(
        {
            "format": FORMAT,
            "version": VERSION,
            "width": denoiser.width,
            "state": denoiser.state_dict(),
            "prior": prior,
            "report": report,
        },
        path,
    )


def load_denoiser(path: Path, model: HypNeRFModel) -> Denoiser:
    """The denoiser at `path` (weights_only); InputError naming the file if missing or another prior's."""
    if not path.is_file():
        raise InputError(path, "no denoiser (train one: hypnerf-ns denoiser train --load-config CONFIG)")
    payload = load_torch_payload(path, FORMAT, VERSION, "denoiser")
    check_prior(payload["prior"], model.hypernetwork, path)
    denoiser = Denoiser(int(payload["width"]))
    denoiser.load_state_dict(payload["state"])
    return denoiser.eval()
