"""`hypnerf-ns data furniture`: a real category from Debian's `sweethome3d-furniture` package.

The package (about 120 MB, fetched with `apt-get download`: no root needed) holds Sweet Home 3D
furniture catalogues (`*.sh3f`, zip files) of artists' models under CC0 / CC-BY 3.0. Each
catalogue's `PluginFurnitureCatalog.properties` gives every model's name, tags, creator, size
and `modelRotation` (the 3x3 that turns the OBJ upright in Sweet Home 3D's Y-up world). Models
of a category are picked by name/id words, oriented and sized as the catalogue says, rendered
with `meshes.render_category`, and written with the packs' licences and per-object credits.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from rich.console import Console

from hypnerf_ns.data.meshes import (
    MeshObject,
    RenderOptions,
    Stretching,
    render_category,
    with_stretched_copies,
    without_listed,
)
from hypnerf_ns.data.preview import category_sheet
from hypnerf_ns.data.render import Y_UP_TO_Z_UP
from hypnerf_ns.errors import HypnerfError
from hypnerf_ns.files import atomic_output, write_text_atomic

CONSOLE = Console()
PACKAGE = "sweethome3d-furniture"
PACKS = ("BlendSwap-CC-0", "BlendSwap-CC-BY", "KatorLegaz", "Scopia")
"""Catalogues with CC0 / CC-BY models (Reallusion's holds people, not furniture)."""

CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # category: (words of which one must be in the name or id, words that exclude a model)
    "chair": (("chair", "stool", "silla"), ("wheelchair", "lounge", "sofa", "couch", "table")),
    "sofa": (("sofa", "couch"), ("table", "bed")),
    "table": (("table",), ("lamp", "chair", "tennis", "football")),
    "bed": (("bed",), ("table", "lamp", "side", "bedside", "cover")),
    "lamp": (("lamp",), ()),
}


def cache_dir() -> Path:
    """Where the downloaded package and unpacked catalogues are kept (`~/.cache/hypnerf-ns`)."""
    return Path.home() / ".cache" / "hypnerf-ns"


def fetch_package(directory: Path) -> Path:
    """The package's .deb in `directory`, downloaded with `apt-get download` if not there yet."""
    found = sorted(directory.glob(f"{PACKAGE}_*.deb"))
    if found:
        return found[-1]
    directory.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") is None:
        raise HypnerfError(f"apt-get not found: fetch Debian's {PACKAGE} .deb by hand and pass it with --deb")
    CONSOLE.print(f"downloading Debian package {PACKAGE} (about 120 MB) with apt-get download ...")
    result = subprocess.run(["apt-get", "download", PACKAGE], cwd=directory, capture_output=True, text=True)
    found = sorted(directory.glob(f"{PACKAGE}_*.deb"))
    if result.returncode != 0 or not found:
        reason = (result.stderr.strip().splitlines() or ["no .deb written"])[-1]
        raise HypnerfError(
            f"could not download {PACKAGE} ({reason}); run `apt-get update` (as root) and retry, "
            "or pass a downloaded .deb with --deb"
        )
    return found[-1]


def unpack_catalogues(deb: Path, directory: Path) -> dict[str, Path]:
    """Extract the .sh3f catalogues from the .deb (via `dpkg-deb --fsys-tarfile`): pack -> file."""
    wanted = {pack: directory / f"{pack}.sh3f" for pack in PACKS}
    if all(p.is_file() for p in wanted.values()):
        return wanted
    if shutil.which("dpkg-deb") is None:
        raise HypnerfError(f"{deb}: dpkg-deb is needed to unpack it (Debian package dpkg)")
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            for member in archive:
                name = Path(member.name).name
                if member.isfile() and name.endswith(".sh3f") and Path(name).stem in PACKS:
                    source = archive.extractfile(member)
                    assert source is not None
                    with atomic_output(directory / name) as temporary, open(temporary, "wb") as target:
                        shutil.copyfileobj(source, target)
    missing = [str(p.name) for p in wanted.values() if not p.is_file()]
    if missing:
        raise HypnerfError(f"{deb}: does not hold the catalogues {', '.join(missing)}")
    return wanted


