"""The report of a recipe comparison (`refine_recipes.py`): a JSON file and a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hypnerf_ns.files import write_text_atomic


def write_report(output: Path, report: dict[str, Any], title: str) -> None:
    """Write `report` (with "mean": {recipe: {psnr, ssim, seconds}}) to `output` atomically and print its means."""
    write_text_atomic(output, json.dumps(report, indent=1) + "\n")
    table = Table(title=title)
    for column in ("recipe", "PSNR", "SSIM", "s / object"):
        table.add_column(column, justify="right")
    for name, metrics in report["mean"].items():
        table.add_row(name, f"{metrics['psnr']:.2f}", f"{metrics['ssim']:.3f}", f"{metrics['seconds']:.1f}")
    console = Console()
    console.print(table)
    console.print(f"wrote {output}")
