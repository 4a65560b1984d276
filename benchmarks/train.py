"""Training benchmark: throughput, memory and val quality over training steps.

Trains the default `hyp-nerf` config (through nerfstudio's Trainer, so exactly what
`ns-train hyp-nerf` runs) on a category for a fixed budget of steps, evaluating every object's
val views at fixed steps. The budget and the evaluation points are steps, so the quality figures
do not depend on the machine or its load; the time the steps took (evaluation excluded) is
measured beside them, for throughput.

    python benchmarks/train.py --data ../shared/data/chairs-dev --steps 30000

Prints a table and writes JSON (default benchmarks/results/train.json: "budget_steps", and per
evaluation point "step", "train_seconds", throughput and quality). Older files were trained for a
budget of time ("budget_minutes"); their timelines have the same fields.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
import tyro
from nerfstudio.engine.trainer import Trainer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.method.training import stepped_config, train_step
from method_configs import hyp_nerf

CONSOLE = Console()


@dataclass
class Args:
    data: Path = Path("../shared/data/chairs-dev")
    """Category root."""
    steps: int = 30000
    """Training steps (a 30-minute budget of time bought 33,461 steps on the 42 dev chairs, 2 threads)."""
    eval_at_steps: list[int] = field(default_factory=lambda: [500, 1000, 2000, 5000, 10000, 15000, 20000, 25000])
    """Steps after which every object's val views are evaluated (plus the end)."""
    resolution_scale: float = 0.5
    """Image scale: 0.5 turns the 128 px dev chairs into 64 px."""
    max_objects: int | None = None
    """Use only the first N objects (quick runs)."""
    output: Path = Path("benchmarks/results/train.json")
    seed: int = 0
    codebook_lr: float | None = None
    """Override the codes' learning rate (for sweeps)."""
    hypernetwork_lr: float | None = None
    """Override the hypernetwork's learning rate (for sweeps)."""
    rays_per_batch: int | None = None
    """Override the training rays per step (for sweeps)."""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_trainer(args: Args, workdir: Path) -> Trainer:
    data = args.data
    if args.max_objects is not None:
        subset = workdir / "data"
        subset.mkdir()
        objects = sorted(p for p in args.data.iterdir() if (p / "transforms_train.json").is_file())
        for folder in objects[: args.max_objects]:
            (subset / folder.name).symlink_to(folder.resolve())
        data = subset
    config = stepped_config(hyp_nerf.config, data, workdir / "outputs", args.resolution_scale, args.seed)
    for group, lr in (("codebook", args.codebook_lr), ("hypernetwork", args.hypernetwork_lr)):
        if lr is not None:
            config.optimizers[group]["optimizer"].lr = lr
    if args.rays_per_batch is not None:
        config.pipeline.datamanager.train_num_rays_per_batch = args.rays_per_batch
    config.set_timestamp()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


@torch.no_grad()
def evaluate(trainer: Trainer) -> dict[str, dict[str, float]]:
    """Mean PSNR/SSIM over each object's val views."""
    pipeline = trainer.pipeline
    model, dataset = pipeline.model, pipeline.datamanager.eval_dataset
    model.eval()
    per_object: dict[str, list[dict[str, float]]] = defaultdict(list)
    object_of_image = dataset.metadata["object_index_of_image"]
    for i in range(len(dataset)):
        camera = dataset.cameras[i : i + 1].to(model.device)
        outputs = model.get_outputs_for_camera(camera)
        metrics, _ = model.get_image_metrics_and_images(outputs, dataset[i])
        per_object[model.object_ids[object_of_image[i]]].append(metrics)
    model.train()
    return {obj: {k: sum(m[k] for m in ms) / len(ms) for k in ("psnr", "ssim")} for obj, ms in per_object.items()}


def main(args: Args) -> None:
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(args, Path(tmp))
        model = trainer.pipeline.model
        rays_per_step = trainer.pipeline.datamanager.config.train_num_rays_per_batch
        checkpoints = sorted({s for s in args.eval_at_steps if 0 < s < args.steps} | {args.steps})
        train_seconds, step, rays, samples = 0.0, 0, 0, 0.0
        timeline, window = [], []
        with Progress(console=CONSOLE, transient=True) as progress:
            task = progress.add_task("training", total=args.steps)
            for at in checkpoints:
                while step < at:
                    result = train_step(trainer, step)
                    train_seconds += result.seconds
                    step += 1
                    rays += rays_per_step
                    step_samples = result.metrics["samples_per_ray"] * rays_per_step
                    samples += step_samples
                    window.append((result.seconds, step_samples, result.loss))
                    progress.update(task, completed=step, description=f"step {step} loss {result.loss:.4f}")
                eval_start = time.perf_counter()
                quality = evaluate(trainer)
                recent_time = sum(w[0] for w in window)
                entry = {
                    "train_seconds": round(train_seconds, 1),
                    "step": step,
                    "samples_per_second": sum(w[1] for w in window) / recent_time,
                    "rays_per_second": len(window) * rays_per_step / recent_time,
                    "samples_per_ray": sum(w[1] for w in window) / len(window) / rays_per_step,
                    "loss": window[-1][2],
                    "mean_psnr": sum(q["psnr"] for q in quality.values()) / len(quality),
                    "mean_ssim": sum(q["ssim"] for q in quality.values()) / len(quality),
                    "eval_seconds": round(time.perf_counter() - eval_start, 1),
                    "peak_rss_mb": peak_rss_mb(),
                    "objects": quality,
                }
                timeline.append(entry)
                window = []
                CONSOLE.print(
                    f"step {step:6d}  {train_seconds / 60:5.1f} min  "
                    f"{entry['samples_per_second'] / 1e6:.2f} M samples/s  "
                    f"PSNR {entry['mean_psnr']:.2f}  SSIM {entry['mean_ssim']:.3f}"
                )

    table = Table(title=f"hyp-nerf training on {len(model.object_ids)} objects ({args.data})")
    for column in (
        "step",
        "train min",
        "M samples/s",
        "K rays/s",
        "samples/ray",
        "val PSNR",
        "val SSIM",
        "peak RSS MB",
    ):
        table.add_column(column, justify="right")
    for e in timeline:
        table.add_row(
            str(e["step"]), f"{e['train_seconds'] / 60:.1f}", f"{e['samples_per_second'] / 1e6:.2f}",
            f"{e['rays_per_second'] / 1e3:.1f}", f"{e['samples_per_ray']:.1f}", f"{e['mean_psnr']:.2f}",
            f"{e['mean_ssim']:.3f}", f"{e['peak_rss_mb']:.0f}",
        )  # fmt: skip
    CONSOLE.print(table)
    summary = {
        "benchmark": "train",
        "data": str(args.data),
        "objects": len(model.object_ids),
        "resolution_scale": args.resolution_scale,
        "budget_steps": args.steps,
        "threads": torch.get_num_threads(),
        "overall_samples_per_second": samples / train_seconds,
        "overall_rays_per_second": rays / train_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "timeline": timeline,
    }
    write_text_atomic(args.output, json.dumps(summary, indent=1))
    CONSOLE.print(f"wrote {args.output}")


if __name__ == "__main__":
    main(tyro.cli(Args))