def read_properties(text: str) -> dict[str, str]:
    """Java .properties (the catalogue format): key=value lines, # comments, \\uXXXX escapes."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), value.strip()).replace(
            "\\", ""
        )
    return values


@dataclass
class CatalogueModel:
    """One model of a catalogue."""

    pack: str
    key: str
    """Model id within the pack (the part after '#' of the catalogue id)."""
    name: str
    tags: str
    creator: str
    model: str
    """Path of the model inside the .sh3f."""
    size: tuple[float, float, float]
    """Width (x), height (y), depth (z) in centimetres: Sweet Home 3D stretches the model to it."""
    rotation: np.ndarray
    """[3, 3] modelRotation (row-major), identity if absent."""


def catalogue_models(pack: str, properties: dict[str, str]) -> Iterator[CatalogueModel]:
    """Every model a catalogue lists."""
    indices = sorted({int(k.split("#")[1]) for k in properties if k.startswith("id#")})
    for i in indices:

        def get(key: str, default: str = "", i: int = i) -> str:
            return properties.get(f"{key}#{i}", default)

        rotation = (
            np.array([float(v) for v in get("modelRotation").split()]).reshape(3, 3)
            if get("modelRotation")
            else np.eye(3)
        )
        size = (float(get("width", "1")), float(get("height", "1")), float(get("depth", "1")))
        yield CatalogueModel(
            pack,
            get("id").split("#")[-1],
            get("name"),
            get("tags"),
            get("creator"),
            get("model").lstrip("/"),
            size,
            rotation,
        )


def in_category(model: CatalogueModel, category: str) -> bool:
    """Whether a model belongs to a category, by the words of its name and id."""
    include, exclude = CATEGORIES[category]
    words = f"{model.name} {model.key}".lower()
    return any(w in words for w in include) and not any(w in words for w in exclude)


def orientation(model: CatalogueModel, bounds: np.ndarray) -> np.ndarray:
    """[3, 3] map from OBJ coordinates to ours: catalogue rotation, catalogue proportions, Z up.

    `bounds` [2, 3] is the OBJ's bounding box; Sweet Home 3D rotates the model, then stretches
    its box to the catalogue's width x height x depth, which we keep (up to a uniform scale).
    """
    corners = np.array([[x, y, z] for x in bounds[:, 0] for y in bounds[:, 1] for z in bounds[:, 2]]) @ model.rotation.T
    extent = np.maximum(corners.max(0) - corners.min(0), 1e-9)
    stretch = np.diag(np.asarray(model.size) / extent)
    return Y_UP_TO_Z_UP @ stretch @ model.rotation


@dataclass
class Furniture:
    """Render one category of Debian's sweethome3d-furniture models (CC0 / CC-BY) into a dataset."""

    output: Path
    """Category root to write."""
    category: Literal["chair", "sofa", "table", "bed", "lamp"] = "chair"
    """Which models to take, by the words of their names (see CATEGORIES)."""
    deb: Path | None = None
    """A downloaded sweethome3d-furniture .deb (default: apt-get download into the cache)."""
    limit: int | None = None
    """Render only the first N models of the category (quick looks, tests)."""
    render: RenderOptions = field(default_factory=RenderOptions)
    overwrite: bool = False
    """Re-render objects whose folder exists (otherwise they are kept: an interrupted run resumes)."""
    preview: bool = False
    """Also write a contact sheet of all objects to OUTPUT/preview.png."""
    exclude: Path | None = None
    """A category root whose objects (by id) are left out, copies and all: e.g. the held-out chairs a prior is
    evaluated on."""
    stretching: Stretching = field(default_factory=Stretching)

    def main(self) -> None:
        prepare_furniture(self)


def prepare_furniture(config: Furniture) -> list[dict[str, str]]:
    """Fetch, unpack, select, render; write licences and credits. Returns the objects.json entries."""
    import trimesh

    if config.category not in CATEGORIES:
        raise HypnerfError(f"unknown furniture category {config.category!r}; choose one of {', '.join(CATEGORIES)}")
    cache = cache_dir()
    catalogues = unpack_catalogues(config.deb if config.deb is not None else fetch_package(cache), cache)
    extracted = cache / "models"
    objects: list[MeshObject] = []
    licences: dict[str, str] = {}
    for pack, path in catalogues.items():
        with zipfile.ZipFile(path) as archive:
            properties = read_properties(archive.read("PluginFurnitureCatalog.properties").decode("latin-1"))
            licences[pack] = archive.read("LICENSE.TXT").decode("utf-8", errors="replace")
            for model in catalogue_models(pack, properties):
                if not in_category(model, config.category):
                    continue
                folder = Path(model.model).parent.as_posix() + "/"
                archive.extractall(extracted / pack, [n for n in archive.namelist() if n.startswith(folder)])
                mesh_path = extracted / pack / model.model
                bounds = trimesh.load(str(mesh_path), force="mesh", process=False).bounds
                entry = {
                    "name": model.name,
                    "creator": model.creator,
                    "license": properties.get("license", "see LICENSES"),
                    "source": f"{PACKAGE} {pack}",
                }
                objects.append(MeshObject(f"{pack.lower()}-{model.key}", mesh_path, orientation(model, bounds), entry))
    objects = without_listed(objects, config.exclude)
    if config.limit is not None:
        objects = objects[: config.limit]
    objects = with_stretched_copies(objects, config.stretching)
    CONSOLE.print(f"{len(objects)} {config.category} models in {PACKAGE}; rendering into {config.output}")
    written = render_category(objects, config.output, config.category, config.render, config.overwrite)
    for pack, text in licences.items():
        write_text_atomic(config.output / "LICENSES" / f"{pack}.txt", text)
    credits = ["# Credits", "", f"Models from Debian's `{PACKAGE}` package; licence texts in `LICENSES/`.", ""]
    credits += [f'- {e["id"]}: "{e["name"]}" by {e["creator"]}, {e["license"]} ({e["source"]})' for e in written]
    write_text_atomic(config.output / "CREDITS.md", "\n".join(credits) + "\n")
    if config.preview:
        category_sheet(config.output, config.output / "preview.png")
    return written


def prepare_default_category(root: Path) -> None:
    """Render the default chairs (Debian's sweethome3d-furniture, CC0 / CC-BY) into `root`.

    Runs when the default data is asked for and its objects.json is missing; object folders
    already rendered are kept, so an interrupted preparation resumes.
    """
    CONSOLE.print(
        f"[bold]No category at {root}: preparing the default one[/bold] (real chairs from Debian's "
        "sweethome3d-furniture, CC0 / CC-BY), once; a few minutes on a CPU. "
        "Use --data ROOT for your own category."
    )
    Furniture(output=root, category="chair").main()
