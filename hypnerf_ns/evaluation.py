"""`hypnerf-ns eval`: the paper's tasks on a trained prior, with baselines on the same views.

Implemented: `generalization` (objects the prior never saw, from k input views). For each
object and method the PSNR / SSIM over all its test views (white background), plus seconds:

- `prior`:    best starting code (analysis-by-synthesis) + code inversion (`inversion.invert`)
- `refined`:  `prior`, then the generated NeRF's own parameters fitted to the input views for
              `--refine-seconds` (`inversion.refine`; the prior as an initialisation)
- `nearest`:  the training object whose code best renders the input views, no optimisation
- `mean`:     the mean of the training codes
- `scratch`:  the same small NeRF fitted to the input views from scratch, for as long as
              `refined` took on that object (the longest method)

Output JSON: {"task", "checkpoint", "input_views", "objects": {id: {method: {"psnr", "ssim",
"seconds"}}}, "mean": {method: {"psnr", "ssim", "seconds"}}, "seconds"}.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Literal, Tuple

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from torchmetrics.functional import structural_similarity_index_measure

from hypnerf_ns.commands import best_start, load_prior
from hypnerf_ns.data.dataparser import list_objects
from hypnerf_ns.data.writer import write_text_atomic
from hypnerf_ns.errors import InputError
from hypnerf_ns.hypernetwork import Codes, NeRFParams
from hypnerf_ns.inversion import PosedPixels, candidate_codes, fit_from_scratch, invert, load_posed_pixels, on_white, refine, render_rays
from hypnerf_ns.model import HypNeRFModel

CONSOLE = Console()
METHODS = ("prior", "refined", "nearest", "mean", "scratch")


def image_metrics(model: HypNeRFModel, params: NeRFParams, pixels: PosedPixels) -> Dict[str, float]:
    """Mean PSNR and SSIM over the views of `pixels` (white background)."""
    model.eval()
    with torch.no_grad():
        rgb = render_rays(model, params, pixels.origins, pixels.directions, model.occupancy_of(params)).clamp(0, 1)
    height, width = pixels.size
    pred = rgb.reshape(-1, height, width, 3).permute(0, 3, 1, 2)
    gt = on_white(pixels.rgba).reshape(-1, height, width, 3).permute(0, 3, 1, 2)
    mse = ((pred - gt) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    ssim = structural_similarity_index_measure(pred, gt, data_range=1.0, reduction="none")
    return {"psnr": float((-10.0 * torch.log10(mse)).mean()), "ssim": float(ssim.mean())}


def generalization_of(model: HypNeRFModel, folder: Path, views: Tuple[int, ...], scale: float, steps: int, refine_seconds: float) -> Dict[str, Dict[str, float]]:
    """Every method's test-view metrics for one unseen object from input views `views`."""
    pixels = load_posed_pixels(folder, "train", views, scale, model.device)
    test = load_posed_pixels(folder, "test", None, scale, model.device)
    results: Dict[str, Dict[str, float]] = {}
    start_time = time.perf_counter()
    start, _ = best_start(model, pixels)
    nearest_seconds = time.perf_counter() - start_time
    codes = invert(model, pixels, start, steps)
    prior_seconds = time.perf_counter() - start_time
    candidates, _, _ = candidate_codes(model)
    mean = Codes(candidates.shape[-1:], candidates.color[-1:])
    with torch.no_grad():
        for name, method_codes, seconds in (("prior", codes, prior_seconds), ("nearest", start, nearest_seconds), ("mean", mean, 0.0)):
            results[name] = {**image_metrics(model, model.hypernetwork(method_codes), test), "seconds": seconds}
    refine_start = time.perf_counter()
    refined = refine(model, pixels, codes, refine_seconds)
    refined_seconds = prior_seconds + time.perf_counter() - refine_start
    results["refined"] = {**image_metrics(model, refined, test), "seconds": refined_seconds}
    scratch_start = time.perf_counter()
    scratch = fit_from_scratch(model, pixels, steps=10**9, seconds=refined_seconds)
    results["scratch"] = {**image_metrics(model, scratch, test), "seconds": time.perf_counter() - scratch_start}
    return results


@dataclass
class Eval:
    """Evaluate a trained prior on a task; writes JSON and prints a table."""

    load_config: Path
    """config.yml of a trained hyp-nerf."""
    data: Path
    """Category root; `generalization` uses its objects that the prior was not trained on."""
    output: Path
    """JSON file to write (atomically)."""
    task: Literal["generalization"] = "generalization"
    input_views: Tuple[int, ...] = (0,)
    """Indices (in transforms_train.json) of the views each unseen object is inverted from."""
    steps: int = 100
    """Inversion steps per object."""
    refine_seconds: float = 15.0
    """Time for `refined` to fit the generated NeRF's own parameters after inversion."""

    def main(self) -> None:
        start_time = time.perf_counter()
        model, scale = load_prior(self.load_config)
        unseen = [o for o in list_objects(self.data) if o.id not in model.object_ids]
        if not unseen:
            raise InputError(self.data, "has no objects the prior was not trained on (train with --pipeline.datamanager.dataparser.holdout-every N)")
        objects: Dict[str, Dict[str, Dict[str, float]]] = {}
        columns = (TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=CONSOLE) as progress:
            task = progress.add_task(f"{self.task}, {len(self.input_views)} view(s)", total=len(unseen))
            for entry in unseen:
                objects[entry.id] = generalization_of(model, entry.folder, self.input_views, scale, self.steps, self.refine_seconds)
                progress.advance(task)
        mean = {m: {k: sum(o[m][k] for o in objects.values()) / len(objects) for k in ("psnr", "ssim", "seconds")} for m in METHODS}
        report = {
            "task": self.task,
            "checkpoint": str(self.load_config),
            "input_views": list(self.input_views),
            "objects": objects,
            "mean": mean,
            "seconds": time.perf_counter() - start_time,
        }
        write_text_atomic(self.output, json.dumps(report, indent=1) + "\n")
        table = Table(title=f"{self.task} from {len(self.input_views)} view(s), {len(objects)} unseen objects")
        for column in ("object", *METHODS):
            table.add_column(column, justify="right")
        for object_id, result in [*objects.items(), ("mean", mean)]:
            table.add_row(object_id, *(f"{result[m]['psnr']:.2f} / {result[m]['ssim']:.3f}" for m in METHODS))
        CONSOLE.print(table)
        CONSOLE.print(f"PSNR / SSIM on all test views; per object: prior {mean['prior']['seconds']:.1f} s, refined {mean['refined']['seconds']:.1f} s; wrote {self.output}")
