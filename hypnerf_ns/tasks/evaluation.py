"""`hypnerf-ns eval`: the paper's tasks on a trained prior, with baselines on the same views.

Every task writes {"task", "checkpoint", "objects": {id: {method: {metric: value}}}, "mean":
{method: {metric: value}}, "seconds", ...task details} and prints a table. Methods that optimise
get budgets in steps, never in seconds, so their results do not depend on the machine or its load;
`generalization` records each one's ("optimisation_steps": {method: steps}, `optimisation_steps`).

`generalization` (objects of `--data` the prior never saw, from k input views; PSNR / SSIM over
all their test views on white, seconds per object):

- `prior`:    a start (the encoder's codes if the run has an encoder, else `nearest`) + code
              inversion (`inversion.invert`)
- `encoder`:  codes straight from the input views by the run's image encoder (`encoder.py`), if any
- `refined`:  `prior`, then the NeRF fitted to the input views through a copy of the
              hypernetwork for `--refine-steps` (`inversion.refine`, pivotal tuning)
- `nearest`:  the training object whose code best renders the input views, no optimisation
- `mean`:     the mean of the training codes
- `scratch`:  the same small NeRF fitted to the input views from scratch, by default for as many
              optimisation steps as `refined` takes (inversion + refinement; `--scratch-steps`)
- with `--finetune`: `finetuned`, `refined` then denoise-and-finetune (finetune.py) for
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

import time
from pathlib import Path

import torch
from torch import Tensor

from hypnerf_ns.data.category import ObjectEntry
from hypnerf_ns.lib.cameras import orbit_like
from hypnerf_ns.lib.metrics import score_nerf
from hypnerf_ns.lib.prior import mean_code, object_codes
from hypnerf_ns.lib.views import load_posed_pixels, on_white
from hypnerf_ns.method.model import HypNeRFModel
from hypnerf_ns.tasks.denoise import Denoiser
from hypnerf_ns.tasks.encoder import ImageEncoder, encode
from hypnerf_ns.tasks.finetune import ORBIT_VIEWS, consistency, denoised_views, finetune
from hypnerf_ns.tasks.inversion import best_start, fit_from_scratch, invert, refine
from hypnerf_ns.tasks.retrieval import gallery_of, occlude, render_gallery, robust_errors

Results = dict[str, dict[str, float]]
"""method -> metric -> value, for one object."""
BYTES_PER_FLOAT = 4  # codes and NeRF parameters are stored as float32


def generalization_of(
    model: HypNeRFModel,
    folder: Path,
    views: tuple[int, ...],
    scale: float,
    steps: int,
    refine_steps: int,
    finetune_steps: int | None = None,
    denoiser: Denoiser | None = None,
    encoder: ImageEncoder | None = None,
    search_pixels: int = 4096,
    mirror: bool = False,
    scratch_steps: int | None = None,
) -> Results:
    """Every method's test-view metrics for one unseen object from input views `views`; with an
    `encoder`, also its codes straight from the views (`encoder`), which then start the inversion
    instead of the best training code; with `finetune_steps`, also denoise-and-finetune
    of the refined NeRF (`finetuned`), its ablation without the denoiser (`distilled`), and the see-through
    consistency of those and of `prior`, `refined`. `nearest` scores every training code on
    `search_pixels` of the input pixels. With `mirror`, every method also gets the input views'
    mirror images (`views.mirrored`: the category's left-right symmetry). `scratch` fits for
    `scratch_steps` steps, by default as many as `refined` takes (`steps` + `refine_steps`)."""
    pixels = load_posed_pixels(folder, "train", views, scale, model.device, mirror)
    test = load_posed_pixels(folder, "test", None, scale, model.device)
    results: Results = {}
    start_time = time.perf_counter()
    nearest, _ = best_start(model, pixels, count=search_pixels)
    nearest_seconds = time.perf_counter() - start_time
    methods = [("nearest", nearest, nearest_seconds), ("mean", mean_code(model), 0.0)]
    start_time = time.perf_counter()
    start = nearest
    if encoder is not None:
        start = encode(encoder, pixels)
        methods.append(("encoder", start, time.perf_counter() - start_time))
    else:
        start_time -= nearest_seconds  # the search is part of the prior's time
    codes = invert(model, pixels, start, steps)
    prior_seconds = time.perf_counter() - start_time
    methods.append(("prior", codes, prior_seconds))
    with torch.no_grad():
        for name, method_codes, seconds in methods:
            results[name] = {**score_nerf(model, model.hypernetwork(method_codes), test)[0], "seconds": seconds}
    refine_start = time.perf_counter()
    refined = refine(model, pixels, codes, steps=refine_steps)
    refined_seconds = prior_seconds + time.perf_counter() - refine_start
    results["refined"] = {**score_nerf(model, refined, test)[0], "seconds": refined_seconds}
    scratch_start = time.perf_counter()
    scratch_steps = scratch_steps_for(steps, refine_steps, scratch_steps)
    scratch = fit_from_scratch(model, pixels, steps=scratch_steps)
    results["scratch"] = {**score_nerf(model, scratch, test)[0], "seconds": time.perf_counter() - scratch_start}
    if finetune_steps is not None:
        with torch.no_grad():
            compared = {"prior": model.hypernetwork(codes), "refined": refined}
        orbit = orbit_like(folder, views[0], scale, ORBIT_VIEWS)
        for name, method_denoiser in (("finetuned", denoiser), ("distilled", None)):
            method_start = time.perf_counter()
            compared[name] = finetune(
                model, refined, denoised_views(model, refined, method_denoiser, orbit), pixels, finetune_steps
            )
            results[name] = {
                **score_nerf(model, compared[name], test)[0],
                "seconds": refined_seconds + time.perf_counter() - method_start,
            }
        for name, params in compared.items():
            results[name]["see_through"] = consistency(model, params, test)
    return results


def scratch_steps_for(steps: int, refine_steps: int, scratch_steps: int | None = None) -> int:
    """Steps of the `scratch` baseline: `scratch_steps`, else as many as `refined` takes (its
    `steps` of inversion, then `refine_steps` of refinement)."""
    return steps + refine_steps if scratch_steps is None else scratch_steps


def optimisation_steps(
    steps: int, refine_steps: int, scratch_steps: int | None = None, finetune_steps: int | None = None
) -> dict[str, int]:
    """Optimisation steps behind each optimised method of `generalization_of` (with the same
    arguments), counting those of the method it starts from: `prior` inverts, `refined` refines
    `prior`, `finetuned` / `distilled` finetune `refined`. `nearest`, `mean` and `encoder` do not
    optimise."""
    counts = {
        "prior": steps,
        "refined": steps + refine_steps,
        "scratch": scratch_steps_for(steps, refine_steps, scratch_steps),
    }
    if finetune_steps is not None:
        counts |= {"finetuned": counts["refined"] + finetune_steps, "distilled": counts["refined"] + finetune_steps}
    return counts


def reconstruction_of(model: HypNeRFModel, folder: Path, object_id: str, scale: float) -> Results:
    """Test-view metrics of a training object's generated NeRF (and the mean code's), and its bytes."""
    test = load_posed_pixels(folder, "test", None, scale, model.device)
    codes = object_codes(model, object_id)
    with torch.no_grad():
        params = model.hypernetwork(codes)
        results = {
            "prior": score_nerf(model, params, test)[0],
            "mean": score_nerf(model, model.hypernetwork(mean_code(model)), test)[0],
        }
    results["bytes"] = {
        "codes": float((codes.shape.numel() + codes.color.numel()) * BYTES_PER_FLOAT),
        "nerf": float(sum(value[0].numel() for value in params.values()) * BYTES_PER_FLOAT),
    }
    return results


def top_k_hits(scores: Tensor, truth: int) -> dict[str, float]:
    """1.0 / 0.0 for whether object `truth` is ranked first, and within the first five, by `scores` [N] (lower wins)."""
    rank = int((scores < scores[truth]).sum())
    return {"top1": float(rank == 0), "top5": float(rank < 5)}


class RetrievalEvaluator:
    """Retrieval queries against one prior: the gallery of generated NeRFs and of stored training views."""

    def __init__(self, model: HypNeRFModel, entries: list[ObjectEntry], scale: float, pixels: int, seed: int) -> None:
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
        hits: dict[str, dict[str, list[float]]] = {"prior": {}, "pixel-nn": {}}
        for view in range(int(test.view_of_ray.max()) + 1):
            query = test.select(torch.nonzero(test.view_of_ray == view)[:, 0])
            occluded = (
                occlude(query.rgba.reshape(height, width, 4).cpu(), self.generator).reshape(-1, 4).to(query.rgba.device)
            )
            rendered, index = render_gallery(self.model, self.gallery, query, self.pixels)
            for condition, rgba in (("clean", query.rgba), ("occluded", occluded)):
                rgb = on_white(rgba)
                for method, scores in (
                    ("prior", robust_errors(rendered, rgb[index])),
                    ("pixel-nn", self.pixel_nn_scores(rgb)),
                ):
                    for metric, hit in top_k_hits(scores.cpu(), truth).items():
                        hits[method].setdefault(f"{metric}_{condition}", []).append(hit)
        return {method: {metric: sum(v) / len(v) for metric, v in values.items()} for method, values in hits.items()}


def mean_over(objects: dict[str, Results]) -> Results:
    """Per method and metric, the mean over objects."""
    first = next(iter(objects.values()))
    return {m: {k: sum(o[m][k] for o in objects.values()) / len(objects) for k in first[m]} for m in first}
