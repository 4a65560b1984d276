"""`hypnerf-ns invert`: a trained prior fitted to posed views of a new object (tasks.inversion): latent file + renders,
and with `--refine-steps` the NeRF fitted further through a copy of the hypernetwork (a finetuned NeRF file)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from rich.console import Console

from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.lib.metrics import score_nerf
from hypnerf_ns.lib.prior import load_prior
from hypnerf_ns.lib.views import load_posed_pixels, write_renders
from hypnerf_ns.nerf.latent_files import FinetunedNeRF, Latent
from hypnerf_ns.progress import loss_bar
from hypnerf_ns.tasks.encoder import FILE_NAME as ENCODER_FILE
from hypnerf_ns.tasks.encoder import encode, load_encoder
from hypnerf_ns.tasks.inversion import INVERT_LR, PRIOR_WEIGHT, best_start, invert, refine

CONSOLE = Console()


@dataclass
class Invert:
    """Fit the prior's codes to posed views of an object it never saw; write a latent file and renders
    (and, with --refine-steps, a finetuned NeRF file: the best from one view, docs/using-a-prior.md)."""

    load_config: Path
    """config.yml of a trained hyp-nerf (outputs/<experiment>/hyp-nerf/<timestamp>/config.yml)."""
    data: Path
    """The object's folder (nerf-synthetic: transforms_train.json, optional transforms_test.json)."""
    views: tuple[int, ...] = (0,)
    """Indices of the input views in transforms_train.json."""
    output: Path | None = None
    """Where to write latent.pt, metrics.json and renders/ (default: inversions/<object>)."""
    steps: int = 200
    """Optimisation steps (1024 random input pixels each)."""
    lr: float = INVERT_LR
    """Adam's learning rate on the codes."""
    prior_weight: float = PRIOR_WEIGHT
    """Weight of 0.5 |z|^2, which keeps the codes where the prior was trained."""
    start: Literal["auto", "encoder", "search"] = "auto"
    """Starting codes: the run's image encoder (one pass), or the search over every training object's
    code and the mean (renders them all: O(objects)); auto: the encoder if the run has one."""
    mirror: bool = False
    """Also fit each input view's mirror image (x -> -x): for left-right symmetric categories
    (objects face -y, see docs/data.md), one input view becomes two."""
    refine_steps: int = 0
    """Then fit the NeRF to the views through a copy of the hypernetwork for this many steps (400 per
    input view: `eval`'s `refined`, tasks.inversion.refine); writes nerf.pt (a finetuned NeRF file for
    `select --finetuned`) and renders from it. 0: codes only."""
    seed: int = 0

    def main(self) -> None:
        start_time = time.perf_counter()
        prior = load_prior(self.load_config)
        model, scale = prior.model, prior.scale
        output = self.output if self.output is not None else Path("inversions") / self.data.name
        pixels = load_posed_pixels(self.data, "train", self.views, scale, model.device, self.mirror)
        encoder_file = prior.run_file(ENCODER_FILE)
        if self.start == "encoder" or (self.start == "auto" and encoder_file.is_file()):
            start, start_name = encode(load_encoder(encoder_file, model.hypernetwork), pixels), "encoder"
        else:
            start, ranking = best_start(model, pixels, seed=self.seed)
            start_name = ranking[0][0]
            CONSOLE.print("best starting codes: " + ", ".join(f"{name} ({error:.4f})" for name, error in ranking[:3]))
        with loss_bar("inverting", self.steps) as on_step:
            codes = invert(
                model,
                pixels,
                start,
                self.steps,
                lr=self.lr,
                prior_weight=self.prior_weight,
                seed=self.seed,
                on_step=on_step,
            )
        source = {"data": str(self.data), "split": "train", "views": list(self.views), "mirror": self.mirror}
        Latent(codes, model.hypernetwork.fingerprint(), str(self.load_config), self.data.name, source).save(
            output / "latent.pt"
        )
        written = [output / "latent.pt"]
        with torch.no_grad():
            params = model.hypernetwork(codes)
        if self.refine_steps > 0:
            with loss_bar("refining the NeRF", self.refine_steps) as on_step:
                params = refine(model, pixels, codes, steps=self.refine_steps, seed=self.seed, on_step=on_step)
            FinetunedNeRF(
                params,
                model.hypernetwork.fingerprint(),
                str(self.load_config),
                self.data.name,
                {**source, "refine_steps": self.refine_steps},
            ).save(output / "nerf.pt")
            written.append(output / "nerf.pt")
        seconds = time.perf_counter() - start_time
        metrics = {
            "object": self.data.name,
            "views": list(self.views),
            "mirror": self.mirror,
            "refine_steps": self.refine_steps,
            "seconds": seconds,
            "start": start_name,
        }
        if (self.data / "transforms_test.json").is_file():
            test = load_posed_pixels(self.data, "test", None, scale, model.device)
            scores, rgb = score_nerf(model, params, test)
            metrics["test_psnr"], metrics["test_ssim"] = scores["psnr"], scores["ssim"]
            write_renders(rgb, test.size, output / "renders")
        write_text_atomic(output / "metrics.json", json.dumps(metrics, indent=1) + "\n")
        summary = f"; test-view PSNR {metrics['test_psnr']:.2f} dB" if "test_psnr" in metrics else ""
        CONSOLE.print(f"wrote {' and '.join(map(str, written))} in {seconds:.1f} s{summary}")
