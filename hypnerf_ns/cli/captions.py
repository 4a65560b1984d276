"""`hypnerf-ns data captions`: the captions text-to-NeRF derives for a category (tasks.captions), to review or edit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import tyro
from rich.console import Console
from rich.table import Table

from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.tasks.captions import category_captions

CONSOLE = Console()


@dataclass
class Captions:
    """Show the captions text-to-NeRF derives for a category (and optionally write them as JSON to review or edit)."""

    root: tyro.conf.Positional[Path]
    """Category folder (objects.json + one folder per object)."""
    output: Path | None = None
    """JSON file to write: {id: {"attributes", "captions", "held_out"}}; copy edited captions into objects.json as
    "captions"."""

    def main(self) -> None:
        captions = category_captions(self.root)
        table = Table(title=f"captions of {len(captions)} objects ({self.root})")
        for column in ("object", "attributes", "a training caption", "a held-out caption"):
            table.add_column(column)
        for item in captions:
            attributes = "; ".join(f"{k}: {v}" for k, v in item.attributes.items() if v)
            table.add_row(
                item.object_id,
                attributes,
                item.training[1].text if len(item.training) > 1 else item.training[0].text,
                item.held_out[0] if item.held_out else "",
            )
        CONSOLE.print(table)
        if self.output is not None:
            listing = {
                item.object_id: {
                    "attributes": item.attributes,
                    "captions": [c.text for c in item.training],
                    "held_out": item.held_out,
                }
                for item in captions
            }
            write_text_atomic(self.output, json.dumps(listing, indent=1) + "\n")
            CONSOLE.print(f"wrote {self.output}")
