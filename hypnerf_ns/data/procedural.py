"""`hypnerf-ns data procedural`: thousands of coloured procedural objects made on the CPU.

A category prior needs thousands of objects; Infinigen (Princeton VL, BSD-3) makes furniture
from code, offline, with Blender as a Python module (`bpy`). Object k is built from seed
`seed + k` by a factory also chosen from that seed, so the same seed always gives the same
object. Infinigen's materials are procedural Cycles shaders, too slow to render 52 views of
(seconds per view in Cycles), so each object's albedo is baked once: the shaders are reduced to
their base colour (no bump, bevel, metal or glass), Cycles bakes the diffuse colour pass with
one sample on a few thousand of the mesh's faces, and every vertex takes the colour of its
nearest baked faces of the same material. Infinigen's palettes are darker and greyer than real
chairs' (mean foreground luminance 0.27 vs 0.34, 90th percentile of saturation 0.48 vs 0.72 over
the dev chairs), so half the materials are recoloured (`recolour`). The full-resolution mesh
with these colours is then rendered by the project's Embree renderer from the same cameras as
every other category (`meshes.render_object`) and written in the category layout (`writer.py`).

Objects are made in parallel by worker processes that load Blender once; Blender's output
goes to `OUTPUT/.logs/`. Existing object folders are kept (an interrupted run resumes) and
objects.json is rewritten periodically and at the end, listing every object present.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
import re
import signal
import sys
import time
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console

from hypnerf_ns.data.category import read_json
from hypnerf_ns.data.meshes import RenderOptions, render_object
from hypnerf_ns.data.preview import category_sheet
from hypnerf_ns.data.render import X_FRONT_TO_MINUS_Y, Surface, normalise
from hypnerf_ns.data.writer import write_index
from hypnerf_ns.errors import HypnerfError
from hypnerf_ns.progress import progress_bar

CONSOLE = Console()
GENERATOR = "infinigen 1.15.5"
CREATOR = "Infinigen (Princeton Vision & Learning Lab), procedural"
LICENSE = "BSD-3-Clause (generator code); generated asset"
FRAME = "z-up, front -y"
"""The object frame (render.X_FRONT_TO_MINUS_Y), written in objects.json."""
COLOURS = "baked albedo, a random half of the materials recoloured"
"""How objects are coloured (`recolour`), written in objects.json."""
STYLE = {"frame": FRAME, "colours": COLOURS}
"""What a root's objects must share: a root made before (objects facing +x, or Infinigen's colours
alone) is refused rather than resumed into a mix of two styles."""
INSTALL = 'pip install -e ".[procedural]" && pip install --no-deps infinigen==1.15.5'
"""Infinigen pins trimesh<3.23 (we need >=4) but runs with it, hence `--no-deps`."""

SEATING = "infinigen.assets.objects.seating"
FACTORIES: dict[str, tuple[tuple[str, str, float], ...]] = {
    # category: (module, factory class, share of the objects). Chairs: voxel IoU (32^3) of each of
    # 40 objects per factory to its nearest other, median / share above 0.8: ChairFactory 0.51 / 0%,
    # OfficeChairFactory 0.63 / 5%, ArmChairFactory 0.78 / 35%, BarChairFactory 0.81 / 50%.
    "chair": (
        (f"{SEATING}.chairs", "ChairFactory", 0.6),
        (f"{SEATING}.chairs", "OfficeChairFactory", 0.15),
        (SEATING, "ArmChairFactory", 0.15),
        (f"{SEATING}.chairs", "BarChairFactory", 0.1),
    ),
    "sofa": ((SEATING, "SofaFactory", 0.7), (SEATING, "ArmChairFactory", 0.3)),
    "table": (
        ("infinigen.assets.objects.tables", "TableDiningFactory", 0.4),
        ("infinigen.assets.objects.tables", "TableCocktailFactory", 0.2),
        ("infinigen.assets.objects.tables", "SideTableFactory", 0.2),
        ("infinigen.assets.objects.tables", "CoffeeTableFactory", 0.2),
    ),
    "lamp": (
        ("infinigen.assets.objects.lamp", "DeskLampFactory", 0.5),
        ("infinigen.assets.objects.lamp", "FloorLampFactory", 0.5),
    ),
}
BAKED_FACES = 3000
"""Faces whose albedo Cycles bakes per object (area-weighted sample); colours spread from them."""
NEIGHBOURS = 4
"""Baked faces blended (inverse distance) into each vertex colour."""
RECOLOURED_SHARE = 0.5
"""Chance that a material takes a random colour (`recolour`)."""
RANDOM_SATURATION = (0.15, 0.95)
RANDOM_VALUE = (0.3, 0.95)
"""Ranges (uniform) of a random colour's HSV saturation and mean value (sRGB); hue is uniform."""
MAX_DETAIL = 3.0
"""Octaves kept in noise textures: finer detail is invisible at 128 px and costs bake time."""
TASKS_PER_WORKER = 100
"""A worker is replaced after this many objects (Blender leaks a little memory per object)."""
INDEX_EVERY = 20
"""objects.json is rewritten after every this many new objects."""
PR_SET_PDEATHSIG = 1
"""Linux prctl option: the signal a process gets when its parent dies."""


