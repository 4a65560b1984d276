"""`hypnerf-ns eval`: the paper's tasks on a trained prior, with baselines on the same views.

Every task writes {"task", "checkpoint", "objects": {id: {method: {metric: value}}}, "mean":
{method: {metric: value}}, "seconds", ...task details} and prints a table.

`generalization` (objects of `--data` the prior never saw, from k input views; PSNR / SSIM over
all their test views on white, seconds per object):

- `prior`:    best starting code (analysis-by-synthesis) + code inversion (`inversion.invert`)
- `refined`:  `prior`, then the generated NeRF's own parameters fitted to the input views for
              `--refine-seconds` (`inversion.refine`; the prior as an initialisation)
- `nearest`:  the training object whose code best renders the input views, no optimisation
- `mean`:     the mean of the training codes
- `scratch`:  the same small NeRF fitted to the input views from scratch, for as long as
              `refined` took on that object
- with `--finetune`: `finetuned`, `prior` then denoise-and-finetune (finetune.py) for
  `--finetune-steps`; `distilled`, the same without the denoiser (the NeRF refitted on its own
  renders and the inputs); and `see_through` (view consistency, lower is better) of the NeRFs

`reconstruction` (compression; the training objects found in `--data`): PSNR / SSIM on each
object's test views of the NeRF generated from its code (`prior`) and from the mean code
(`mean`), and the bytes stored per object (its codes) against the bytes of the NeRF they make.

`retrieval` (training objects' test views as queries): top-1 / top-5 accuracy, on the clean
view and on the view with clutter and occluders (`retrieval.occlude`), of
- `prior`:    analysis-by-synthesis, every object's NeRF rendered at the query camera
- `pixel-nn`: the object of the stored training view closest to the query (same robust score)

`text` (training objects' held-out captions, phrasings the text mapping never trained on):
how often the codes a caption maps to are nearest to its object's (top-1), among the five
nearest (top-5), and the mean rank (text.py; trains the run's text mapping on first use).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Literal, Optional, Tuple

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from torch import Tensor
from torchmetrics.functional import structural_similarity_index_measure

from hypnerf_ns.commands import best_start, load_prior
from hypnerf_ns.data.dataparser import ObjectEntry, list_objects
from hypnerf_ns.atomic import write_text_atomic
from hypnerf_ns.denoise import Denoiser, denoiser_path, load_denoiser
from hypnerf_ns.errors import InputError
from hypnerf_ns.hypernetwork import Codes, NeRFParams
from hypnerf_ns.inversion import PosedPixels, fit_from_scratch, invert, load_posed_pixels, on_white, refine, render_rays
from hypnerf_ns.camera_paths import orbit_like
from hypnerf_ns.finetune import ORBIT_VIEWS, consistency, denoised_views, finetune
from hypnerf_ns.model import HypNeRFModel
from hypnerf_ns.retrieval import gallery_of, occlude, render_gallery, robust_errors
from hypnerf_ns.captions import category_captions
from hypnerf_ns.text import held_out_retrieval, text_mapping_for

CONSOLE = Console()
Results = Dict[str, Dict[str, float]]
"""method -> metric -> value, for one object."""
BYTES_PER_FLOAT = 4  # codes and NeRF parameters are stored as float32


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


def mean_code(model: HypNeRFModel) -> Codes:
    """The mean of the training objects' codes [1, D] (no occupancy grid: `candidate_codes` also makes one)."""
    book = model.codebook
    return Codes(book.shape_mean.mean(0, keepdim=True).detach(), book.color_mean.mean(0, keepdim=True).detach())


def generalization_of(
    model: HypNeRFModel, folder: Path, views: Tuple[int, ...], scale: float, steps: int, refine_seconds: float,
    finetune_steps: Optional[int] = None, denoiser: Optional[Denoiser] = None,
) -> Results:
    """Every method's test-view metrics for one unseen object from input views `views`; with
    `finetune_steps`, also denoise-and-finetune (`finetuned`), its ablation without the
    denoiser (`distilled`), and the see-through consistency of those and of `prior`, `refined`."""
    pixels = load_posed_pixels(folder, "train", views, scale, model.device)
    test = load_posed_pixels(folder, "test", None, scale, model.device)
    results: Results = {}
    start_time = time.perf_counter()
    start, _ = best_start(model, pixels)
    nearest_seconds = time.perf_counter() - start_time
    codes = invert(model, pixels, start, steps)
    prior_seconds = time.perf_counter() - start_time
    with torch.no_grad():
        for name, method_codes, seconds in (("prior", codes, prior_seconds), ("nearest", start, nearest_seconds), ("mean", mean_code(model), 0.0)):
            results[name] = {**image_metrics(model, model.hypernetwork(method_codes), test), "seconds": seconds}
    refine_start = time.perf_counter()
    refined = refine(model, pixels, codes, refine_seconds)
    refined_seconds = prior_seconds + time.perf_counter() - refine_start
    results["refined"] = {**image_metrics(model, refined, test), "seconds": refined_seconds}
    scratch_start = time.perf_counter()
    scratch = fit_from_scratch(model, pixels, steps=10**9, seconds=refined_seconds)
    results["scratch"] = {**image_metrics(model, scratch, test), "seconds": time.perf_counter() - scratch_start}
    if finetune_steps is not None:
        with torch.no_grad():
            generated = model.hypernetwork(codes)
        orbit = orbit_like(folder, views[0], scale, ORBIT_VIEWS)
        compared = {"prior": generated, "refined": refined}
        for name, method_denoiser in (("finetuned", denoiser), ("distilled", None)):
            method_start = time.perf_counter()
            compared[name] = finetune(model, generated, denoised_views(model, generated, method_denoiser, orbit), pixels, finetune_steps)
            results[name] = {**image_metrics(model, compared[name], test), "seconds": prior_seconds + time.perf_counter() - method_start}
        for name, params in compared.items():
            results[name]["see_through"] = consistency(model, params, test)
    return results


