"""Which inversion recipe generalizes best: free codes, blends of training codes, or both?

On the objects of `--data` a trained prior never saw (e.g. the 6 held-out real dev chairs), from
the input views `--views`, each recipe's codes are scored on all test views (PSNR on white, as
`hypnerf-ns eval --task generalization`), with its seconds per object:

- `nearest`:        the best training code (`best_start`), no optimisation
- `free`:           `nearest` + `invert` for `--steps` (eval's `prior` without an encoder)
- `blendK`:         softmax weights over the K best training codes (`invert_blend`)
- `blendK+free`:    `blendK`, then `invert` from there for `--steps`

One search per object ranks the training codes; every recipe's seconds include it.

    python benchmarks/inversion_recipes.py --load-config outputs/scale-study/n1000/study/hyp-nerf/run/config.yml \\
        --data ../shared/data/chairs-dev --views 0

Writes `--output` (JSON {"checkpoint", "views", "objects": {id: {recipe: {psnr, ssim, seconds}}},
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
from hypnerf_ns.nerf.hypernetwork import Codes
from hypnerf_ns.progress import progress_bar
from hypnerf_ns.tasks.evaluation import mean_over
from hypnerf_ns.tasks.inversion import best_start, invert, invert_blend


@dataclass
class Args:
    load_config: Path
    data: Path = Path("../shared/data/chairs-dev")
    """Category root; its objects the prior was not trained on are evaluated."""
    views: list[int] = field(default_factory=lambda: [0])
    """Input view indices of each object's train split."""
    blend_sizes: list[int] = field(default_factory=lambda: [4, 16])
    """K of the `blendK` recipes."""
    steps: int = 100
    """`invert` steps (eval's default)."""
    blend_steps: int = 50
    search_pixels: int = 1024
    threads: int = 2
    output: Path = Path("benchmarks/results/inversion-recipes.json")


def recipes(args: Args) -> dict[str, Callable[[HypNeRFModel, PosedPixels, Codes], Codes]]:
    """Recipe name -> function of (model, input pixels, the best training codes [K, D] best
    first, from one shared search) giving codes [1, D]."""

    def nearest(model: HypNeRFModel, pixels: PosedPixels, top: Codes) -> Codes:
        return top.rows(slice(None, 1))

    def free(model: HypNeRFModel, pixels: PosedPixels, top: Codes) -> Codes:
        return invert(model, pixels, nearest(model, pixels, top), args.steps)

    def blend(k: int, then_free: bool) -> Callable[[HypNeRFModel, PosedPixels, Codes], Codes]:
        def run(model: HypNeRFModel, pixels: PosedPixels, top: Codes) -> Codes:
            codes = invert_blend(model, pixels, top.rows(slice(None, k)), steps=args.blend_steps)
            return invert(model, pixels, codes, args.steps) if then_free else codes

        return run

    chosen = {"nearest": nearest, "free": free}
    for k in args.blend_sizes:
        chosen[f"blend{k}"] = blend(k, False)
        chosen[f"blend{k}+free"] = blend(k, True)
    return chosen


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    prior = load_prior(args.load_config)
    model = prior.model
    unseen = [o for o in list_objects(args.data) if o.id not in model.object_ids]
    if not unseen:
        raise SystemExit(f"{args.data} has no objects the prior at {args.load_config} was not trained on")
    chosen = recipes(args)
    objects: dict[str, dict[str, dict[str, float]]] = {}
    with progress_bar() as progress:
        task = progress.add_task("recipes", total=len(unseen) * len(chosen))
        for entry in unseen:
            pixels = load_posed_pixels(entry.folder, "train", args.views, prior.scale, model.device)
            test = load_posed_pixels(entry.folder, "test", None, prior.scale, model.device)
            objects[entry.id] = {}
            start = time.perf_counter()
            top, _ = best_start(model, pixels, count=args.search_pixels, k=max(args.blend_sizes))
            search_seconds = time.perf_counter() - start
            for name, recipe in chosen.items():
                start = time.perf_counter()
                codes = recipe(model, pixels, top)
                seconds = search_seconds + time.perf_counter() - start
                with torch.no_grad():
                    metrics = score_nerf(model, model.hypernetwork(codes), test)[0]
                objects[entry.id][name] = {"psnr": metrics["psnr"], "ssim": metrics["ssim"], "seconds": seconds}
                progress.advance(task)
    mean = mean_over(objects)
    report = {"checkpoint": str(args.load_config), "views": args.views, "objects": objects, "mean": mean}
    write_report(args.output, report, f"inversion recipes, {len(unseen)} unseen objects, input views {args.views}")


if __name__ == "__main__":
    main(tyro.cli(Args))
