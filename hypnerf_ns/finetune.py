"""Denoise and finetune: a generated NeRF refitted on denoised views of itself and the real inputs.

    generated NeRF --render--> V views on a sphere --denoiser--> V cleaned views
    NeRF's own parameters <--fit-- cleaned views (weight 1 - input_share) + input views (input_share)
                                   + consistency_weight * see-through

The NeRF's parameters (hash tables and MLP weights) start from the hypernetwork's output and
are then free. Fitting one 3D field to all views makes the views agree by construction, except
where the field is semi-transparent: the consistency term penalises `see_through`, the
transmittance, seen from other cameras, across the surface points that one view shows. It is
also the consistency figure reported by `hypnerf-ns eval --finetune`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import torch
from rich.console import Console
from torch import Tensor
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle

from hypnerf_ns.commands import load_prior, write_renders
from hypnerf_ns.atomic import write_text_atomic
from hypnerf_ns.denoise import Denoiser, as_straight_rgba, denoiser_path, load_denoiser, rendered_views
from hypnerf_ns.errors import InputError
from hypnerf_ns.hypernetwork import NeRFParams
from hypnerf_ns.camera_paths import orbit_like
from hypnerf_ns.inversion import PosedPixels, fit, join_pixels, load_posed_pixels, pixels_of, render_ray_outputs, render_rays
from hypnerf_ns.latent import FinetunedNeRF, Latent, prior_fingerprint
from hypnerf_ns.model import HypNeRFModel
from hypnerf_ns.select import chosen_params

CONSOLE = Console()
ORBIT_VIEWS = 16
"""Views rendered around an object and denoised, by default."""


def see_through(model: HypNeRFModel, params: NeRFParams, occupied: Tensor, points: Tensor, centres: Tensor, margin: float = 0.04) -> Tensor:
    """Transmittance [S, C] through each surface point [S, 3] (within +-`margin` along the ray)
    seen from each camera centre [C, 3].

    A point at the expected depth of a view's ray is where that view sees a surface. Density does
    not depend on the view, so every camera should find it solid (transmittance 0 across it, an
    occluder in front notwithstanding). Transmittance left means that views disagree there: a
    half-transparent surface, or an expected depth in empty space between two surfaces.
    Only the short segment is rendered, so pushing this down cannot fill space with fog.
    """
    offsets = points[:, None, :] - centres[None, :, :]
    distance = offsets.norm(dim=-1, keepdim=True)
    origins = centres[None].expand_as(offsets).reshape(-1, 3)
    bundle = RayBundle(
        origins=origins, directions=(offsets / distance).reshape(-1, 3), pixel_area=torch.ones_like(origins[:, :1]),
        nears=(distance - margin).reshape(-1, 1), fars=(distance + margin).reshape(-1, 1),
    )
    outputs = model.render(bundle, params, torch.zeros(len(origins), dtype=torch.long, device=origins.device), occupied, normals=False)
    return (1.0 - outputs["accumulation"]).reshape(points.shape[0], centres.shape[0])


def surface_points(depth: Tensor, accumulation: Tensor, origins: Tensor, directions: Tensor, min_accumulation: float = 0.5) -> Tensor:
    """Points [S, 3] at the expected depth of the rays [R] that hit something (accumulation > `min_accumulation`)."""
    hit = accumulation[:, 0] > min_accumulation
    return origins[hit] + directions[hit] * depth[hit]


def camera_centres(pixels: PosedPixels) -> Tensor:
    """[V, 3] the origin of each view of `pixels` (pinhole cameras)."""
    first_ray = torch.stack([torch.nonzero(pixels.view_of_ray == v)[0, 0] for v in range(pixels.num_views)])
    return pixels.origins[first_ray]


def consistency(model: HypNeRFModel, params: NeRFParams, pixels: PosedPixels, rays: int = 2048, seed: int = 0) -> float:
    """Mean `see_through` of `rays` random rays' surface points of `pixels`' views, seen from every view's camera."""
    generator = torch.Generator().manual_seed(seed)
    sample = pixels.select(torch.randperm(len(pixels.origins), generator=generator)[:rays].to(pixels.origins.device))
    model.eval()
    with torch.no_grad():
        occupied = model.occupancy_of(params)
        outputs = render_ray_outputs(model, params, sample.origins, sample.directions, occupied)
        points = surface_points(outputs["depth"], outputs["accumulation"], sample.origins, sample.directions)
        if len(points) == 0:
            return 1.0  # nothing is solid: every view is seen through
        return float(see_through(model, params, occupied, points, camera_centres(pixels)).mean())


def denoised_views(model: HypNeRFModel, params: NeRFParams, denoiser: Optional[Denoiser], cameras: Cameras) -> PosedPixels:
    """The views of `cameras` rendered from `params` and cleaned by `denoiser` (as rendered if None), as straight-RGBA pixels."""
    template = pixels_of(cameras, None, model.device)
    images = rendered_views(model, params, template)
    if denoiser is not None:
        with torch.no_grad():
            images = denoiser(images)
    return pixels_of(cameras, as_straight_rgba(images), model.device)


