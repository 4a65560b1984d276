"""Captions of a category's objects: what text-to-NeRF learns from.

Each object is described by attributes read from objects.json and derived from its own training
views, then phrased in several ways:

- noun: its name ("Deck chair" -> "deck chair"); words of its id that other ids do not share
  ("blendswap-cc-0-oakChair" -> "oak"); its setting from the objects.json "category" field
  ("Exterior" -> "outdoor").
- colours: the named colours covering at least 20 % of its opaque pixels (at most two).
- proportions: tall / low and wide / narrow against the category's median, and bulky / open-frame
  from how much of its bounding box it fills, all from its visual hull (the silhouettes carved
  into a voxel grid).

Phrasings come from templates; some are held out of training, so retrieval with them measures
whether text-to-NeRF understands descriptions rather than memorising strings. Captions with
only shape words train only the shape head, colour-only ones only the colour head (that is what
lets a prompt mix "a folding chair" with "red"). Captions a user writes in objects.json
(`"captions": [...]`) replace the derived ones for that object.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from matplotlib.colors import rgb_to_hsv
from PIL import Image

from hypnerf_ns.data.category import ObjectEntry, list_objects, read_json, read_object_views
from hypnerf_ns.errors import InputError

Head = Literal["both", "shape", "colour"]

SETTINGS = {"exterior": "outdoor", "office": "office", "kitchen": "kitchen", "living room": "living-room"}
"""objects.json "category" values (sweethome3d rooms) as adjectives; others are used lower-cased."""

TRAINING_TEMPLATES: dict[str, Head] = {
    "a {colour} {noun}": "both",
    "a {proportions} {colour} {noun}": "both",
    "a {colour} {setting} {noun}": "both",
    "{noun}, {colour}, {proportions}": "both",
    "a {id_words} {noun} in {colour}": "both",
    "a {setting} {id_words} {noun} that is {proportions} and {colour}": "both",
    "a {proportions} {id_words} {noun}": "shape",
    "a {setting} {noun}": "shape",
    "{colour}": "colour",
    "something {colour}": "colour",
}
HELD_OUT_TEMPLATES = [
    "a photo of a {proportions} {id_words} {noun} coloured {colour}",
    "{colour} {setting} {noun} which looks {proportions}",
    "the {id_words} {noun}: {colour}, {proportions}",
]


@dataclass
class Caption:
    text: str
    head: Head
    """Which codes it describes: both, only the shape, or only the colour."""


@dataclass
class ObjectCaptions:
    object_id: str
    attributes: dict[str, str]
    training: list[Caption]
    held_out: list[str] = field(default_factory=list)
    """Phrasings never trained on (none for user-written captions)."""


def colour_name(rgb: np.ndarray) -> np.ndarray:
    """Basic colour names [N] (str) of colours [N, 3] in [0, 1], by hue, saturation and value."""
    hsv = rgb_to_hsv(np.clip(rgb, 0.0, 1.0))
    hue, saturation, value = hsv[:, 0] * 360.0, hsv[:, 1], hsv[:, 2]
    names = np.full(len(rgb), "grey", dtype=object)
    hue_names = [
        (15, "red"),
        (45, "orange"),
        (70, "yellow"),
        (165, "green"),
        (255, "blue"),
        (290, "purple"),
        (340, "pink"),
        (361, "red"),
    ]
    low = 0.0
    for high, name in hue_names:
        names[(hue >= low) & (hue < high)] = name
        low = high
    warm = np.isin(names, ["red", "orange", "yellow"])
    names[warm & (value < 0.6) & np.isin(names, ["orange", "yellow"])] = "brown"
    names[warm & (value < 0.4)] = "brown"
    names[np.isin(names, ["orange", "yellow"]) & (saturation < 0.35) & (value >= 0.6)] = "beige"
    grey = saturation < 0.18
    names[grey] = "grey"
    names[grey & (value > 0.75)] = "white"
    names[(value < 0.18) | (grey & (value < 0.35))] = "black"
    return names


def visual_hull(
    entry: ObjectEntry, views: int = 12, size: int = 64, resolution: int = 40
) -> tuple[np.ndarray, np.ndarray]:
    """(occupied voxels [G, G, G] of the box [-0.5, 0.5]^3 (x, y, z), opaque pixel colours [P, 3])
    of one object from `views` of its training views: a voxel stays if every view that sees it
    sees it inside the silhouette (alpha > 0.5)."""
    object_views = read_object_views(entry, "train")
    chosen = (
        np.linspace(0, len(object_views.image_filenames) - 1, min(views, len(object_views.image_filenames)))
        .round()
        .astype(int)
    )
    axis = (np.arange(resolution) + 0.5) / resolution - 0.5
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    inside = np.ones(len(points), dtype=bool)
    colours = []
    scale_x, scale_y = size / object_views.width, size / object_views.height
    for k in chosen:
        with Image.open(object_views.image_filenames[k]) as image:
            rgba = (
                np.asarray(image.convert("RGBA").resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
                / 255.0
            )
        opaque = rgba[..., 3] > 0.5
        colours.append(rgba[opaque][:, :3])
        pose = object_views.camera_to_worlds[k]  # OpenGL: x right, y up, looking down -z
        local = (points - pose[:, 3]) @ pose[:, :3]
        depth = -local[:, 2]
        u = object_views.cx * scale_x + object_views.fx * scale_x * local[:, 0] / np.maximum(depth, 1e-6)
        v = object_views.cy * scale_y - object_views.fy * scale_y * local[:, 1] / np.maximum(depth, 1e-6)
        seen = (depth > 0) & (u >= 0) & (u < size) & (v >= 0) & (v < size)
        column, row = np.clip(u.astype(int), 0, size - 1), np.clip(v.astype(int), 0, size - 1)
        inside &= ~seen | opaque[row, column]
    return inside.reshape(resolution, resolution, resolution), np.concatenate(colours)


def shape_measures(hull: np.ndarray) -> dict[str, float]:
    """Height (z extent), width (larger of x and y extents), both in box units, and fill (the share
    of its bounding box the hull fills) of a visual hull."""
    if not hull.any():
        return {"height": 0.0, "width": 0.0, "fill": 0.0}
    resolution = hull.shape[0]
    extents = []
    for axis in range(3):
        present = np.flatnonzero(hull.any(axis=tuple(a for a in range(3) if a != axis)))
        extents.append((present[-1] - present[0] + 1) / resolution)
    return {"height": extents[2], "width": max(extents[0], extents[1]), "fill": float(hull.mean() / np.prod(extents))}


def proportion_words(measures: dict[str, float], medians: dict[str, float]) -> list[str]:
    """tall / low, wide / narrow and bulky / open-frame against the category's medians (15 % margins)."""
    words = []
    for key, more, less in (("height", "tall", "low"), ("width", "wide", "narrow"), ("fill", "bulky", "open-frame")):
        if measures[key] > 1.15 * medians[key]:
            words.append(more)
        elif measures[key] < 0.85 * medians[key]:
            words.append(less)
    return words


