"""Variety of a category: how near each object is to its nearest other, in shape.

Each object's visual hull (12 training silhouettes carved into a 32^3 grid of the object box,
`tasks.captions.visual_hull`; objects are normalised and upright, so hulls are comparable
without alignment) is compared with every other's by voxel IoU. Reports the distribution of each
object's IoU to its nearest other, the share of near duplicates (IoU >= `--threshold`), and both
per factory when objects.json names one.

    python benchmarks/variety.py --root /work/data/procedural-chairs \\
        --output benchmarks/results/variety-procedural-chairs.json

Prints a table and writes JSON.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro
from rich.console import Console
from rich.table import Table

from hypnerf_ns.data.category import list_objects, read_json
from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.progress import progress_bar
from hypnerf_ns.tasks.captions import visual_hull

CONSOLE = Console()


@dataclass
class Args:
    root: Path
    """Category root."""
    output: Path
    """JSON to write."""
    threshold: float = 0.8
    """Voxel IoU at or above which two objects count as near duplicates."""
    resolution: int = 32
    views: int = 12


def nearest_iou(hulls: torch.Tensor) -> torch.Tensor:
    """[N] voxel IoU of each of N hulls [N, V] (0/1) with its nearest other."""
    intersection = hulls @ hulls.T
    sizes = hulls.sum(dim=1)
    iou = intersection / (sizes[:, None] + sizes[None, :] - intersection).clamp_min(1.0)
    iou.fill_diagonal_(-1.0)
    return iou.max(dim=1).values


def main(args: Args) -> None:
    objects = list_objects(args.root)
    listing = read_json(args.root / "objects.json") if (args.root / "objects.json").is_file() else {"objects": []}
    factory = {str(e["id"]): str(e.get("factory", "-")) for e in listing.get("objects", [])}
    hulls = []
    with progress_bar() as progress:
        task = progress.add_task("visual hulls", total=len(objects))
        for entry in objects:
            hulls.append(
                torch.from_numpy(
                    visual_hull(entry, args.views, resolution=args.resolution)[0].reshape(-1).astype(np.float32)
                )
            )
            progress.advance(task)
    nearest = nearest_iou(torch.stack(hulls))
    groups: dict[str, list[float]] = defaultdict(list)
    for entry, value in zip(objects, nearest.tolist(), strict=True):
        groups["all"].append(value)
        groups[factory.get(entry.id, "-")].append(value)
    summary = {
        name: {
            "objects": len(values),
            "median_nearest_iou": float(np.median(values)),
            "near_duplicates": float(np.mean(np.array(values) >= args.threshold)),
        }
        for name, values in sorted(groups.items(), key=lambda item: -len(item[1]))
    }
    table = Table(
        title=f"{args.root}: voxel IoU ({args.resolution}^3 visual hulls) of each object to its nearest other"
    )
    for column in ("factory", "objects", "median nearest IoU", f"share >= {args.threshold}"):
        table.add_column(column, justify="right")
    for name, row in summary.items():
        table.add_row(name, str(row["objects"]), f"{row['median_nearest_iou']:.2f}", f"{row['near_duplicates']:.1%}")
    CONSOLE.print(table)
    report = {
        "benchmark": "variety",
        "root": str(args.root),
        "threshold": args.threshold,
        "resolution": args.resolution,
        "summary": summary,
    }
    write_text_atomic(args.output, json.dumps(report, indent=1) + "\n")
    CONSOLE.print(f"wrote {args.output}")


if __name__ == "__main__":
    main(tyro.cli(Args))
