"""`hypnerf-ns data merge`: several category roots as one category, without copying a view.

The merged root holds only an objects.json whose entries name their folders in the source roots
(relative paths) and a sampling weight per source, e.g. 36 real chairs drawn as often as 1,000
procedural ones with `--weights 27.8 1`. Training reads it like any category (`--data MERGED`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tyro
from rich.console import Console

from hypnerf_ns.data.category import list_objects, read_json
from hypnerf_ns.data.writer import write_index
from hypnerf_ns.errors import InputError

CONSOLE = Console()


def merged_entries(roots: list[Path], output: Path, weights: list[float]) -> list[dict[str, Any]]:
    """objects.json entries of every object of `roots` (in order), each naming its folder relative
    to `output` and its root's weight (times the entry's own); InputError on a duplicate id."""
    entries: list[dict[str, Any]] = []
    owner: dict[str, Path] = {}
    for root, weight in zip(roots, weights, strict=True):
        listing = read_json(root / "objects.json") if (root / "objects.json").is_file() else {"objects": []}
        extra = {str(e["id"]): e for e in listing.get("objects", [])}
        for obj in list_objects(root):
            if obj.id in owner:
                raise InputError(
                    root, f"object id {obj.id!r} is also in {owner[obj.id]}: ids must be unique across the merged roots"
                )
            owner[obj.id] = root
            entry = {**extra.get(obj.id, {}), "id": obj.id, "name": obj.name, "source_root": str(root)}
            entry["folder"] = os.path.relpath(obj.folder.resolve(), output.resolve())
            entry["weight"] = obj.weight * weight
            entries.append(entry)
    return entries


@dataclass
class Merge:
    """Several category roots as one category (an objects.json naming the objects' folders; nothing is copied)."""

    roots: tyro.conf.Positional[tuple[Path, ...]]
    """Category roots to merge, in order (object ids must be unique across them)."""
    output: Path
    """The merged root to write (its objects.json)."""
    weights: tuple[float, ...] | None = None
    """Sampling weight of each root's objects (default 1 each): how often a training batch draws them."""
    category: str | None = None
    """Category name (default the first root's)."""

    def main(self) -> None:
        weights = list(self.weights) if self.weights is not None else [1.0] * len(self.roots)
        if len(weights) != len(self.roots):
            raise InputError(self.output, f"{len(self.roots)} roots but {len(weights)} weights")
        self.output.mkdir(parents=True, exist_ok=True)
        entries = merged_entries(list(self.roots), self.output, weights)
        first = self.roots[0] / "objects.json"
        category = self.category or (read_json(first).get("category", "objects") if first.is_file() else "objects")
        write_index(self.output, category, entries)
        counts = ", ".join(f"{sum(e['source_root'] == str(root) for e in entries)} from {root}" for root in self.roots)
        CONSOLE.print(f"wrote {self.output / 'objects.json'}: {len(entries)} objects ({counts})", soft_wrap=True)
