"""GPU benchmark: the CUDA path (Triton hash encoding) against the pure-torch reference path.

For each path: training samples/s (nerfstudio's Trainer, the default hyp-nerf config), the
viewer's frame time (one 256x256 frame of the shown object, as `benchmarks/viewer_frame.py`) and
peak GPU memory. Needs a CUDA GPU; it has not run on one yet (none where this was written).

    python benchmarks/gpu.py --data ../shared/data/chairs-dev --steps 200

Prints a table and writes JSON (default benchmarks/results/gpu.json).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro
from rich.console import Console
from rich.table import Table
from train import Args as TrainArgs  # benchmarks/ is on sys.path when this script runs
from train import make_trainer

import hypnerf_ns.nerf.field as field
from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.lib.cameras import sphere_cameras
from hypnerf_ns.method.training import train_step
from hypnerf_ns.nerf.encoding import hash_encode, hash_encode_reference

PATHS = {"triton": hash_encode, "reference": hash_encode_reference}
"""What the field calls to encode: the dispatcher (Triton on CUDA) or the pure-torch reference."""


@dataclass
class Args:
    data: Path = Path("../shared/data/chairs-dev")
    steps: int = 200
    """Timed training steps per path (after 10 warm-up steps)."""
    frame_size: int = 256
    output: Path = Path("benchmarks/results/gpu.json")


def measure(args: Args, workdir: Path) -> dict[str, float]:
    """Training samples/s, viewer seconds per frame and peak GPU memory of the current path."""
    torch.manual_seed(0)
    torch.cuda.reset_peak_memory_stats()
    trainer = make_trainer(TrainArgs(data=args.data), workdir)
    rays = trainer.pipeline.datamanager.config.train_num_rays_per_batch
    for step in range(10):
        train_step(trainer, step)
    torch.cuda.synchronize()
    start, samples = time.perf_counter(), 0.0
    for step in range(10, 10 + args.steps):
        samples += train_step(trainer, step).metrics["samples_per_ray"] * rays
    torch.cuda.synchronize()
    train_seconds = time.perf_counter() - start
    model = trainer.pipeline.model
    model.eval()
    reference = trainer.pipeline.datamanager.train_dataset.cameras[0:1].to(model.device)
    reference.rescale_output_resolution(args.frame_size / int(reference.width))
    camera = sphere_cameras(reference, [0.8], [0.35], float(reference.camera_to_worlds[0, :3, 3].norm()))
    with torch.no_grad():
        model.get_outputs_for_camera(camera)  # warm-up
        torch.cuda.synchronize()
        start = time.perf_counter()
        model.get_outputs_for_camera(camera)
        torch.cuda.synchronize()
    return {
        "samples_per_second": samples / train_seconds,
        "seconds_per_step": train_seconds / args.steps,
        "frame_seconds": time.perf_counter() - start,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20,
    }


def main(args: Args) -> None:
    if not torch.cuda.is_available():
        raise SystemExit(
            "benchmarks/gpu.py: no CUDA device here (it measures the GPU path; see benchmarks/train.py for the CPU)"
        )
    rows = {}
    for name, encode in PATHS.items():
        field.hash_encode = encode
        with tempfile.TemporaryDirectory() as tmp:
            rows[name] = measure(args, Path(tmp))
    table = Table(title=f"GPU: {torch.cuda.get_device_name()}")
    for column in ("path", "M samples/s", "s/step", f"frame {args.frame_size}px (s)", "peak GPU MB"):
        table.add_column(column, justify="right")
    for name, r in rows.items():
        table.add_row(
            name,
            f"{r['samples_per_second'] / 1e6:.2f}",
            f"{r['seconds_per_step']:.3f}",
            f"{r['frame_seconds']:.3f}",
            f"{r['peak_gpu_mb']:.0f}",
        )
    Console().print(table)
    write_text_atomic(
        args.output,
        json.dumps({"benchmark": "gpu", "device": torch.cuda.get_device_name(), "rows": rows}, indent=1) + "\n",
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