def finetune(
    model: HypNeRFModel,
    params: NeRFParams,
    targets: PosedPixels,
    inputs: Optional[PosedPixels],
    steps: int = 300,
    input_share: float = 0.5,
    consistency_weight: float = 0.003,
    lr: float = 0.003,
    consistency_rays: int = 128,
    seed: int = 0,
) -> NeRFParams:
    """The NeRF `params` [1, ...] fitted by its own parameters to `targets` (the denoised views)
    and `inputs` (real views, `input_share` of the photometric loss), plus `consistency_weight` x
    the see-through of surface points of target rays from the target cameras, for `steps` steps."""
    free = {name: value.detach().clone().requires_grad_(True) for name, value in params.items()}
    pixels = targets
    if inputs is not None:
        total = len(targets.origins) + len(inputs.origins)
        pixels = join_pixels(inputs.weighted(input_share * total / len(inputs.origins)), targets.weighted((1.0 - input_share) * total / len(targets.origins)))
    centres = camera_centres(targets)
    generator = torch.Generator().manual_seed(seed + 1)
    solid = torch.nonzero(targets.rgba[:, 3] > 0.5)[:, 0]

    def see_through_term(current: NeRFParams, occupied: Tensor) -> Tensor:
        if consistency_weight == 0 or len(solid) == 0:
            return torch.zeros((), device=model.device)
        rays = targets.select(solid[torch.randint(len(solid), (consistency_rays,), generator=generator).to(solid.device)])
        with torch.no_grad():
            outputs = render_ray_outputs(model, current, rays.origins, rays.directions, occupied)
        points = surface_points(outputs["depth"], outputs["accumulation"], rays.origins, rays.directions)
        if len(points) == 0:
            return torch.zeros((), device=model.device)
        chosen = centres[torch.randint(len(centres), (2,), generator=generator).to(centres.device)]
        return consistency_weight * see_through(model, current, occupied, points, chosen).mean()

    fit(model, pixels, list(free.values()), lambda: free, steps, lr=lr, regulariser=see_through_term, seed=seed)
    return {name: value.detach() for name, value in free.items()}


@dataclass
class Finetune:
    """Denoise-and-finetune the NeRF of a latent file (or of a training object); writes a standalone NeRF file, metrics and renders."""

    load_config: Path
    """config.yml of a trained hyp-nerf (with its denoiser: `hypnerf-ns denoiser train`)."""
    latent: Optional[Path] = None
    """Latent file from `hypnerf-ns invert`; its input views are used unless --views is given."""
    object: Optional[str] = None
    """Or: a training object's id (its generated NeRF, sharpened; no input views unless --views)."""
    data: Optional[Path] = None
    """The object's folder, for input views and test views (default: the latent's source or the training object's folder)."""
    views: Optional[Tuple[int, ...]] = None
    """Input views (transforms_train.json indices); default: the latent's inputs, none for --object."""
    output: Optional[Path] = None
    """Where to write nerf.pt, metrics.json and renders/ (default: finetuned/<name>)."""
    num_views: int = ORBIT_VIEWS
    """Views rendered around the object and denoised."""
    steps: int = 300
    """Fitting steps (1024 rays each)."""
    input_share: float = 0.5
    """Share of the photometric loss on the real input views (the rest on the denoised views)."""
    consistency_weight: float = 0.003
    """Weight of the see-through term (README: 0.001-0.01 trade test PSNR for consistency; 0.1 fogs the NeRF)."""
    lr: float = 0.003
    no_denoiser: bool = False
    """Fit the rendered views as they are (ablation: self-distillation without the denoiser)."""
    seed: int = 0

    def main(self) -> None:
        start_time = time.perf_counter()
        if (self.latent is None) == (self.object is None):
            raise InputError(self.load_config, "give exactly one of --latent FILE and --object ID")
        prior = load_prior(self.load_config)
        model = prior.model
        fingerprint = prior_fingerprint(model)
        denoiser = None if self.no_denoiser else load_denoiser(denoiser_path(self.load_config), model)
        name, generated = chosen_params(model, self.load_config, self.object, self.latent, None)
        if self.latent is not None:
            source = Latent.load(self.latent).source
            folder = self.data if self.data is not None else Path(source["data"]) if source.get("data") else None
            views = self.views if self.views is not None else tuple(source.get("views", ()))
        else:
            folder = self.data if self.data is not None else prior.training_folder(name)
            views = self.views or ()
        if folder is None:
            raise InputError(self.latent, "names no object folder: give --data OBJECT_DIR")
        inputs = load_posed_pixels(folder, "train", views, prior.scale, model.device) if views else None
        targets = denoised_views(model, generated, denoiser, orbit_like(folder, views[0] if views else 0, prior.scale, self.num_views))
        with CONSOLE.status(f"finetuning {name} ({self.steps} steps)"):
            params = finetune(model, generated, targets, inputs, self.steps, self.input_share, self.consistency_weight, self.lr, seed=self.seed)
        seconds = time.perf_counter() - start_time
        output = self.output if self.output is not None else Path("finetuned") / name
        source = {"data": str(folder), "views": list(views), "latent": str(self.latent or ""), "object": self.object or "", "denoiser": denoiser is not None}
        FinetunedNeRF(params, fingerprint, str(self.load_config), name, source).save(output / "nerf.pt")
        metrics = {"object": name, "views": list(views), "seconds": seconds}
        if (folder / "transforms_test.json").is_file():
            from hypnerf_ns.evaluation import image_metrics

            test = load_posed_pixels(folder, "test", None, prior.scale, model.device)
            for method, method_params in (("generated", generated), ("finetuned", params)):
                metrics[method] = {**image_metrics(model, method_params, test), "see_through": consistency(model, method_params, test)}
            with torch.no_grad():
                rgb = render_rays(model, params, test.origins, test.directions, model.occupancy_of(params))
            write_renders(rgb, test.size, output / "renders")
        write_text_atomic(output / "metrics.json", json.dumps(metrics, indent=1) + "\n")
        summary = "; ".join(f"{m}: {metrics[m]['psnr']:.2f} dB, SSIM {metrics[m]['ssim']:.3f}" for m in ("generated", "finetuned") if m in metrics)
        CONSOLE.print(f"wrote {output / 'nerf.pt'} in {seconds:.0f} s" + (f" (test views: {summary})" if summary else ""))
