"""`hypnerf-ns finetune`: denoise-and-finetune one NeRF (tasks.finetune) into a standalone NeRF file."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from hypnerf_ns.errors import InputError
from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.lib.cameras import orbit_like
from hypnerf_ns.lib.metrics import score_nerf
from hypnerf_ns.lib.prior import NeRFChoice, load_prior
from hypnerf_ns.lib.views import load_posed_pixels, write_renders
from hypnerf_ns.nerf.latent_files import FinetunedNeRF, Latent
from hypnerf_ns.progress import loss_bar
from hypnerf_ns.tasks.denoise import FILE_NAME as DENOISER_FILE
from hypnerf_ns.tasks.denoise import load_denoiser
from hypnerf_ns.tasks.finetune import ORBIT_VIEWS, consistency, denoised_views, finetune
from hypnerf_ns.tasks.inversion import refine, refine_steps_for

CONSOLE = Console()


@dataclass
class Finetune:
    """Denoise-and-finetune the NeRF of a latent file (or of a training object), first refined on
    its input views as `invert --refine-steps` does; writes a standalone NeRF file, metrics and renders."""

    load_config: Path
    """config.yml of a trained hyp-nerf (with its denoiser: `hypnerf-ns denoiser train`)."""
    latent: Path | None = None
    """Latent file from `hypnerf-ns invert`; its input views are used unless --views is given."""
    object: str | None = None
    """Or: a training object's id (its generated NeRF, sharpened; no input views unless --views)."""
    data: Path | None = None
    """The object's folder, for input views and test views (default: the latent's source or the training object's
    folder)."""
    views: tuple[int, ...] | None = None
    """Input views (transforms_train.json indices); default: the latent's inputs, none for --object."""
    output: Path | None = None
    """Where to write nerf.pt, metrics.json and renders/ (default: finetuned/<name>)."""
    num_views: int = ORBIT_VIEWS
    """Views rendered around the object and denoised."""
    refine_steps: int | None = None
    """First fit the NeRF to the input views through the hypernetwork for this many steps (default
    400 per input view: tasks.inversion.refine, eval's `refined`), and finetune that; 0, or no input
    views: finetune the codes' NeRF. Measured from refined: 0.75 dB better and more consistent
    (docs/using-a-prior.md)."""
    steps: int = 300
    """Fitting steps (1024 rays each)."""
    input_share: float = 0.5
    """Share of the photometric loss on the real input views (the rest on the denoised views)."""
    consistency_weight: float = 0.003
    """Weight of the see-through term (0.001-0.01 trade test PSNR for consistency; 0.1 fogs the NeRF)."""
    lr: float = 0.003
    mirror: bool = False
    """Also fit each input view's mirror image (x -> -x): for left-right symmetric categories
    (objects face -y, see docs/data.md), one input view becomes two."""
    no_denoiser: bool = False
    """Fit the rendered views as they are (ablation: self-distillation without the denoiser)."""
    seed: int = 0

    def main(self) -> None:
        start_time = time.perf_counter()
        if (self.latent is None) == (self.object is None):
            raise InputError(self.load_config, "give exactly one of --latent FILE and --object ID")
        prior = load_prior(self.load_config)
        model = prior.model
        denoiser = None if self.no_denoiser else load_denoiser(prior.run_file(DENOISER_FILE), model)
        name, codes = NeRFChoice(self.object, self.latent).codes(model)
        if self.latent is not None:
            source = Latent.load(self.latent).source
            folder = self.data if self.data is not None else Path(source["data"]) if source.get("data") else None
            views = self.views if self.views is not None else tuple(source.get("views", ()))
        else:
            folder = self.data if self.data is not None else prior.training_folder(name)
            views = self.views or ()
        if folder is None:
            raise InputError(self.latent, "names no object folder: give --data OBJECT_DIR")
        inputs = load_posed_pixels(folder, "train", views, prior.scale, model.device, self.mirror) if views else None
        with torch.no_grad():
            starts = {"generated": model.hypernetwork(codes)}
        refine_steps = refine_steps_for(len(views), self.refine_steps)
        if inputs is not None and refine_steps > 0:
            with loss_bar("refining the NeRF", refine_steps) as on_step:
                starts["refined"] = refine(model, inputs, codes, steps=refine_steps, seed=self.seed, on_step=on_step)
        start = starts.get("refined", starts["generated"])
        targets = denoised_views(
            model, start, denoiser, orbit_like(folder, views[0] if views else 0, prior.scale, self.num_views)
        )
        with CONSOLE.status(f"finetuning {name} ({self.steps} steps)"):
            params = finetune(
                model,
                start,
                targets,
                inputs,
                self.steps,
                self.input_share,
                self.consistency_weight,
                self.lr,
                seed=self.seed,
            )
        seconds = time.perf_counter() - start_time
        output = self.output if self.output is not None else Path("finetuned") / name
        source = {
            "data": str(folder),
            "views": list(views),
            "latent": str(self.latent or ""),
            "object": self.object or "",
            "denoiser": denoiser is not None,
            "mirror": self.mirror,
            "refine_steps": refine_steps if "refined" in starts else 0,
        }
        FinetunedNeRF(params, model.hypernetwork.fingerprint(), str(self.load_config), name, source).save(
            output / "nerf.pt"
        )
        metrics = {"object": name, "views": list(views), "seconds": seconds}
        if (folder / "transforms_test.json").is_file():
            test = load_posed_pixels(folder, "test", None, prior.scale, model.device)
            for method, method_params in {**starts, "finetuned": params}.items():
                scores, rgb = score_nerf(model, method_params, test)
                metrics[method] = {**scores, "see_through": consistency(model, method_params, test)}
            write_renders(rgb, test.size, output / "renders")
        write_text_atomic(output / "metrics.json", json.dumps(metrics, indent=1) + "\n")
        summary = "; ".join(
            f"{m}: {metrics[m]['psnr']:.2f} dB, SSIM {metrics[m]['ssim']:.3f}"
            for m in (*starts, "finetuned")
            if m in metrics
        )
        CONSOLE.print(
            f"wrote {output / 'nerf.pt'} in {seconds:.0f} s" + (f" (test views: {summary})" if summary else "")
        )