def distinctive_id_words(ids: Sequence[str]) -> dict[str, list[str]]:
    """Words of each id (split at -, _, digits and camelCase) that at most a tenth of the ids share
    (drops source prefixes such as "blendswap"), minus plain nouns like "chair"."""

    def words(object_id: str) -> list[str]:
        spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", object_id)
        return [w.lower() for w in re.split(r"[^A-Za-z]+", spaced) if len(w) > 2]

    per_id = {object_id: words(object_id) for object_id in ids}
    counts = Counter(w for ws in per_id.values() for w in set(ws))
    limit = max(1, len(ids) // 10)
    return {object_id: [w for w in dict.fromkeys(ws) if counts[w] <= limit] for object_id, ws in per_id.items()}


def phrase(template: str, attributes: dict[str, str]) -> str:
    """A template filled with attributes; empty attributes leave no double spaces or stray commas."""
    text = template.format(**attributes)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*,(\s*,)+", ",", text)
    text = re.sub(r"(^[\s,:]+|[\s,:]+$)", "", text)
    text = re.sub(r"\s+([,:])", r"\1", text)
    text = re.sub(r"\b(that is|which looks) and\b", r"\1", text)
    text = re.sub(r"\b([\w-]+)( \1\b)+", r"\1", text)  # "office office chair"
    text = re.sub(r"(\s*\b(that is|which looks|which|is|looks|and|in|coloured))+$", "", text).strip(" ,:")
    return re.sub(r"\ba ([aeiou])", r"an \1", text)


def category_captions(root: Path, objects: Sequence[str] | None = None) -> list[ObjectCaptions]:
    """Captions of the objects of a category folder (all, or the ids `objects`, in that order)."""
    entries = {entry.id: entry for entry in list_objects(root)}
    listing = read_json(root / "objects.json").get("objects", []) if (root / "objects.json").is_file() else []
    metadata = {str(item["id"]): item for item in listing if isinstance(item, dict) and "id" in item}
    chosen = list(objects) if objects is not None else list(entries)
    for object_id in chosen:
        if object_id not in entries:
            raise InputError(root, f"has no object {object_id!r}")
    hulls = {object_id: visual_hull(entries[object_id]) for object_id in entries}
    measures = {object_id: shape_measures(hull) for object_id, (hull, _) in hulls.items()}
    medians = {key: float(np.median([m[key] for m in measures.values()])) for key in ("height", "width", "fill")}
    id_words = distinctive_id_words(list(entries))
    result = []
    for object_id in chosen:
        item = metadata.get(object_id, {})
        names, counts = np.unique(colour_name(hulls[object_id][1]), return_counts=True)
        order = np.argsort(-counts)
        shares = counts[order] / max(1, counts.sum())
        colours = [str(names[order][k]) for k in range(min(2, len(order))) if shares[k] >= 0.2] or [
            str(names[order][0])
        ]
        name = str(item.get("name", entries[object_id].name)).lower()
        attributes = {
            "noun": name,
            "id_words": " ".join(w for w in id_words[object_id] if w not in name),
            "setting": SETTINGS.get(str(item.get("category", "")).lower(), str(item.get("category", "")).lower()),
            "colour": " and ".join(colours),
            "proportions": ", ".join(proportion_words(measures[object_id], medians)),
        }
        supplied = item.get("captions")
        if supplied is not None:
            if not isinstance(supplied, list) or not all(isinstance(c, str) and c.strip() for c in supplied):
                raise InputError(
                    root / "objects.json", f"captions of {object_id!r} must be a list of non-empty strings"
                )
            result.append(ObjectCaptions(object_id, attributes, [Caption(c.strip(), "both") for c in supplied]))
            continue
        training = {phrase(t, attributes): head for t, head in TRAINING_TEMPLATES.items()}
        held_out = [
            text for text in dict.fromkeys(phrase(t, attributes) for t in HELD_OUT_TEMPLATES) if text not in training
        ]
        result.append(
            ObjectCaptions(object_id, attributes, [Caption(text, head) for text, head in training.items()], held_out)
        )
    return result
