"""Optional CLIP guidance for text-to-NeRF, as in the paper: optimise an object's codes so that
renders of its NeRF from several sides match a prompt under CLIP.

Only for users who have CLIP weights on disk (`hypnerf-ns text PROMPT --clip DIR`, DIR a
Hugging Face CLIP folder: config.json, weights, tokenizer files): loaded with
`local_files_only`, never downloaded. Renders keep their gradient to the codes through the
frozen hypernetwork; they are resized to CLIP's input size and normalised with the folder's
image statistics (CLIP's defaults if it has no preprocessor_config.json).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from nerfstudio.cameras.cameras import Cameras
from torch import Tensor

from hypnerf_ns.errors import InputError
from hypnerf_ns.lib.cameras import sphere_cameras
from hypnerf_ns.lib.rendering import render_nerf
from hypnerf_ns.lib.views import pixels_of
from hypnerf_ns.method.model import HypNeRFModel
from hypnerf_ns.nerf.hypernetwork import Codes
from hypnerf_ns.nerf.text_mapping import hub_offline
from hypnerf_ns.tasks.inversion import optimise

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class LocalCLIP:
    """A CLIP model and its tokenizer read from a local folder, and its image statistics."""

    model: torch.nn.Module
    tokenizer: Callable
    image_size: int
    mean: Tensor
    """[3, 1, 1]"""
    std: Tensor
    """[3, 1, 1]"""

    @staticmethod
    def load(folder: Path) -> LocalCLIP:
        """CLIP from `folder`; InputError naming the folder if it is not a readable CLIP folder."""
        if not (folder / "config.json").is_file():
            raise InputError(folder, "not a CLIP folder (no config.json)")
        with hub_offline():
            from transformers import AutoTokenizer, CLIPModel

            try:
                model = CLIPModel.from_pretrained(str(folder), local_files_only=True).eval()
                tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            except (OSError, ValueError) as error:
                raise InputError(folder, f"could not load CLIP from it ({str(error).splitlines()[0]})") from None
        model.requires_grad_(False)
        statistics = folder / "preprocessor_config.json"
        settings = json.loads(statistics.read_text()) if statistics.is_file() else {}
        mean = torch.tensor(settings.get("image_mean", CLIP_MEAN)).reshape(3, 1, 1)
        std = torch.tensor(settings.get("image_std", CLIP_STD)).reshape(3, 1, 1)
        return LocalCLIP(model, tokenizer, int(model.config.vision_config.image_size), mean, std)

    def text_features(self, prompt: str) -> Tensor:
        """Unit text embedding [1, P] of a prompt."""
        tokens = self.tokenizer([prompt], padding=True, return_tensors="pt")
        with torch.no_grad():
            features = self.model.get_text_features(
                input_ids=tokens["input_ids"], attention_mask=tokens.get("attention_mask")
            )
        return F.normalize(_tensor(features), dim=-1)

    def image_features(self, images: Tensor) -> Tensor:
        """Unit image embeddings [N, P] of RGB images [N, H, W, 3] in [0, 1] (differentiable)."""
        pixels = F.interpolate(
            images.permute(0, 3, 1, 2), size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
        )
        return F.normalize(_tensor(self.model.get_image_features(pixel_values=(pixels - self.mean) / self.std)), dim=-1)


def _tensor(features: object) -> Tensor:
    """Features as a tensor (some transformers versions wrap them in an output object)."""
    return features if isinstance(features, Tensor) else features.pooler_output  # type: ignore[attr-defined]


def guidance_cameras(reference: Cameras, radius: float, views: int) -> Cameras:
    """`views` cameras evenly around the object at 15 and 35 degrees of elevation, alternating."""
    azimuths = [2 * math.pi * k / views for k in range(views)]
    elevations = [math.radians(15.0 if k % 2 == 0 else 35.0) for k in range(views)]
    return sphere_cameras(reference, azimuths, elevations, radius)


def clip_optimise(
    model: HypNeRFModel,
    clip: LocalCLIP,
    prompt: str,
    start: Codes,
    cameras: Cameras,
    steps: int,
    lr: float = 0.02,
    prior_weight: float = 1e-3,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[Codes, list[float]]:
    """Codes [1, D] from `start` after `steps` Adam steps on 1 - cos(CLIP(render), CLIP(prompt)),
    averaged over `cameras`, plus `prior_weight` * 0.5 |z|^2 (stays where the prior was trained);
    and the loss per step. The hypernetwork stays frozen."""
    text = clip.text_features(prompt)
    pixels = pixels_of(cameras, None, model.device)
    height, width = pixels.size
    shape = start.shape.detach().clone().requires_grad_(True)
    color = start.color.detach().clone().requires_grad_(True)
    losses: list[float] = []

    def loss_at(_: int) -> Tensor:
        params = model.hypernetwork(Codes(shape, color))
        rgb = render_nerf(model, params, pixels.origins, pixels.directions)["rgb"].reshape(
            len(cameras), height, width, 3
        )
        similarity = (clip.image_features(rgb.cpu()) @ text.T).mean()
        return (1.0 - similarity) + prior_weight * 0.5 * (shape.pow(2).sum() + color.pow(2).sum())

    def record(step: int, loss: float) -> None:
        losses.append(loss)
        if on_step is not None:
            on_step(step + 1, loss)

    optimise(model, [shape, color], loss_at, steps, lr, record)
    return Codes(shape.detach(), color.detach()), losses
