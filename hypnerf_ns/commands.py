"""`hypnerf-ns invert` (and the loading of a trained prior that the inference verbs share)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from hypnerf_ns.atomic import write_text_atomic
from hypnerf_ns.errors import InputError
from hypnerf_ns.hypernetwork import Codes, NeRFParams
from hypnerf_ns.inversion import PosedPixels, candidate_codes, invert, load_posed_pixels, on_white, photometric_errors, render_rays
from hypnerf_ns.latent import Latent, prior_fingerprint
from hypnerf_ns.model import HypNeRFModel

CONSOLE = Console()


@dataclass
class Prior:
    """A trained prior loaded for inference."""

    model: HypNeRFModel
    """In eval mode."""
    scale: float
    """Image scale it was trained at (camera_res_scale_factor)."""
    data: Path
    """The category folder it was trained on."""
    config_path: Path

    def training_folder(self, object_id: str) -> Path:
        """The data folder of training object `object_id`; InputError if it is not on this machine."""
        folder = self.data / self.model.object_ids[self.model.object_index(object_id)]
        if not folder.is_dir():
            raise InputError(folder, f"missing: training data of {self.config_path} needed here")
        return folder


def load_prior(config_path: Path) -> Prior:
    """The trained model of a `config.yml` (latest checkpoint) in eval mode, with its image scale and data."""
    from nerfstudio.utils.eval_utils import eval_setup

    if not config_path.is_file():
        raise InputError(config_path, "no such config (expected outputs/<experiment>/hyp-nerf/<timestamp>/config.yml)")
    config, pipeline, _, _ = eval_setup(config_path, test_mode="inference")
    model = pipeline.model
    if not isinstance(model, HypNeRFModel):
        raise InputError(config_path, f"a {type(model).__name__}, not a hyp-nerf model")
    model.eval()
    datamanager = config.pipeline.datamanager
    data = Path(datamanager.data if datamanager.data is not None else datamanager.dataparser.data)
    return Prior(model, float(datamanager.camera_res_scale_factor), data, config_path)


def psnr_on(model: HypNeRFModel, params: NeRFParams, pixels: PosedPixels) -> Tuple[float, Tensor]:
    """PSNR on white of one NeRF rendering `pixels`, and the rendered RGB [R, 3]."""
    model.eval()
    with torch.no_grad():
        rgb = render_rays(model, params, pixels.origins, pixels.directions, model.occupancy_of(params))
    mse = float(((rgb - on_white(pixels.rgba)) ** 2).mean())
    return -10.0 * float(np.log10(max(mse, 1e-10))), rgb


def write_renders(rgb: Tensor, size: Tuple[int, int], folder: Path) -> None:
    """Rendered colours [V * H * W, 3] of V views of `size` (height, width) as test_<k>.png in `folder`."""
    height, width = size
    images = (rgb.reshape(-1, height, width, 3).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for k, image in enumerate(images):
        Image.fromarray(image).save(folder / f"test_{k}.png")


def best_start(
    model: HypNeRFModel, pixels: PosedPixels, count: int = 4096, seed: int = 0, exclude: Optional[int] = None
) -> Tuple[Codes, List[Tuple[str, float]]]:
    """The candidate code (training objects' and the mean) that best renders a sample of `pixels`;
    training object `exclude` is left out (to simulate an object the prior never saw)."""
    generator = torch.Generator().manual_seed(seed)
    sample = pixels.select(torch.randperm(len(pixels.origins), generator=generator)[:count].to(pixels.origins.device))
    candidates, occupied, names = candidate_codes(model)
    errors = photometric_errors(model, candidates, occupied, sample)
    if exclude is not None:
        errors[exclude] = float("inf")
    order = torch.argsort(errors).tolist()
    best = order[0]
    return Codes(candidates.shape[best : best + 1], candidates.color[best : best + 1]), [(names[k], float(errors[k])) for k in order]


@dataclass
class Invert:
    """Fit the prior's codes to posed views of an object it never saw; write a latent file and renders."""

    load_config: Path
    """config.yml of a trained hyp-nerf (outputs/<experiment>/hyp-nerf/<timestamp>/config.yml)."""
    data: Path
    """The object's folder (nerf-synthetic: transforms_train.json, optional transforms_test.json)."""
    views: Tuple[int, ...] = (0,)
    """Indices of the input views in transforms_train.json."""
    output: Optional[Path] = None
    """Where to write latent.pt, metrics.json and renders/ (default: inversions/<object>)."""
    steps: int = 200
    """Optimisation steps (1024 random input pixels each)."""
    lr: float = 0.02
    prior_weight: float = 1e-3
    """Weight of 0.5 |z|^2, which keeps the codes where the prior was trained."""
    seed: int = 0

    def main(self) -> None:
        start_time = time.perf_counter()
        prior = load_prior(self.load_config)
        model, scale = prior.model, prior.scale
        output = self.output if self.output is not None else Path("inversions") / self.data.name
        pixels = load_posed_pixels(self.data, "train", self.views, scale, model.device)
        start, ranking = best_start(model, pixels, seed=self.seed)
        CONSOLE.print("best starting codes: " + ", ".join(f"{name} ({error:.4f})" for name, error in ranking[:3]))
        columns = (TextColumn("[bold blue]inverting"), BarColumn(), TextColumn("{task.completed}/{task.total} loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=CONSOLE) as progress:
            task = progress.add_task("invert", total=self.steps, loss=float("nan"))
            codes = invert(
                model, pixels, start, self.steps, lr=self.lr, prior_weight=self.prior_weight, seed=self.seed,
                on_step=lambda step, loss: progress.update(task, advance=1, loss=loss),
            )
        seconds = time.perf_counter() - start_time
        latent = Latent(codes, prior_fingerprint(model), str(self.load_config), self.data.name, {"data": str(self.data), "split": "train", "views": list(self.views)})
        latent.save(output / "latent.pt")
        metrics = {"object": self.data.name, "views": list(self.views), "seconds": seconds, "start": ranking[0][0]}
        if (self.data / "transforms_test.json").is_file():
            test = load_posed_pixels(self.data, "test", None, scale, model.device)
            with torch.no_grad():
                metrics["test_psnr"], rgb = psnr_on(model, model.hypernetwork(codes), test)
            write_renders(rgb, test.size, output / "renders")
        write_text_atomic(output / "metrics.json", json.dumps(metrics, indent=1) + "\n")
        CONSOLE.print(f"wrote {output / 'latent.pt'} in {seconds:.1f} s" + (f"; test-view PSNR {metrics['test_psnr']:.2f} dB" if "test_psnr" in metrics else ""))
