"""Contact sheets: many images of one size in a grid, optionally labelled.

`tile` lays out images (rendered objects, prior samples); `category_sheet` shows one view of
every object of a category root (`hypnerf-ns data ... --preview`, `data check --preview`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from rich.console import Console

from hypnerf_ns.data.category import list_objects
from hypnerf_ns.errors import InputError
from hypnerf_ns.files import atomic_output

CONSOLE = Console()
LABEL_HEIGHT = 12


def tile(images: Sequence[np.ndarray], columns: int, labels: Sequence[str] | None = None) -> np.ndarray:
    """Images [H, W, 3] uint8 of one size, row by row, `columns` per row, on white; with a line
    of text under each if `labels` are given. Returns [rows * (H + label), min(columns, N) * W, 3]."""
    height, width = images[0].shape[:2]
    label = LABEL_HEIGHT if labels is not None else 0
    rows = math.ceil(len(images) / columns)
    sheet = Image.new("RGB", (min(columns, len(images)) * width, rows * (height + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, image in enumerate(images):
        x, y = (k % columns) * width, (k // columns) * (height + label)
        sheet.paste(Image.fromarray(image), (x, y))
        if labels is not None:
            draw.text((x + 2, y + height), labels[k][-(width // 6) :], fill="black")
    return np.asarray(sheet)


def save_png(image: np.ndarray, path: Path) -> None:
    """Write an RGB image [H, W, 3] uint8 as PNG, atomically."""
    with atomic_output(path) as temporary:
        Image.fromarray(image).save(temporary, format="PNG")


def first_view_on_white(folder: Path) -> Image.Image | None:
    """An object's first test view (else first training view) composited on white, or None."""
    for split in ("test", "train"):
        candidate = folder / split / "r_0.png"
        if candidate.is_file():
            with Image.open(candidate) as image:
                tile_image = Image.new("RGBA", image.size, "white")
                tile_image.alpha_composite(image.convert("RGBA"))
            return tile_image.convert("RGB")
    return None


def category_sheet(root: Path, output: Path, columns: int = 8) -> None:
    """One view per object of a category root, labelled with its id, in a grid (PNG at `output`)."""
    tiles: list[np.ndarray] = []
    labels: list[str] = []
    size = 0
    candidates = [(entry.id, first_view_on_white(entry.folder)) for entry in list_objects(root)]
    views = [(name, view) for name, view in candidates if view is not None]
    if not views:
        raise InputError(root, "no views to put on a contact sheet")
    size = max(view.size[0] for _, view in views)
    for name, view in views:
        tiles.append(np.asarray(view.resize((size, size))))
        labels.append(name)
    save_png(tile(tiles, columns, labels), output)
    CONSOLE.print(f"contact sheet of {len(tiles)} objects: {output}")
