"""Which refinement after code inversion generalizes best to unseen views of an unseen object?

On the objects of `--data` a trained prior never saw (the 6 held-out real dev chairs), from the
input views `--views` (and their mirror images with `--mirror`), the codes are found as eval's
`prior` does (the image encoder's codes, or the best training code, then `invert`); then each
recipe fits for the same number of steps (`--steps`: equal work, whatever else runs on the
machine) and is scored on all test views (PSNR / SSIM on white, as `hypnerf-ns eval`):

- `prior`:          the inverted codes' NeRF, no refinement
- `free:LR`:        the generated NeRF's own parameters fitted
- `anchored:W`:     `free` plus W * the mean squared change of each parameter group from the generated
                    one (over its variance)
- `refine:LR`:      a copy of the hypernetwork (all but the hash-table head's weight, 98% of the weights)
                    and the codes fitted together, the table bias moving on the coarser half of the
                    levels, the learning rate decaying from LR along a half cosine, the copy held near
                    the prior (`inversion.REFINE_DRIFT_WEIGHT`): `inversion.refine`, eval's `refined`
- `drift:W`:        `refine` with W * the mean over the fitted hypernetwork weights of their squared
                    change (over the original's variance) instead of the default weight; `drift:0`
                    lets the copy move freely
- `levels:K`:       `refine` with the table bias moving on the K coarsest levels (K = all levels: everywhere)
- `then-free:F`:    `refine` for the first 1 - F of the steps, then the refined NeRF's own parameters
                    (all levels of the tables: free to leave what the hypernetwork can make) for the rest
- `scratch:LR`:     no prior: a fresh NeRF fitted (eval's `scratch`, there for as long as `refined`)

    python benchmarks/refine_recipes.py --load-config RUN/config.yml --mirror \
        --recipes prior free:0.003 anchored:1 refine drift:0

Writes `--output` (JSON {"checkpoint", "views", "mirror", "steps", "objects": {id: {recipe: {psnr, ssim, seconds}}},
"mean": {...}}) and prints a table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import tyro
from recipe_report import write_report

from hypnerf_ns.data.category import list_objects
from hypnerf_ns.lib.metrics import score_nerf
from hypnerf_ns.lib.prior import load_prior
from hypnerf_ns.lib.views import PosedPixels, load_posed_pixels
from hypnerf_ns.method.model import HypNeRFModel
from hypnerf_ns.nerf.hypernetwork import Codes, NeRFParams
from hypnerf_ns.progress import progress_bar
from hypnerf_ns.tasks.encoder import encode, load_encoder
from hypnerf_ns.tasks.evaluation import mean_over
from hypnerf_ns.tasks.inversion import REFINE_LR, best_start, drift_from, fit, fit_from_scratch, invert, refine

Recipe = Callable[[HypNeRFModel, PosedPixels, Codes], NeRFParams]


@dataclass
class Args:
    load_config: Path
    data: Path = Path("../shared/data/chairs-dev")
    """Category root; its objects the prior was not trained on are evaluated."""
    views: list[int] = field(default_factory=lambda: [0])
    """Input view indices of each object's train split."""
    mirror: bool = False
    """Add each input view's mirror image (eval --mirror)."""
    steps: int = 300
    """Fitting steps of every recipe."""
    recipes: list[str] = field(default_factory=lambda: ["prior", "free:0.003", "anchored:1", "refine", "drift:0"])
    """Recipes to compare, NAME or NAME:VALUE (the anchor or drift weight, the learning rate of free, refine, scratch,
    the levels, or then-free's share of free steps)."""
    search_pixels: int = 1024
    threads: int = 2
    output: Path = Path("benchmarks/results/refine-recipes.json")


def anchored(
    model: HypNeRFModel, pixels: PosedPixels, generated: NeRFParams, steps: int, lr: float, weight: float
) -> NeRFParams:
    """The NeRF `generated`'s own parameters fitted on `pixels`, plus `weight` * the mean squared
    change of every parameter group from the generated one (over its variance)."""
    params = {name: value.detach().clone().requires_grad_(True) for name, value in generated.items()}
    variables = list(params.values())
    change = (
        drift_from(variables, weight * len(variables)) if weight > 0 else None
    )  # drift_from averages over groups; this sums
    fit(model, pixels, variables, lambda: params, steps, lr=lr, regulariser=change)
    return {name: value.detach() for name, value in params.items()}


