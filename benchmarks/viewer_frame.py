"""Viewer frame time: one 256x256 frame of the shown object as the viewer renders it
(`model.get_outputs_for_camera`: chunks of rays without an object, normals included).

    python benchmarks/viewer_frame.py --load-config outputs/.../config.yml

Prints a table and writes JSON (default benchmarks/results/viewer_frame.json). Target: <= 0.5 s.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro
from rich.console import Console
from rich.table import Table

from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.lib.cameras import category_cameras, sphere_cameras
from hypnerf_ns.lib.prior import load_prior


@dataclass
class Args:
    load_config: Path
    sizes: tuple[int, ...] = (128, 256)
    distances: tuple[float, ...] = (1.0, 0.6)
    """Camera distances as fractions of the category's (0.6: the object fills more of the frame)."""
    repeats: int = 5
    output: Path = Path("benchmarks/results/viewer_frame.json")


def frame_seconds(model, camera, repeats: int) -> tuple[float, float, float]:
    """Median seconds per frame over `repeats` frames (after one warm-up), the image's mean
    accumulation, and the mean samples per ray (the machine-independent cost)."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        outputs = model.get_outputs_for_camera(camera)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]), float(outputs["accumulation"].mean()), float(outputs["num_samples"].mean())


def main(args: Args) -> None:
    prior = load_prior(args.load_config)
    rows = []
    for size in args.sizes:
        reference, radius = category_cameras(prior, size)
        for distance in args.distances:
            camera = sphere_cameras(reference, [0.8], [0.35], radius * distance)
            for normals in (True, False):
                prior.model.config.predict_normals = normals
                seconds, coverage, samples = frame_seconds(prior.model, camera, args.repeats)
                rows.append(
                    {
                        "size": size,
                        "distance": distance,
                        "normals": normals,
                        "seconds": seconds,
                        "coverage": coverage,
                        "samples_per_ray": samples,
                    }
                )
    table = Table(title=f"viewer frame time, {torch.get_num_threads()} threads")
    for column in ("size", "distance", "normals", "s / frame", "object coverage", "samples / ray"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            f"{r['size']}x{r['size']}",
            f"{r['distance']:.1f}",
            str(r["normals"]),
            f"{r['seconds']:.3f}",
            f"{r['coverage']:.2f}",
            f"{r['samples_per_ray']:.1f}",
        )
    Console().print(table)
    write_text_atomic(
        args.output,
        json.dumps(
            {
                "benchmark": "viewer_frame",
                "checkpoint": str(args.load_config),
                "threads": torch.get_num_threads(),
                "rows": rows,
            },
            indent=1,
        ),
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
