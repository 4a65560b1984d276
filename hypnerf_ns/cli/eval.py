"""`hypnerf-ns eval`: the paper's tasks on a trained prior, with baselines (tasks.evaluation); JSON + a table."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.table import Table

from hypnerf_ns.data.category import ObjectEntry, list_objects
from hypnerf_ns.errors import InputError
from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.lib.prior import load_prior, training_codes
from hypnerf_ns.progress import progress_bar
from hypnerf_ns.tasks.captions import category_captions
from hypnerf_ns.tasks.denoise import FILE_NAME as DENOISER_FILE
from hypnerf_ns.tasks.denoise import load_denoiser
from hypnerf_ns.tasks.encoder import FILE_NAME as ENCODER_FILE
from hypnerf_ns.tasks.encoder import load_encoder
from hypnerf_ns.tasks.evaluation import (
    BYTES_PER_FLOAT,
    Results,
    RetrievalEvaluator,
    generalization_of,
    mean_over,
    optimisation_steps,
    reconstruction_of,
)
from hypnerf_ns.tasks.inversion import refine_steps_for
from hypnerf_ns.tasks.text import held_out_retrieval, text_mapping_for

CONSOLE = Console()


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
    input_views: tuple[int, ...] = (0,)
    """generalization: indices (in transforms_train.json) of the views each unseen object is inverted from."""
    steps: int = 100
    """generalization: inversion steps per object."""
    refine_steps: int | None = None
    """generalization: steps of `refined` fitting the NeRF to the input views after inversion
    (tasks.inversion.refine); default `tasks.inversion.REFINE_STEPS_PER_VIEW` (400) per input view:
    more views take more steps before they overfit."""
    scratch_steps: int | None = None
    """generalization: steps of `scratch` fitting a NeRF to the input views from scratch; default as many
    as `refined` takes (`--steps` + the refine steps)."""
    finetune: bool = False
    """generalization: also denoise-and-finetune (needs `hypnerf-ns denoiser train`), its ablation
    without the denoiser, and the see-through consistency of the NeRFs."""
    finetune_steps: int = 300
    """generalization: steps of each finetune."""
    search_pixels: int = 4096
    """generalization: input pixels on which `nearest` scores every training code (its cost grows with
    objects x pixels)."""
    mirror: bool = False
    """generalization: add each input view's mirror image (x -> -x; objects face -y, so a left-right
    symmetric object looks the same in it) as one more input view, for every method."""
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
        details: dict[str, object] = {}
        if self.task == "generalization":
            denoiser = load_denoiser(prior.run_file(DENOISER_FILE), model) if self.finetune else None
            finetune_steps = self.finetune_steps if self.finetune else None
            encoder_file = prior.run_file(ENCODER_FILE)
            encoder = load_encoder(encoder_file, model.hypernetwork) if encoder_file.is_file() else None
            details["start"] = "encoder" if encoder is not None else "nearest"
            refine_steps = refine_steps_for(len(self.input_views), self.refine_steps)
            details["refine_steps"] = refine_steps
            details["optimisation_steps"] = optimisation_steps(
                self.steps, refine_steps, self.scratch_steps, finetune_steps
            )
            entries, evaluate = (
                unseen,
                lambda e: generalization_of(
                    model,
                    e.folder,
                    self.input_views,
                    scale,
                    self.steps,
                    refine_steps,
                    finetune_steps,
                    denoiser,
                    encoder,
                    self.search_pixels,
                    self.mirror,
                    self.scratch_steps,
                ),
            )
            details["input_views"] = list(self.input_views)
            details["mirror"] = self.mirror
            title = (
                f"generalization from {len(self.input_views)} view(s), {len(unseen)} unseen objects "
                "(PSNR / SSIM on test views)"
            )
            if not unseen:
                raise InputError(
                    self.data,
                    "has no objects the prior was not trained on "
                    "(train with --pipeline.datamanager.dataparser.holdout-every N)",
                )
        elif self.task == "reconstruction":
            entries, evaluate = seen, lambda e: reconstruction_of(model, e.folder, e.id, scale)
            details["hypernetwork_bytes"] = sum(p.numel() for p in model.hypernetwork.parameters()) * BYTES_PER_FLOAT
            title = f"reconstruction of {len(seen)} training objects (PSNR / SSIM on test views)"
        elif self.task == "text":
            mapping = text_mapping_for(prior)
            captions = {item.object_id: item for item in category_captions(self.data, [o.id for o in seen])}
            codes = training_codes(model)
            entries, evaluate = seen, lambda e: held_out_retrieval(mapping, codes, captions[e.id], model.object_ids)
            title = (
                f"text retrieval among {model.codebook.num_objects} training objects, held-out captions of {len(seen)}"
            )
        else:
            entries = seen
            evaluator = RetrievalEvaluator(model, seen, scale, self.pixels, self.seed)
            evaluate = evaluator.of
            title = f"retrieval among {model.codebook.num_objects} training objects, queries: test views of {len(seen)}"
        if not entries:
            raise InputError(
                self.data, f"has none of the {model.codebook.num_objects} objects this prior was trained on"
            )
        objects = dict(self._run(entries, evaluate))
        mean = mean_over(objects)
        report = {
            "task": self.task,
            "checkpoint": str(self.load_config),
            **details,
            "objects": objects,
            "mean": mean,
            "seconds": time.perf_counter() - start_time,
        }
        write_text_atomic(self.output, json.dumps(report, indent=1) + "\n")
        CONSOLE.print(summary_table(title, objects, mean))
        CONSOLE.print(f"wrote {self.output} ({report['seconds']:.0f} s)")

    def _run(
        self, entries: list[ObjectEntry], evaluate: Callable[[ObjectEntry], Results]
    ) -> Iterator[tuple[str, Results]]:
        with progress_bar() as progress:
            task = progress.add_task(self.task, total=len(entries))
            for entry in entries:
                yield entry.id, evaluate(entry)
                progress.advance(task)


def summary_table(title: str, objects: dict[str, Results], mean: Results) -> Table:
    """One row per object (and the mean), one column per method and metric."""
    table = Table(title=title)
    table.add_column("object")
    keys = [(method, metric) for method, metrics in mean.items() for metric in metrics]
    for method, metric in keys:
        table.add_column(f"{method}\n{metric}", justify="right")
    for object_id, result in [*objects.items(), ("mean", mean)]:
        table.add_row(
            object_id, *(f"{result[m][k]:.3f}" if abs(result[m][k]) < 100 else f"{result[m][k]:.0f}" for m, k in keys)
        )
    return table
