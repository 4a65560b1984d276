"""Image metrics: PSNR and SSIM (no LPIPS: its weights would be downloaded), and a NeRF scored on views."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from hypnerf_ns.lib.rendering import render_pixels
from hypnerf_ns.lib.views import PosedPixels, on_white
from hypnerf_ns.method.model import HypNeRFModel
from hypnerf_ns.nerf.hypernetwork import NeRFParams


def psnr(images: Tensor, targets: Tensor) -> Tensor:
    """PSNR [N] in dB of images against targets, both [N, ...] in [0, 1] (one value per image)."""
    mse = ((images - targets) ** 2).flatten(1).mean(dim=1).clamp_min(1e-10)
    return -10.0 * torch.log10(mse)


def image_metrics(images: Tensor, targets: Tensor) -> dict[str, float]:
    """Mean PSNR and SSIM over RGB images [V, H, W, 3] against targets [V, H, W, 3], in [0, 1]."""
    pred, gt = images.clamp(0, 1).permute(0, 3, 1, 2), targets.permute(0, 3, 1, 2)
    ssim = structural_similarity_index_measure(pred, gt, data_range=1.0, reduction="none")
    assert isinstance(ssim, Tensor)  # a tuple only with return_full_image=True
    return {"psnr": float(psnr(pred, gt).mean()), "ssim": float(ssim.mean())}


def score_nerf(model: HypNeRFModel, params: NeRFParams, pixels: PosedPixels) -> tuple[dict[str, float], Tensor]:
    """Mean PSNR / SSIM of one NeRF over the views of `pixels` (white background), and its render [R, 3]."""
    rgb = render_pixels(model, params, pixels)
    height, width = pixels.size
    shape = (-1, height, width, 3)
    return image_metrics(rgb.reshape(shape), on_white(pixels.rgba).reshape(shape)), rgb
