"""Colour statistics of categories: are procedural objects coloured like real ones?

Over the foreground pixels (alpha > 0.5) of some training views of each object: the mean
luminance (Rec. 709 weights on sRGB values), the median and 90th percentile of HSV saturation,
and the share of nearly grey pixels (saturation < 0.15). A prior trained on objects darker or
greyer than the ones it meets at test time starts from the wrong colours.

    python benchmarks/colours.py --roots ../shared/data/chairs-dev /work/data/procedural-chairs \\
        --output benchmarks/results/colours.json

Prints a table and writes JSON ({"roots": {root: {statistic: value, "objects": n}}}).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro
from rich.console import Console
from rich.table import Table

from hypnerf_ns.data.category import list_objects
from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.lib.views import load_cameras, read_rgba
from hypnerf_ns.progress import progress_bar

CONSOLE = Console()
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])


@dataclass
class Args:
    roots: list[Path]
    """Category roots to compare."""
    output: Path = Path("benchmarks/results/colours.json")
    max_objects: int = 200
    """Objects per root (evenly spaced through the root's list)."""
    views: int = 8
    """Training views per object."""


def foreground_pixels(folder: Path, views: int) -> np.ndarray:
    """sRGB colours [P, 3] in [0, 1] of the foreground pixels of `views` evenly spaced training views."""
    cameras, files = load_cameras(folder, "train", None, 1.0)
    size = (int(cameras.height[0]), int(cameras.width[0]))
    chosen = np.linspace(0, len(files) - 1, views).round().astype(int)
    rgba = torch.stack([read_rgba(files[k], size) for k in chosen]).reshape(-1, 4).numpy()
    return rgba[rgba[:, 3] > 0.5, :3]


def statistics(pixels: np.ndarray) -> dict[str, float]:
    top, bottom = pixels.max(-1), pixels.min(-1)
    saturation = np.where(top > 0, (top - bottom) / np.maximum(top, 1e-6), 0.0)
    return {
        "luminance_mean": float((pixels @ LUMINANCE).mean()),
        "saturation_median": float(np.median(saturation)),
        "saturation_p90": float(np.quantile(saturation, 0.9)),
        "grey_share": float((saturation < 0.15).mean()),
    }


def main(args: Args) -> None:
    report: dict[str, dict[str, float]] = {}
    with progress_bar() as progress:
        for root in args.roots:
            entries = list_objects(root)
            entries = [
                entries[k]
                for k in np.unique(
                    np.linspace(0, len(entries) - 1, min(args.max_objects, len(entries))).round().astype(int)
                )
            ]
            task = progress.add_task(root.name, total=len(entries))
            pixels = []
            for entry in entries:
                pixels.append(foreground_pixels(entry.folder, args.views))
                progress.advance(task)
            report[str(root)] = {**statistics(np.concatenate(pixels)), "objects": len(entries)}
    table = Table(title="foreground colour statistics")
    for column in ("root", "objects", "mean luminance", "median saturation", "saturation p90", "grey share"):
        table.add_column(column, justify="left" if column == "root" else "right")
    for root, values in report.items():
        table.add_row(
            Path(root).name,
            str(values["objects"]),
            *(f"{values[k]:.3f}" for k in ("luminance_mean", "saturation_median", "saturation_p90", "grey_share")),
        )
    CONSOLE.print(table)
    write_text_atomic(args.output, json.dumps({"roots": report}, indent=1) + "\n")
    CONSOLE.print(f"wrote {args.output}")


if __name__ == "__main__":
    main(tyro.cli(Args))
