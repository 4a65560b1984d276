"""Scale: startup time, memory and step time of training on categories of N objects.

    python benchmarks/scale.py --data ../shared/data/chairs-dev --counts 40 400 4000

A synthetic category of N objects is made of links to the dev chairs' folders (object k is dev
chair k mod 42 under a new id), so every object has real views. Each N runs in a fresh process
(for a clean memory figure): `ns-train`'s config and Trainer, `--steps` training steps after the
setup. Prints a table and writes JSON (default benchmarks/results/scale.json). Targets (issue 8):
step time independent of N; memory <= 1 GB + a linear term in N; startup <= 60 s at N = 4000.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tyro
from rich.console import Console
from rich.table import Table

from hypnerf_ns.files import write_text_atomic


@dataclass
class Args:
    data: Path = Path("../shared/data/chairs-dev")
    counts: tuple[int, ...] = (40, 400, 4000)
    steps: int = 30
    scale: float = 0.5
    """camera_res_scale_factor (0.5: 64 px, as the training benchmark)."""
    output: Path = Path("benchmarks/results/scale.json")
    child: int | None = None
    """(internal) run one N in this process and print its JSON."""


def make_category(source: Path, count: int, root: Path) -> None:
    """`count` objects linking to the folders of the objects of `source`, round robin."""
    listing = json.loads((source / "objects.json").read_text())["objects"]
    objects = []
    for k in range(count):
        entry = listing[k % len(listing)]
        object_id = f"{entry['id']}-{k:05d}"
        (root / object_id).symlink_to((source / entry["id"]).resolve())
        objects.append({"id": object_id, "name": entry.get("name", entry["id"])})
    (root / "objects.json").write_text(json.dumps({"category": "chair", "objects": objects}))


def rss_mb() -> float:
    """Resident memory now, MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_one(args: Args, count: int) -> dict:
    """Setup and `args.steps` steps on a category of `count` objects, in this process."""
    import torch

    from hypnerf_ns.method.training import train_step
    from method_configs import hyp_nerf

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "category"
        root.mkdir()
        make_category(args.data, count, root)
        config = hyp_nerf.config
        config.pipeline.datamanager.data = root
        config.pipeline.datamanager.dataparser.data = root
        config.pipeline.datamanager.camera_res_scale_factor = args.scale
        config.vis = "tensorboard"
        config.output_dir = Path(folder) / "outputs"
        config.steps_per_eval_batch = config.steps_per_eval_image = config.steps_per_eval_all_images = 10**9
        config.steps_per_save = 10**9
        config.max_num_iterations = args.steps
        config.set_timestamp()
        start = time.perf_counter()
        trainer = config.setup(local_rank=0, world_size=1)
        trainer.setup()
        startup = time.perf_counter() - start
        rss_after_setup = rss_mb()
        seconds = [train_step(trainer, step).seconds for step in range(args.steps)]
        model = trainer.pipeline.model
        codebook_bytes = sum(p.numel() * p.element_size() for p in model.codebook.parameters())
        return {
            "objects": count,
            "images": len(trainer.pipeline.datamanager.train_dataset),
            "startup_s": startup,
            "step_s": statistics.median(seconds[5:]),
            "rss_after_setup_mb": rss_after_setup,
            "rss_after_steps_mb": rss_mb(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "image_cache_mb": trainer.pipeline.datamanager.train_images.bytes / 2**20,
            "codebook_mb": codebook_bytes / 2**20,
            "threads": torch.get_num_threads(),
        }


def main(args: Args) -> None:
    if args.child is not None:
        print("RESULT " + json.dumps(run_one(args, args.child)))
        return
    rows = []
    for count in args.counts:
        command = [
            sys.executable,
            __file__,
            "--data",
            str(args.data),
            "--steps",
            str(args.steps),
            "--scale",
            str(args.scale),
            "--child",
            str(count),
        ]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            raise SystemExit(f"scale benchmark: N={count} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(lines[-1][len("RESULT ") :]))
        Console().print(f"N={count}: {rows[-1]}")
    table = Table(title=f"training at scale ({args.steps} steps, images at scale {args.scale})")
    for column in (
        "objects",
        "images",
        "startup",
        "step",
        "RSS after setup",
        "RSS after steps",
        "peak RSS",
        "image cache",
        "codebook",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["objects"]), str(r["images"]), f"{r['startup_s']:.1f} s", f"{r['step_s']:.3f} s",
            f"{r['rss_after_setup_mb']:.0f} MB", f"{r['rss_after_steps_mb']:.0f} MB", f"{r['peak_rss_mb']:.0f} MB",
            f"{r['image_cache_mb']:.0f} MB", f"{r['codebook_mb']:.2f} MB",
        )  # fmt: skip
    Console().print(table)
    write_text_atomic(
        args.output,
        json.dumps({"benchmark": "scale", "steps": args.steps, "scale": args.scale, "rows": rows}, indent=1),
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