@dataclass
class Task:
    """One object to make: its seed and where to write it."""

    seed: int
    category: str
    folder: Path
    render: RenderOptions


@dataclass
class Done:
    """A finished object and what it cost, in seconds."""

    seed: int
    triangles: int
    generation: float
    colour: float
    render: float


@dataclass
class Failed:
    """A seed that could not be made, and why."""

    seed: int
    error: str


def object_id(category: str, seed: int) -> str:
    return f"infinigen-{category}-{seed:06d}"


def choose_factory(category: str, seed: int) -> tuple[str, str]:
    """(module, class) of the factory that makes object `seed`, drawn from the category's mix."""
    choices = FACTORIES[category]
    weights = np.array([w for _, _, w in choices])
    index = np.random.default_rng([seed, zlib.crc32(category.encode())]).choice(len(choices), p=weights / weights.sum())
    module, name, _ = choices[index]
    return module, name


def index_entry(category: str, seed: int) -> dict[str, Any]:
    """The objects.json entry of object `seed` (credits and licence as for the other sources)."""
    module, factory = choose_factory(category, seed)
    return {
        "id": object_id(category, seed),
        "name": f"procedural {category} ({factory}, seed {seed})",
        "factory": factory,
        "seed": seed,
        "generator": GENERATOR,
        **STYLE,
        "creator": CREATOR,
        "license": LICENSE,
        "source": f"{module}.{factory}",
    }


def present_seeds(output: Path, category: str) -> list[int]:
    """Seeds of the objects of this category whose folders exist in `output`."""
    pattern = re.compile(rf"infinigen-{re.escape(category)}-(\d+)")
    if not output.is_dir():
        return []
    return sorted(int(m.group(1)) for p in output.iterdir() if p.is_dir() and (m := pattern.fullmatch(p.name)))


def write_present_index(output: Path, category: str) -> int:
    """Rewrite objects.json to list every object present; returns how many."""
    seeds = present_seeds(output, category)
    if seeds:
        write_index(output, category, [index_entry(category, s) for s in seeds])
    return len(seeds)


# ---- inside worker processes (bpy and infinigen are imported here only) ----