def reconstruction_of(model: HypNeRFModel, folder: Path, object_id: str, scale: float) -> Results:
    """Test-view metrics of a training object's generated NeRF (and the mean code's), and its bytes."""
    test = load_posed_pixels(folder, "test", None, scale, model.device)
    index = torch.tensor([model.object_index(object_id)], device=model.device)
    codes = model.codebook(index, sample=False)
    with torch.no_grad():
        params = model.hypernetwork(codes)
        results = {"prior": image_metrics(model, params, test), "mean": image_metrics(model, model.hypernetwork(mean_code(model)), test)}
    results["bytes"] = {
        "codes": float((codes.shape.numel() + codes.color.numel()) * BYTES_PER_FLOAT),
        "nerf": float(sum(value[0].numel() for value in params.values()) * BYTES_PER_FLOAT),
    }
    return results


def top_k_hits(scores: Tensor, truth: int) -> Dict[str, float]:
    """1.0 / 0.0 for whether object `truth` is ranked first, and within the first five, by `scores` [N] (lower wins)."""
    rank = int((scores < scores[truth]).sum())
    return {"top1": float(rank == 0), "top5": float(rank < 5)}


class RetrievalEvaluator:
    """Retrieval queries against one prior: the gallery of generated NeRFs and of stored training views."""

    def __init__(self, model: HypNeRFModel, entries: List[ObjectEntry], scale: float, pixels: int, seed: int) -> None:
        self.model, self.scale, self.pixels = model, scale, pixels
        self.gallery = gallery_of(model)
        self.generator = torch.Generator().manual_seed(seed)
        views, owners = [], []
        for entry in entries:
            stored = load_posed_pixels(entry.folder, "train", None, scale, model.device)
            views.append(on_white(stored.rgba).reshape(-1, stored.size[0] * stored.size[1], 3))
            owners += [model.object_index(entry.id)] * len(views[-1])
        self.stored_views = torch.cat(views)
        """[V, H*W, 3] every training view on white"""
        self.owner = torch.tensor(owners)
        """[V] object index of each stored view"""

    def pixel_nn_scores(self, query_rgb: Tensor) -> Tensor:
        """Per object [N]: the robust score of its closest stored view to the query [H*W, 3]."""
        per_view = robust_errors(self.stored_views, query_rgb)
        best = torch.full((self.model.codebook.num_objects,), float("inf"))
        return best.scatter_reduce(0, self.owner, per_view.cpu(), reduce="amin")

    def of(self, entry: ObjectEntry) -> Results:
        """Top-1 / top-5 rates over one training object's test views, clean and occluded."""
        truth = self.model.object_index(entry.id)
        test = load_posed_pixels(entry.folder, "test", None, self.scale, self.model.device)
        height, width = test.size
        hits: Dict[str, Dict[str, List[float]]] = {"prior": {}, "pixel-nn": {}}
        for view in range(int(test.view_of_ray.max()) + 1):
            query = test.select(torch.nonzero(test.view_of_ray == view)[:, 0])
            occluded = occlude(query.rgba.reshape(height, width, 4).cpu(), self.generator).reshape(-1, 4).to(query.rgba.device)
            rendered, index = render_gallery(self.model, self.gallery, query, self.pixels)
            for condition, rgba in (("clean", query.rgba), ("occluded", occluded)):
                rgb = on_white(rgba)
                for method, scores in (("prior", robust_errors(rendered, rgb[index])), ("pixel-nn", self.pixel_nn_scores(rgb))):
                    for metric, hit in top_k_hits(scores.cpu(), truth).items():
                        hits[method].setdefault(f"{metric}_{condition}", []).append(hit)
        return {method: {metric: sum(v) / len(v) for metric, v in values.items()} for method, values in hits.items()}


def mean_over(objects: Dict[str, Results]) -> Results:
    """Per method and metric, the mean over objects."""
    first = next(iter(objects.values()))
    return {m: {k: sum(o[m][k] for o in objects.values()) / len(objects) for k in first[m]} for m in first}


