"""`hypnerf-ns data check`: what a category root holds, and every frame that would break training.

Unlike the dataparser, which stops at the first problem with a one-line error, the check reads
everything and lists all problems: missing or unreadable images, images of another size,
images without alpha, views where the object is invisible, bad camera matrices.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro
from PIL import Image
from rich.console import Console
from rich.table import Table

from hypnerf_ns.data.category import ObjectEntry, list_objects, read_json
from hypnerf_ns.data.preview import category_sheet
from hypnerf_ns.errors import HypnerfError, InputError

CONSOLE = Console()
SPLITS = ("train", "val", "test")


@dataclass
class ObjectReport:
    """Counts and problems of one object."""

    id: str
    views: tuple[int, int, int]
    """Views in train, val, test."""
    sizes: Counter
    """(width, height) -> number of frames."""
    problems: list[str]


def check_frame(path: Path, pose: object) -> tuple[tuple[int, int] | None, str | None]:
    """Size of one frame's image and the problem with the frame, if any."""
    matrix = np.asarray(pose, dtype=np.float64) if isinstance(pose, list) else np.zeros(0)
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        return None, f"{path}: transform_matrix is not a finite 4x4 matrix"
    if not path.is_file():
        return None, f"{path}: image missing"
    try:
        with Image.open(path) as image:
            size = image.size
            if "A" not in image.getbands():
                return size, f"{path}: no alpha channel (the background must be transparent)"
            alpha = np.asarray(image.getchannel("A"))
    except OSError:
        return None, f"{path}: not a readable image"
    if alpha.max() == 0:
        return size, f"{path}: fully transparent (the object is not in view)"
    return size, None


def check_object(entry: ObjectEntry) -> ObjectReport:
    """Read every split and frame of one object, collecting problems instead of stopping."""
    counts: list[int] = []
    sizes: Counter = Counter()
    problems: list[str] = []
    for split in SPLITS:
        try:
            meta = read_json(entry.folder / f"transforms_{split}.json")
        except InputError as error:
            problems.append(str(error).removeprefix("hypnerf-ns: "))
            counts.append(0)
            continue
        frames = meta.get("frames", []) if isinstance(meta, dict) else []
        counts.append(len(frames))
        for frame in frames:
            name = str(frame.get("file_path", "")) if isinstance(frame, dict) else ""
            path = entry.folder / name
            path = path if path.suffix.lower() == ".png" else path.with_name(path.name + ".png")
            size, problem = check_frame(path, frame.get("transform_matrix") if isinstance(frame, dict) else None)
            if size is not None:
                sizes[size] += 1
            if problem is not None:
                problems.append(problem)
    return ObjectReport(entry.id, (counts[0], counts[1], counts[2]), sizes, problems)


@dataclass
class Check:
    """Report a category root's objects, views, resolutions and every bad frame."""

    root: tyro.conf.Positional[Path]
    """Category root (one nerf-synthetic folder per object, optional objects.json)."""
    preview: Path | None = None
    """Also write a contact sheet PNG (one view per object) here."""

    def main(self) -> None:
        reports = [check_object(entry) for entry in list_objects(self.root)]
        table = Table(title=f"{self.root}: {len(reports)} objects")
        for column in ("object", "train", "val", "test", "resolution", "bad frames"):
            table.add_column(column)
        for r in reports:
            resolution = ", ".join(f"{w}x{h}" for (w, h) in r.sizes) or "-"
            table.add_row(r.id, *map(str, r.views), resolution, str(len(r.problems)) if r.problems else "")
        CONSOLE.print(table)
        all_sizes = Counter()
        for r in reports:
            all_sizes.update(r.sizes)
        problems = [p for r in reports for p in r.problems]
        if len(all_sizes) > 1:
            problems.append(
                f"{self.root}: several image sizes {dict(all_sizes)}; all objects of a category must share one"
            )
        if self.root.joinpath("objects.json").is_file():
            CONSOLE.print(
                f"category: {json.loads(self.root.joinpath('objects.json').read_text()).get('category', '?')}"
            )
        if self.preview is not None:
            category_sheet(self.root, self.preview)
        for problem in problems:
            CONSOLE.print(f"[red]bad[/red]: {problem}", soft_wrap=True)
        if problems:
            raise HypnerfError(f"{self.root}: {len(problems)} problem(s), listed above")
        CONSOLE.print(f"[green]ok[/green]: {sum(sum(r.views) for r in reports)} views, no problems")
