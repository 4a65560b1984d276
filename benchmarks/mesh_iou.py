"""Mesh quality: test-view silhouette IoU of `hypnerf-ns export mesh` meshes against the ground-truth
alpha masks, for training objects (their learnt codes) and unseen ones (codes inverted from 1 or
3 posed input views, as `hypnerf-ns invert` does).

    python benchmarks/mesh_iou.py --load-config outputs/.../config.yml --unseen ID ... [--training ID ...]

Prints a table and writes JSON (default benchmarks/results/mesh_iou.json). Target (issue 6): >= 0.8 at 64 px.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import tyro
from rich.console import Console
from rich.table import Table

from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.lib.prior import load_prior
from hypnerf_ns.lib.views import load_cameras, load_posed_pixels, read_rgba
from hypnerf_ns.method.model import HypNeRFModel
from hypnerf_ns.nerf.hypernetwork import NeRFParams
from hypnerf_ns.tasks.inversion import best_start, invert
from hypnerf_ns.tasks.mesh import density_mesh, silhouette_iou


@dataclass
class Args:
    load_config: Path
    unseen: list[str] = field(default_factory=list)
    """Object folders (ids) under --data that the prior never saw."""
    training: list[str] = field(default_factory=list)
    """Training objects to mesh from their learnt codes."""
    data: Path = Path("../shared/data/chairs-dev")
    input_views: tuple[tuple[int, ...], ...] = ((0,), (0, 13, 26))
    """Train-split views given to the inversion, one run per tuple."""
    steps: int = 100
    """Inversion steps (the `hypnerf-ns eval` default)."""
    size: int = 64
    """Silhouette resolution in pixels."""
    output: Path = Path("benchmarks/results/mesh_iou.json")


def iou_of(model: HypNeRFModel, params: NeRFParams, folder: Path, size: int) -> tuple[float, bool, float]:
    """(Silhouette IoU on the test views of object `folder`, watertight, seconds to mesh) of one NeRF."""
    start = time.perf_counter()
    mesh = density_mesh(model, params)
    seconds = time.perf_counter() - start
    cameras, files = load_cameras(folder, "test", None, size / 128)
    alpha = torch.stack([read_rgba(file, (size, size))[..., 3] for file in files])
    return silhouette_iou(mesh, cameras, alpha), bool(mesh.is_watertight), seconds


def main(args: Args) -> None:
    prior = load_prior(args.load_config)
    model = prior.model
    rows: list[dict] = []
    for object_id in args.training:
        with torch.no_grad():
            params = model.hypernetwork(model.codebook(torch.tensor([model.object_index(object_id)]), sample=False))
        iou, watertight, seconds = iou_of(model, params, args.data / object_id, args.size)
        rows.append(
            {
                "object": object_id,
                "source": "training code",
                "iou": iou,
                "watertight": watertight,
                "mesh_seconds": seconds,
            }
        )
    for object_id in args.unseen:
        for views in args.input_views:
            pixels = load_posed_pixels(args.data / object_id, "train", views, prior.scale, model.device)
            start, _ = best_start(model, pixels)
            codes = invert(model, pixels, start, args.steps)
            with torch.no_grad():
                params = model.hypernetwork(codes)
            iou, watertight, seconds = iou_of(model, params, args.data / object_id, args.size)
            rows.append(
                {
                    "object": object_id,
                    "source": f"inverted from {len(views)} view(s)",
                    "iou": iou,
                    "watertight": watertight,
                    "mesh_seconds": seconds,
                }
            )
    table = Table(title=f"mesh silhouette IoU at {args.size} px (test views)")
    for column in ("object", "source", "IoU", "watertight", "s / mesh"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["object"], r["source"], f"{r['iou']:.3f}", str(r["watertight"]), f"{r['mesh_seconds']:.1f}")
    means = {
        source: statistics.mean(r["iou"] for r in rows if r["source"] == source)
        for source in dict.fromkeys(r["source"] for r in rows)
    }
    for source, mean in means.items():
        table.add_row("mean", source, f"{mean:.3f}", "", "")
    Console().print(table)
    write_text_atomic(
        args.output,
        json.dumps(
            {
                "benchmark": "mesh_iou",
                "checkpoint": str(args.load_config),
                "size": args.size,
                "steps": args.steps,
                "rows": rows,
                "mean_iou": means,
            },
            indent=1,
        ),
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