@dataclass
class Eval:
    """Evaluate a trained prior on one of the paper's tasks; writes JSON and prints a table."""

    load_config: Path
    """config.yml of a trained hyp-nerf."""
    data: Path
    """Category root: `generalization` uses its objects the prior was not trained on, the other tasks those it was
    (`text`: their held-out captions, phrasings the text mapping never saw, retrieve their codes)."""
    output: Path
    """JSON file to write (atomically)."""
    task: Literal["generalization", "reconstruction", "retrieval", "text"] = "generalization"
    input_views: Tuple[int, ...] = (0,)
    """generalization: indices (in transforms_train.json) of the views each unseen object is inverted from."""
    steps: int = 100
    """generalization: inversion steps per object."""
    refine_seconds: float = 15.0
    """generalization: time for `refined` to fit the generated NeRF's own parameters after inversion."""
    finetune: bool = False
    """generalization: also denoise-and-finetune (needs `hypnerf-ns denoiser train`), its ablation
    without the denoiser, and the see-through consistency of the NeRFs."""
    finetune_steps: int = 300
    """generalization: steps of each finetune."""
    pixels: int = 2048
    """retrieval: query pixels rendered per object and query."""
    seed: int = 0

    def main(self) -> None:
        start_time = time.perf_counter()
        prior = load_prior(self.load_config)
        model, scale = prior.model, prior.scale
        listed = list_objects(self.data)
        seen = [o for o in listed if o.id in model.object_ids]
        unseen = [o for o in listed if o.id not in model.object_ids]
        details: Dict[str, object] = {}
        if self.task == "generalization":
            denoiser = load_denoiser(denoiser_path(self.load_config), model) if self.finetune else None
            finetune_steps = self.finetune_steps if self.finetune else None
            entries, evaluate = unseen, lambda e: generalization_of(model, e.folder, self.input_views, scale, self.steps, self.refine_seconds, finetune_steps, denoiser)
            details["input_views"] = list(self.input_views)
            title = f"generalization from {len(self.input_views)} view(s), {len(unseen)} unseen objects (PSNR / SSIM on test views)"
            if not unseen:
                raise InputError(self.data, "has no objects the prior was not trained on (train with --pipeline.datamanager.dataparser.holdout-every N)")
        elif self.task == "reconstruction":
            entries, evaluate = seen, lambda e: reconstruction_of(model, e.folder, e.id, scale)
            details["hypernetwork_bytes"] = sum(p.numel() for p in model.hypernetwork.parameters()) * BYTES_PER_FLOAT
            title = f"reconstruction of {len(seen)} training objects (PSNR / SSIM on test views)"
        elif self.task == "text":
            mapping = text_mapping_for(prior)
            captions = {item.object_id: item for item in category_captions(self.data, [o.id for o in seen])}
            with torch.no_grad():
                codes = model.codebook(torch.arange(len(model.object_ids), device=model.device), sample=False)
            entries, evaluate = seen, lambda e: held_out_retrieval(mapping, codes, captions[e.id], model.object_ids)
            title = f"text retrieval among {model.codebook.num_objects} training objects, held-out captions of {len(seen)}"
        else:
            entries = seen
            evaluator = RetrievalEvaluator(model, seen, scale, self.pixels, self.seed)
            evaluate = evaluator.of
            title = f"retrieval among {model.codebook.num_objects} training objects, queries: test views of {len(seen)}"
        if not entries:
            raise InputError(self.data, f"has none of the {model.codebook.num_objects} objects this prior was trained on")
        objects = dict(self._run(entries, evaluate))
        mean = mean_over(objects)
        report = {"task": self.task, "checkpoint": str(self.load_config), **details, "objects": objects, "mean": mean, "seconds": time.perf_counter() - start_time}
        write_text_atomic(self.output, json.dumps(report, indent=1) + "\n")
        CONSOLE.print(summary_table(title, objects, mean))
        CONSOLE.print(f"wrote {self.output} ({report['seconds']:.0f} s)")

    def _run(self, entries: List[ObjectEntry], evaluate: Callable[[ObjectEntry], Results]) -> Iterator[Tuple[str, Results]]:
        columns = (TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=CONSOLE) as progress:
            task = progress.add_task(self.task, total=len(entries))
            for entry in entries:
                yield entry.id, evaluate(entry)
                progress.advance(task)


def summary_table(title: str, objects: Dict[str, Results], mean: Results) -> Table:
    """One row per object (and the mean), one column per method and metric."""
    table = Table(title=title)
    table.add_column("object")
    keys = [(method, metric) for method, metrics in mean.items() for metric in metrics]
    for method, metric in keys:
        table.add_column(f"{method}\n{metric}", justify="right")
    for object_id, result in [*objects.items(), ("mean", mean)]:
        table.add_row(object_id, *(f"{result[m][k]:.3f}" if abs(result[m][k]) < 100 else f"{result[m][k]:.0f}" for m, k in keys))
    return table
