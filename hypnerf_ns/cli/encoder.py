"""`hypnerf-ns encoder train`: the prior's image encoder (tasks.encoder), saved next to the run's config.yml."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from hypnerf_ns.lib.prior import load_prior, training_codes
from hypnerf_ns.progress import progress_bar
from hypnerf_ns.tasks.encoder import FILE_NAME, ImageEncoder, load_encoder_views, save_encoder, train_encoder

CONSOLE = Console()


@dataclass
class TrainEncoder:
    """Train the prior's image encoder on its training objects' views (each view -> its object's codes)."""

    load_config: Path
    """config.yml of a trained hyp-nerf."""
    steps: int = 3000
    views_per_object: int = 40
    """Training views of each object used (random; fewer for thousands of objects to bound memory and loading)."""
    batch_size: int = 64
    lr: float = 1e-3
    width: int = 32
    """Channels of the first conv block."""
    size: int = 64
    """Input side in pixels (views are resized to it)."""
    seed: int = 0

    def main(self) -> None:
        start_time = time.perf_counter()
        prior = load_prior(self.load_config)
        model = prior.model
        folders = [prior.training_folder(object_id) for object_id in model.object_ids]
        torch.manual_seed(self.seed)
        with progress_bar(info=True) as progress:
            task = progress.add_task("reading views", total=len(folders), info="")
            views = load_encoder_views(
                folders,
                prior.scale,
                self.size,
                self.views_per_object,
                self.seed,
                on_object=lambda: progress.advance(task),
            )
            encoder = ImageEncoder(model.config.shape_code_dim, model.config.color_code_dim, self.width, self.size)
            task = progress.add_task("training", total=self.steps, info="")
            log = train_encoder(
                encoder,
                views,
                training_codes(model),
                self.steps,
                self.batch_size,
                self.lr,
                self.seed,
                on_step=lambda step, loss: progress.update(task, advance=1, info=f"loss {loss:.3f}"),
            )
        report = {
            "objects": len(folders),
            "views": len(views.objects),
            "steps": self.steps,
            "first_loss": log.losses[0],
            "last_loss": log.losses[-1],
            "validation": log.validation,
            "seconds": time.perf_counter() - start_time,
        }
        path = prior.run_file(FILE_NAME)
        save_encoder(encoder, path, model.hypernetwork, report)
        held = f"; held-out views {log.validation[-1][1]:.3f}" if log.validation else ""
        CONSOLE.print(
            f"wrote {path} ({report['seconds']:.0f} s; loss {log.losses[0]:.3f} -> {log.losses[-1]:.3f}{held}; "
            "1.0 = the mean code)"
        )