def init_worker(log_dir: Path) -> None:
    """Send this process's output to a log file, load Blender and Infinigen, set up Cycles baking."""
    if sys.platform == "linux":  # end with the main process (killed or not), not linger holding Blender
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = os.open(log_dir / f"worker-{os.getpid()}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    import bpy
    from infinigen.core import init

    init.apply_gin_configs(
        ["infinigen_examples/configs_indoor", "infinigen_examples/configs_nature"], skip_unknown=True
    )
    init.configure_blender()
    scene = bpy.context.scene
    scene.render.threads_mode, scene.render.threads = "FIXED", 1  # one core per worker
    scene.cycles.device, scene.cycles.samples, scene.cycles.use_denoising = "CPU", 1, False
    bake = scene.render.bake
    bake.use_pass_direct, bake.use_pass_indirect, bake.use_pass_color = False, False, True


def generate(category: str, seed: int) -> Any:
    """Build object `seed` in an empty Blender scene; returns its meshes joined into one object."""
    import bpy
    from infinigen.core.util import blender as butil
    from infinigen.core.util.math import FixedSeed

    butil.clear_scene()
    module, name = choose_factory(category, seed)
    factory_class = getattr(importlib.import_module(module), name)
    with FixedSeed(seed):
        factory = factory_class(seed)
        asset = factory.spawn_asset(seed)
        factory.finalize_assets(asset)
    meshes = [o for o in bpy.context.scene.objects if o.type == "MESH" and not o.hide_render and len(o.data.polygons)]
    if not meshes:
        raise RuntimeError("the factory made no mesh")
    for obj in meshes:
        butil.apply_modifiers(obj)
    return butil.join_objects(meshes) if len(meshes) > 1 else meshes[0]


def relink(tree: Any, old: Any, new: Any) -> None:
    """Feed everything `old` (an output socket) fed from `new` instead."""
    for link in list(old.links):
        tree.links.new(new, link.to_socket)


def albedo_only(tree: Any) -> None:
    """Reduce a shader node tree (and the groups it uses) to its base colour, cheaply.

    Bump, displacement and bevels only change normals, metal, glass and sheen hide the base
    colour from the diffuse pass, and high octaves of noise and brick mortar are invisible at
    128 px; all go.
    """
    for node in list(tree.nodes):
        kind = node.bl_idname
        if kind == "ShaderNodeGroup" and node.node_tree is not None:
            albedo_only(node.node_tree)
        elif kind == "ShaderNodeOutputMaterial":
            for link in list(node.inputs["Displacement"].links):
                tree.links.remove(link)
        elif kind == "ShaderNodeBevel":
            relink(tree, node.outputs["Normal"], tree.nodes.new("ShaderNodeNewGeometry").outputs["Normal"])
            tree.nodes.remove(node)
        elif kind == "ShaderNodeTexBrick":  # thin mortar is invisible at 128 px, and is all one sees where
            node.inputs["Mortar Size"].default_value = 0.0  # a material reads UVs the mesh lacks (sofa fabric)
        elif kind in ("ShaderNodeTexNoise", "ShaderNodeTexVoronoi", "ShaderNodeTexWave") and "Detail" in node.inputs:
            detail = node.inputs["Detail"]
            if not detail.is_linked:
                detail.default_value = min(detail.default_value, MAX_DETAIL)
        elif kind.startswith("ShaderNodeBsdf") or kind == "ShaderNodeSubsurfaceScattering":
            base_colour_only(tree, node)


def base_colour_only(tree: Any, node: Any) -> None:
    """A BSDF node without normals; Principled without metal/glass/coat/sheen; glossy or glass ones made diffuse."""
    for name in ("Normal", "Coat Normal", "Tangent"):
        if name in node.inputs:
            for link in list(node.inputs[name].links):
                tree.links.remove(link)
    if node.bl_idname == "ShaderNodeBsdfPrincipled":
        for name in ("Metallic", "Transmission Weight", "Coat Weight", "Sheen Weight"):
            for link in list(node.inputs[name].links):
                tree.links.remove(link)
            node.inputs[name].default_value = 0.0
    elif node.bl_idname in (
        "ShaderNodeBsdfAnisotropic",
        "ShaderNodeBsdfGlossy",
        "ShaderNodeBsdfGlass",
        "ShaderNodeBsdfRefraction",
        "ShaderNodeBsdfSheen",
    ):
        diffuse = tree.nodes.new("ShaderNodeBsdfDiffuse")
        colour = node.inputs["Color"]
        if colour.is_linked:
            tree.links.new(colour.links[0].from_socket, diffuse.inputs["Color"])
        else:
            diffuse.inputs["Color"].default_value = colour.default_value
        relink(tree, node.outputs[0], diffuse.outputs[0])


def pick_faces(centre: np.ndarray, area: np.ndarray, count: int, seed: int) -> np.ndarray:
    """[F] mask of `count` faces drawn area-weighted without replacement, whatever the faces' order.

    Each face's random number hashes its centre (Efraimidis-Spirakis keys u^(1/area)): Blender
    does not always number the faces of one object the same way.
    """
    phase = np.sin(centre @ np.array([12.9898, 78.233, 37.719]) + 0.618 * (seed % 1000)) * 43758.5453
    u = np.clip(phase - np.floor(phase), 1e-12, 1.0)
    keys = np.log(u) / np.maximum(area, 1e-20)
    keep = np.zeros(len(area), dtype=bool)
    keep[np.argsort(-keys)[:count]] = True
    return keep


def bake_samples(obj: Any, count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bake the albedo of `count` faces of `obj` (area-weighted): centres [N, 3], materials [N], linear RGB [N, 3]."""
    import bmesh
    import bpy

    mesh = obj.data
    area, centre = np.empty(len(mesh.polygons)), np.empty(len(mesh.polygons) * 3)
    mesh.polygons.foreach_get("area", area)
    mesh.polygons.foreach_get("center", centre)
    keep = pick_faces(centre.reshape(-1, 3), area, count, seed)
    proxy = obj.copy()
    proxy.data = mesh.copy()
    proxy.data.use_auto_texspace = False  # "Generated" texture coordinates stay those of the whole object
    proxy.data.texspace_location, proxy.data.texspace_size = mesh.texspace_location, mesh.texspace_size
    bm = bmesh.new()
    bm.from_mesh(proxy.data)
    bm.faces.ensure_lookup_table()
    bmesh.ops.delete(bm, geom=[f for f, k in zip(bm.faces, keep, strict=True) if not k], context="FACES")
    bm.to_mesh(proxy.data)
    bm.free()
    bpy.context.scene.collection.objects.link(proxy)
    bpy.context.view_layer.update()
    for material in proxy.data.materials:
        if material is not None and material.node_tree is not None:
            albedo_only(material.node_tree)
    attribute = proxy.data.color_attributes.new("albedo", "FLOAT_COLOR", "CORNER")
    proxy.data.color_attributes.active_color = attribute
    for other in bpy.context.view_layer.objects:
        other.select_set(other == proxy)
    bpy.context.view_layer.objects.active = proxy
    bpy.ops.object.bake(type="DIFFUSE", pass_filter={"COLOR"}, target="VERTEX_COLORS")
    corner = np.empty(len(attribute.data) * 4, dtype=np.float32)
    attribute.data.foreach_get("color", corner)
    faces = proxy.data.polygons
    start, size = np.empty(len(faces), dtype=np.int64), np.empty(len(faces), dtype=np.int64)
    faces.foreach_get("loop_start", start)
    faces.foreach_get("loop_total", size)
    colour = np.add.reduceat(corner.reshape(-1, 4)[:, :3], start) / size[:, None]
    centre, material = np.empty(len(faces) * 3), np.empty(len(faces), dtype=np.int64)
    faces.foreach_get("center", centre)
    faces.foreach_get("material_index", material)
    return centre.reshape(-1, 3), material, colour


def triangles_of(obj: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object-space vertices [V, 3], triangles [F, 3] and triangle materials [F] of a mesh object."""
    mesh = obj.data
    mesh.calc_loop_triangles()
    vertices = np.empty(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", vertices)
    triangles = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int64)
    mesh.loop_triangles.foreach_get("vertices", triangles)
    material = np.empty(len(mesh.loop_triangles), dtype=np.int64)
    mesh.loop_triangles.foreach_get("material_index", material)
    return vertices.reshape(-1, 3), *canonical_order(triangles.reshape(-1, 3), material)


def canonical_order(triangles: np.ndarray, material: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangles (and their materials) sorted, each starting at its lowest vertex (winding kept).

    Blender may number one object's faces differently from run to run; this makes the arrays,
    and so the renders, identical for the same seed.
    """
    shift = np.argmin(triangles, axis=1)
    rolled = np.take_along_axis(triangles, (shift[:, None] + np.arange(3)) % 3, axis=1)
    order = np.lexsort(rolled.T[::-1])
    return rolled[order], material[order]


def linear_to_srgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.clip(rgb, 0.0, 1.0)
    return np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * np.power(rgb, 1 / 2.4) - 0.055)


def spread_colours(
    vertices: np.ndarray,
    triangles: np.ndarray,
    material: np.ndarray,
    samples: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Corner colours [F, 3, 3]: each corner blends its nearest baked faces of the triangle's material."""
    from scipy.spatial import cKDTree

    centre, sample_material, colour = samples
    corner = np.zeros((len(triangles), 3, 3), dtype=np.float32)
    for m in np.unique(material):
        of_material = sample_material == m
        if not of_material.any():  # too small to be sampled: take the nearest faces of any material
            of_material = np.ones_like(of_material)
        tree = cKDTree(centre[of_material])
        k = min(NEIGHBOURS, int(of_material.sum()))
        ids, inverse = np.unique(triangles[material == m], return_inverse=True)
        distance, nearest = tree.query(vertices[ids], k=k)
        distance, nearest = distance.reshape(len(ids), k), nearest.reshape(len(ids), k)
        weight = 1.0 / (distance + 1e-4)
        blended = (colour[of_material][nearest] * weight[..., None]).sum(1) / weight.sum(1, keepdims=True)
        corner[material == m] = blended[inverse].reshape(-1, 3, 3)
    return linear_to_srgb(corner).astype(np.float32)


def recolour(corner: np.ndarray, material: np.ndarray, seed: int) -> np.ndarray:
    """Corner colours [F, 3, 3] (sRGB) with each material, by chance RECOLOURED_SHARE, given a random
    hue and saturation and a random mean value; its texture stays as variation of value around it."""
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    rng = np.random.default_rng([seed, zlib.crc32(b"recolour")])
    hsv = rgb_to_hsv(np.clip(corner, 0.0, 1.0))
    for m in np.unique(material):
        hue, saturation, value, chance = (
            rng.random(),
            rng.uniform(*RANDOM_SATURATION),
            rng.uniform(*RANDOM_VALUE),
            rng.random(),
        )
        if chance >= RECOLOURED_SHARE:
            continue
        of_material = hsv[material == m]
        relative_value = of_material[..., 2] / max(float(of_material[..., 2].mean()), 1e-3)
        of_material[..., 0], of_material[..., 1] = hue, saturation
        of_material[..., 2] = np.clip(value * relative_value, 0.0, 1.0)
        hsv[material == m] = of_material
    return hsv_to_rgb(hsv).astype(np.float32)


def make_object(task: Task) -> Done | Failed:
    """Generate, colour, render and write one object (in a worker); errors come back as Failed."""
    try:
        start = time.perf_counter()
        obj = generate(task.category, task.seed)
        generated = time.perf_counter()
        vertices, triangles, material = triangles_of(obj)
        samples = bake_samples(obj, BAKED_FACES, task.seed)
        corner_colour = recolour(spread_colours(vertices, triangles, material, samples), material, task.seed)
        coloured = time.perf_counter()
        world = np.array(obj.matrix_world)
        surface = Surface(
            vertices @ world[:3, :3].T + world[:3, 3],
            triangles,
            np.zeros((len(triangles), 3, 2), dtype=np.float32),
            corner_colour,
            np.full(len(triangles), -1, dtype=np.int64),
            [],
        )
        render_object(
            normalise(surface, X_FRONT_TO_MINUS_Y), task.folder, task.render, task.folder.name
        )  # Z-up, faces +X
        return Done(task.seed, len(triangles), generated - start, coloured - generated, time.perf_counter() - coloured)
    except Exception as error:  # one bad seed must not stop a run of thousands
        return Failed(task.seed, f"{type(error).__name__}: {error}".splitlines()[0])


# ---- in the main process ----


def run_workers(tasks: list[Task], workers: int, log_dir: Path) -> Iterator[Done | Failed]:
    """Results of `make_object` over `tasks`, in completion order, from `workers` processes.

    A crashed worker (Blender can segfault) fails the objects it was making; the others go on
    in a fresh pool.
    """
    pending: deque[Task] = deque(tasks)
    while pending:
        running: dict[Future, Task] = {}
        pool = ProcessPoolExecutor(
            workers,
            mp_context=get_context("spawn"),
            initializer=init_worker,
            initargs=(log_dir,),
            max_tasks_per_child=TASKS_PER_WORKER,
        )
        try:
            while pending or running:
                while pending and len(running) < 2 * workers:
                    task = pending.popleft()
                    running[pool.submit(make_object, task)] = task
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()  # raises BrokenProcessPool if a worker died
                    running.pop(future)
        except BrokenProcessPool:
            for task in running.values():
                yield Failed(task.seed, "the worker process died (see the logs in OUTPUT/.logs)")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def check_installed() -> None:
    if importlib.util.find_spec("bpy") is None or importlib.util.find_spec("infinigen") is None:
        raise HypnerfError(f"procedural objects need Infinigen and Blender's bpy (Python 3.11): {INSTALL}")


@dataclass
class Procedural:
    """Make a category of coloured procedural objects with Infinigen, rendered like the other categories."""

    output: Path
    """Category root to write (one nerf-synthetic folder per object + objects.json)."""
    count: int
    """Number of objects; object k is made from seed `seed + k`."""
    category: Literal["chair", "sofa", "table", "lamp"] = "chair"
    """Which Infinigen factories to draw from (chair: ordinary, office, arm and bar chairs; see FACTORIES)."""
    seed: int = 0
    """Seed of the first object."""
    workers: int = 2
    """Worker processes (each loads Blender, about 1.5 GB, and uses one core)."""
    render: RenderOptions = field(default_factory=RenderOptions)
    overwrite: bool = False
    """Re-make objects whose folder exists (otherwise they are kept: an interrupted run resumes)."""
    preview: Path | None = None
    """Also write a contact sheet PNG of all objects here."""

    def main(self) -> None:
        check_installed()
        if not self.overwrite:
            check_style(self.output / "objects.json")
        self.output.mkdir(parents=True, exist_ok=True)
        seeds = range(self.seed, self.seed + self.count)
        tasks = [Task(s, self.category, self.output / object_id(self.category, s), self.render) for s in seeds]
        todo = [t for t in tasks if self.overwrite or not t.folder.is_dir()]
        failed = make_all(todo, len(tasks), self.workers, self.output, self.category)
        present = write_present_index(self.output, self.category)
        CONSOLE.print(
            f"{present} {self.category} objects in {self.output}"
            + (f"; {failed} seeds failed (rerun to retry them)" if failed else "")
        )
        if self.preview is not None and present:
            category_sheet(self.output, self.preview)


def check_style(index: Path) -> None:
    """Refuse to resume a root whose objects were made in another frame or colouring than STYLE."""
    if not index.is_file():
        return
    for entry in read_json(index)["objects"]:
        for key, value in STYLE.items():
            if entry.get(key) != value:
                made = entry.get(key, "not recorded")
                raise HypnerfError(
                    f"{index}: objects made by an older hypnerf-ns ({key}: {made}; now {value}): "
                    "write to a new --output, or pass --overwrite"
                )


def make_all(tasks: list[Task], total: int, workers: int, output: Path, category: str) -> int:
    """Make `tasks` with a progress bar over all `total` objects; returns how many failed."""
    failed = 0
    with progress_bar(console=CONSOLE) as progress:
        bar = progress.add_task(f"making {category} objects", total=total, completed=total - len(tasks))
        for k, result in enumerate(run_workers(tasks, workers, output / ".logs"), start=1):
            if isinstance(result, Failed):
                failed += 1
                progress.console.print(
                    f"[yellow]warning[/yellow]: seed {result.seed} skipped: {result.error}", soft_wrap=True
                )
            else:
                progress.console.print(
                    f"{object_id(category, result.seed)} ({choose_factory(category, result.seed)[1]}): "
                    f"{result.triangles} triangles; "
                    f"generation {result.generation:.1f} s, colour {result.colour:.1f} s, render {result.render:.1f} s",
                    soft_wrap=True,
                )
            if k % INDEX_EVERY == 0:
                write_present_index(output, category)
            progress.advance(bar)
    return failed


if __name__ == "__main__":
    import tyro

    tyro.cli(Procedural).main()