def generated(model: HypNeRFModel, codes: Codes) -> NeRFParams:
    """The NeRF the hypernetwork makes of `codes`, detached."""
    with torch.no_grad():
        return model.hypernetwork(codes)


def recipe_of(spec: str, steps: int) -> Recipe:
    """The recipe `spec` names (NAME or NAME:VALUE)."""
    name, _, value = spec.partition(":")
    number = float(value) if value else 0.0
    recipes: dict[str, Recipe] = {
        "prior": lambda model, pixels, codes: generated(model, codes),
        "free": lambda model, pixels, codes: anchored(
            model, pixels, generated(model, codes), steps, number or 0.003, 0.0
        ),
        "anchored": lambda model, pixels, codes: anchored(model, pixels, generated(model, codes), steps, 0.003, number),
        "then-free": lambda model, pixels, codes: anchored(
            model,
            pixels,
            refine(model, pixels, codes, steps - round(steps * number)),
            round(steps * number),
            REFINE_LR,
            0.0,
        ),
        "refine": lambda model, pixels, codes: refine(model, pixels, codes, steps, lr=number or REFINE_LR),
        "drift": lambda model, pixels, codes: refine(model, pixels, codes, steps, drift_weight=number),
        "levels": lambda model, pixels, codes: refine(model, pixels, codes, steps, free_levels=int(number)),
        "scratch": lambda model, pixels, codes: fit_from_scratch(model, pixels, steps, lr=number or 0.01),
    }
    if name not in recipes:
        raise SystemExit(f"unknown recipe {spec!r}; choose from {', '.join(recipes)}")
    return recipes[name]


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    prior = load_prior(args.load_config)
    model = prior.model
    encoder_path = prior.run_file("encoder.pt")
    encoder = load_encoder(encoder_path, model.hypernetwork) if encoder_path.is_file() else None
    unseen = [o for o in list_objects(args.data) if o.id not in model.object_ids]
    if not unseen:
        raise SystemExit(f"{args.data} has no objects the prior at {args.load_config} was not trained on")
    chosen = {spec: recipe_of(spec, args.steps) for spec in args.recipes}
    objects: dict[str, dict[str, dict[str, float]]] = {}
    with progress_bar() as progress:
        task = progress.add_task("recipes", total=len(unseen) * len(chosen))
        for entry in unseen:
            pixels = load_posed_pixels(entry.folder, "train", args.views, prior.scale, model.device, args.mirror)
            test = load_posed_pixels(entry.folder, "test", None, prior.scale, model.device)
            start = (
                encode(encoder, pixels)
                if encoder is not None
                else best_start(model, pixels, count=args.search_pixels)[0]
            )
            codes = invert(model, pixels, start)
            objects[entry.id] = {}
            for name, recipe in chosen.items():
                began = time.perf_counter()
                torch.manual_seed(0)
                params = recipe(model, pixels, codes)
                seconds = time.perf_counter() - began
                with torch.no_grad():
                    metrics = score_nerf(model, params, test)[0]
                objects[entry.id][name] = {"psnr": metrics["psnr"], "ssim": metrics["ssim"], "seconds": seconds}
                progress.console.print(f"{entry.id} {name}: {metrics['psnr']:.2f} dB ({seconds:.0f} s)")
                progress.advance(task)
    mean = mean_over(objects)
    report = {
        "checkpoint": str(args.load_config),
        "views": args.views,
        "mirror": args.mirror,
        "steps": args.steps,
        "objects": objects,
        "mean": mean,
    }
    write_report(
        args.output,
        report,
        f"refinement recipes, {len(unseen)} unseen objects, input views {args.views}"
        f"{' + mirrors' if args.mirror else ''}, {args.steps} steps",
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
