"""`hypnerf-ns data meshes`: a folder of meshes -> a category dataset of rendered views.

One object per mesh file directly in the input folder (id = file stem), or per sub-folder (id =
folder name; its mesh file, with textures beside it). Each object is normalised into
[-0.5, 0.5]^3 (largest side 1, centred, optionally rotated Y-up -> Z-up), rendered from random
cameras on a sphere (`render.py`) and written in the category layout (`writer.py`).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console

from hypnerf_ns.data.category import list_objects
from hypnerf_ns.data.preview import category_sheet
from hypnerf_ns.data.render import (
    Y_UP_TO_Z_UP,
    MeshError,
    Renderer,
    Surface,
    focal_from_fov,
    load_surface,
    normalise,
    sample_cameras,
)
from hypnerf_ns.data.writer import View, write_index, write_object
from hypnerf_ns.errors import InputError
from hypnerf_ns.progress import progress_bar

CONSOLE = Console()
MESH_SUFFIXES = (".glb", ".gltf", ".obj", ".ply", ".off", ".stl")


@dataclass
class RenderOptions:
    """How each object is photographed."""

    resolution: int = 128
    """Image width and height in pixels."""
    views: tuple[int, int, int] = (40, 4, 8)
    """Number of train, val and test views."""
    radius: float = 1.9
    """Distance of the cameras from the object's centre."""
    fov_deg: float = 40.107
    """Horizontal field of view in degrees (0.7 rad, as nerf-synthetic-like data here)."""
    elevation_deg: tuple[float, float] = (-5.0, 60.0)
    """Range of camera elevations above the ground plane, in degrees."""
    supersample: int = 2
    """Rays per pixel along each axis (antialiasing)."""
    seed: int = 0
    """Cameras of object `id` are drawn from a generator seeded by (seed, id)."""


@dataclass
class MeshObject:
    """One object to render: its id, the file to load and how to orient it."""

    id: str
    path: Path
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    """[3, 3] applied before normalisation (e.g. Y-up -> Z-up)."""
    entry: dict[str, Any] = field(default_factory=dict)
    """Extra objects.json fields (name, creator, licence, source, ...)."""


@dataclass
class Stretching:
    """Stretched copies of every object: a category of tens of meshes becomes hundreds of objects."""

    copies: int = 0
    """Copies of each object besides itself (ids <id>-s<k>), each axis scaled by its own random
    factor in [exp(-amplitude), exp(amplitude)] before normalisation."""
    amplitude: float = 0.25
    seed: int = 0
    """Copy k of object `id` draws its factors from a generator seeded by (seed, id, k)."""


def with_stretched_copies(objects: list[MeshObject], stretching: Stretching) -> list[MeshObject]:
    """Each object followed by its `stretching.copies` stretched copies.

    A copy is the same mesh with its width, depth and height scaled independently (in the object
    frame, before normalisation), so it keeps the real mesh's parts, materials and detail in
    proportions no model had. A prior on 36 real chairs, 19 more and 5 copies of each (330 objects)
    gave 19.63 dB from one view of 6 unseen real chairs against 18.14 for the 36 alone
    (docs/results.md, "Real chairs and stretched copies of them").
    """
    result: list[MeshObject] = []
    for obj in objects:
        result.append(obj)
        for k in range(stretching.copies):
            rng = np.random.default_rng([stretching.seed, zlib.crc32(obj.id.encode()), k])
            factors = np.exp(rng.uniform(-stretching.amplitude, stretching.amplitude, 3))
            entry = {
                **obj.entry,
                "name": f"{obj.entry.get('name', obj.id)} (stretched)",
                "stretched_from": obj.id,
                "stretch": factors.round(3).tolist(),
            }
            result.append(MeshObject(f"{obj.id}-s{k}", obj.path, np.diag(factors) @ obj.rotation, entry))
    return result


def without_listed(objects: list[MeshObject], root: Path | None) -> list[MeshObject]:
    """`objects` minus those whose id the category at `root` lists (none left out without a root)."""
    if root is None:
        return objects
    listed = {entry.id for entry in list_objects(root)}
    return [obj for obj in objects if obj.id not in listed]


def render_object(surface: Surface, folder: Path, options: RenderOptions, object_id: str) -> None:
    """Render a normalised surface from random cameras and write its nerf-synthetic folder."""
    rng = np.random.default_rng([options.seed, zlib.crc32(object_id.encode())])
    poses = sample_cameras(sum(options.views), options.radius, options.elevation_deg, rng)
    focal = focal_from_fov(options.resolution, options.fov_deg)
    renderer = Renderer(surface)
    views = [
        View(renderer.render(pose, options.resolution, options.resolution, focal, options.supersample), pose)
        for pose in poses
    ]
    n_train, n_val, _ = options.views
    splits = {"train": views[:n_train], "val": views[n_train : n_train + n_val], "test": views[n_train + n_val :]}
    write_object(folder, splits, focal)


