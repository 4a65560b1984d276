"""`hypnerf-ns denoiser train`: the category's denoiser (tasks.denoise), saved next to the run's config.yml."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from hypnerf_ns.lib.prior import load_prior
from hypnerf_ns.progress import progress_bar
from hypnerf_ns.tasks.denoise import FILE_NAME, Denoiser, save_denoiser, train_denoiser, training_pairs
from hypnerf_ns.tasks.inversion import SEARCH_PIXELS

CONSOLE = Console()


@dataclass
class TrainDenoiser:
    """Train the category's denoiser on renders of the prior's training objects; saves it next to config.yml."""

    load_config: Path
    """config.yml of a trained hyp-nerf."""
    inversions_per_object: int = 2
    """Times each training object is inverted from one of its views as if unseen."""
    views_per_inversion: int = 8
    """Training views each inversion renders as pairs (its input view and others)."""
    inversion_steps: int = 60
    """Steps of each of those inversions."""
    steps: int = 1000
    batch_size: int = 8
    lr: float = 1e-3
    width: int = 32
    """Channels of the U-Net at full resolution."""
    search_pixels: int = SEARCH_PIXELS
    """Pixels of the input view on which each inversion scores every training code for its start
    (the search renders all of them: lower it for priors of thousands of objects)."""
    max_objects: int | None = None
    """Use at most about this many training objects, evenly spaced over the prior's list (every k-th):
    each costs `inversions_per_object` inversions and their renders, so a thousand-object prior would take hours."""
    validation_fraction: float = 0.1
    """Share of the objects (the last ones) held out: the weights best on them are kept, the identity included."""
    seed: int = 0

    def main(self) -> None:
        start_time = time.perf_counter()
        prior = load_prior(self.load_config)
        model, scale = prior.model, prior.scale
        objects = list(enumerate(prior.training_folder(object_id) for object_id in model.object_ids))
        if self.max_objects is not None:
            objects = objects[:: math.ceil(len(objects) / max(1, self.max_objects))]
        with progress_bar(info=True) as progress:
            task = progress.add_task("rendering pairs", total=len(objects), info="")
            inputs, targets = training_pairs(
                model,
                objects,
                scale,
                self.inversions_per_object,
                self.views_per_inversion,
                self.inversion_steps,
                self.seed,
                self.search_pixels,
                on_object=lambda: progress.advance(task),
            )
            held_out = (
                max(1, round(len(objects) * self.validation_fraction))
                * self.inversions_per_object
                * self.views_per_inversion
                if len(objects) > 1
                else 0
            )
            split = len(inputs) - held_out
            denoiser = Denoiser(self.width)
            task = progress.add_task("training", total=self.steps, info="")
            validation = (inputs[split:], targets[split:]) if held_out else None
            log = train_denoiser(
                denoiser,
                inputs[:split],
                targets[:split],
                self.steps,
                self.batch_size,
                self.lr,
                self.seed,
                validation,
                on_step=lambda step, loss: progress.update(task, advance=1, info=f"L1 {loss:.4f}"),
            )
        report = {
            "pairs": split,
            "held_out_pairs": held_out,
            "steps": self.steps,
            "first_loss": log.losses[0],
            "last_loss": log.losses[-1],
            "validation_psnr": log.validation_psnr,
            "kept_step": log.kept_step,
            "seconds": time.perf_counter() - start_time,
        }
        path = prior.run_file(FILE_NAME)
        save_denoiser(denoiser, path, model.hypernetwork.fingerprint(), report)
        CONSOLE.print(
            f"wrote {path} ({report['seconds']:.0f} s, training L1 {log.losses[0]:.4f} -> {log.losses[-1]:.4f})"
        )
        if held_out:
            identity, kept = log.validation_psnr[0][1], dict(log.validation_psnr)[log.kept_step]
            verdict = (
                "the untrained identity is kept: it did not generalise"
                if log.kept_step == 0
                else f"kept step {log.kept_step}"
            )
            CONSOLE.print(
                f"held-out objects ({held_out} pairs): renders {identity:.2f} dB -> denoised {kept:.2f} dB; {verdict}"
            )