def render_category(
    objects: list[MeshObject], output: Path, category: str, options: RenderOptions, overwrite: bool = False
) -> list[dict[str, Any]]:
    """Render every object into `output`; bad meshes are skipped with a warning naming the file.

    Objects whose folder already exists are kept unless `overwrite` (an interrupted run resumes).
    Writes objects.json listing the objects that exist afterwards; returns its entries.
    """
    written: list[dict[str, Any]] = []
    with progress_bar(console=CONSOLE) as progress:
        task = progress.add_task("rendering objects", total=len(objects))
        for obj in objects:
            folder = output / obj.id
            entry = {"id": obj.id, "name": obj.entry.get("name", obj.id), **obj.entry}
            if folder.is_dir() and not overwrite:
                written.append(entry)
                progress.advance(task)
                continue
            start = time.perf_counter()
            try:
                surface = normalise(load_surface(obj.path), obj.rotation)
            except MeshError as error:
                progress.console.print(f"[yellow]warning[/yellow]: skipping {obj.path}: {error}", soft_wrap=True)
                progress.advance(task)
                continue
            render_object(surface, folder, options, obj.id)
            seconds = time.perf_counter() - start
            progress.console.print(
                f"{obj.id}: {len(surface.faces)} triangles, "
                f"{sum(options.views)} views at {options.resolution} px in {seconds:.1f} s"
            )
            written.append(entry)
            progress.advance(task)
    if not written:
        raise InputError(output, "no object could be rendered (see the warnings above)")
    write_index(output, category, written)
    return written


def find_meshes(folder: Path) -> list[MeshObject]:
    """Mesh files directly in `folder` (id = stem) and one mesh per sub-folder (id = folder name)."""
    if not folder.is_dir():
        raise InputError(folder, "no such folder" if not folder.exists() else "not a folder")
    objects = [
        MeshObject(p.stem, p) for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in MESH_SUFFIXES
    ]
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        candidates = sorted(p for p in sub.rglob("*") if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
        if not candidates:
            continue
        if len(candidates) > 1:
            CONSOLE.print(
                f"[yellow]warning[/yellow]: {sub} holds {len(candidates)} meshes; using {candidates[0].name}",
                soft_wrap=True,
            )
        objects.append(MeshObject(sub.name, candidates[0]))
    ids = [o.id for o in objects]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(
            folder, f"two meshes would get the same object id {duplicates[0]!r} (a file and a folder of that name?)"
        )
    if not objects:
        raise InputError(folder, f"no mesh files ({', '.join(MESH_SUFFIXES)}) in it or its sub-folders")
    return objects


@dataclass
class Meshes:
    """Render a folder of meshes (OBJ+MTL+textures, GLB/GLTF, PLY, ...) into a category dataset."""

    input: Path
    """Folder of meshes: one per file, or one per sub-folder."""
    output: Path
    """Category root to write (one nerf-synthetic folder per object + objects.json)."""
    category: str = "objects"
    """Category name stored in objects.json."""
    up: Literal["y", "z"] = "y"
    """Up axis of the input meshes; Y-up meshes (OBJ/GLTF convention) are rotated to Z-up."""
    render: RenderOptions = field(default_factory=RenderOptions)
    overwrite: bool = False
    """Re-render objects whose folder exists (otherwise they are kept: an interrupted run resumes)."""
    preview: Path | None = None
    """Also write a contact sheet PNG of all objects here."""
    exclude: Path | None = None
    """A category root whose objects (by id) are left out, copies and all: e.g. the held-out objects a prior is
    evaluated on."""
    stretching: Stretching = field(default_factory=Stretching)

    def main(self) -> None:
        rotation = Y_UP_TO_Z_UP if self.up == "y" else np.eye(3)
        objects = without_listed(find_meshes(self.input), self.exclude)
        for obj in objects:
            obj.rotation = rotation
            obj.entry = {"source": str(obj.path.relative_to(self.input))}
        objects = with_stretched_copies(objects, self.stretching)
        written = render_category(objects, self.output, self.category, self.render, self.overwrite)
        CONSOLE.print(f"{len(written)} objects in {self.output}")
        if self.preview is not None:
            category_sheet(self.output, self.preview)
