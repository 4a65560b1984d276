"""`hypnerf-ns data procedural` on two tiny Infinigen chairs: coloured renders, objects.json,
resuming, the same seed giving the same object, the dataparser and a short training run.

Runs where the `procedural` extra is installed and is skipped, saying how to install it, where not.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import small_config
from PIL import Image

from hypnerf_ns.data.meshes import RenderOptions
from hypnerf_ns.data.procedural import (
    INSTALL,
    Procedural,
    check_installed,
    check_style,
    index_entry,
    object_id,
    recolour,
)
from hypnerf_ns.errors import HypnerfError

pytestmark = pytest.mark.slow

INSTALLED = importlib.util.find_spec("bpy") is not None and importlib.util.find_spec("infinigen") is not None
needs_infinigen = pytest.mark.skipif(not INSTALLED, reason=f"Infinigen is not installed (optional extra): {INSTALL}")

SEEDS = (6, 7)  # a wooden chair and a dark wooden chair with a light seat: both coloured
TINY = RenderOptions(resolution=32, views=(6, 1, 2))


def tiny_run(output: Path, seed: int, count: int, overwrite: bool = False) -> None:
    Procedural(output=output, count=count, seed=seed, workers=1, render=TINY, overwrite=overwrite).main()


@pytest.fixture(scope="module")
def chairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("procedural") / "chairs"
    tiny_run(root, SEEDS[0], len(SEEDS))
    return root


def images(folder: Path) -> list:
    return [np.asarray(Image.open(p)) for p in sorted(folder.rglob("*.png"))]


@needs_infinigen
def test_objects_are_coloured_rgba_renders(chairs: Path) -> None:
    for seed in SEEDS:
        folder = chairs / object_id("chair", seed)
        views = images(folder)
        assert len(views) == sum(TINY.views) and all(v.shape == (32, 32, 4) for v in views)
        coverage = np.mean([(v[..., 3] > 127).mean() for v in views])
        assert 0.03 < coverage < 0.8, coverage
        pixels = np.concatenate([v[v[..., 3] > 127, :3] for v in views]).astype(float) / 255
        chroma = (pixels.max(-1) - pixels.min(-1)).mean()
        assert chroma > 0.03, f"{folder.name} looks grey (mean channel spread {chroma:.3f})"
        assert pixels.std(0).max() > 0.02, "flat colour: no shading or texture"


@needs_infinigen
def test_objects_json_credits_infinigen(chairs: Path) -> None:
    listing = json.loads((chairs / "objects.json").read_text())
    assert listing["category"] == "chair"
    assert [o["id"] for o in listing["objects"]] == [object_id("chair", s) for s in SEEDS]
    for entry, seed in zip(listing["objects"], SEEDS, strict=True):
        assert entry["seed"] == seed and entry["generator"] == "infinigen 1.15.5" and entry["frame"] == "z-up, front -y"
        assert "recoloured" in entry["colours"]
        assert entry["factory"].endswith("Factory") and entry["source"].endswith(entry["factory"])
        assert "BSD-3-Clause" in entry["license"] and "Infinigen" in entry["creator"]


@needs_infinigen
def test_chairs_face_minus_y_like_the_furniture_chairs(chairs: Path) -> None:
    """One object frame for every source: Z up, front -Y, so a chair's back is on the +Y side."""
    from hypnerf_ns.data.category import list_objects
    from hypnerf_ns.tasks.captions import visual_hull

    axis = (np.arange(40) + 0.5) / 40 - 0.5
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    for entry in list_objects(chairs):
        hull, _ = visual_hull(entry)
        top = hull & (z > np.quantile(z[hull], 0.75))  # the upper quarter: the back
        back = np.array([x[top].mean() - x[hull].mean(), y[top].mean() - y[hull].mean()])
        assert back[1] > 0.05 and abs(back[0]) < 0.03, f"{entry.id}: back offset (x, y) {back.round(3)}"


@pytest.mark.parametrize("old_key", ["frame", "colours"])
def test_a_root_made_in_an_old_style_is_not_resumed(tmp_path: Path, old_key: str) -> None:
    root = tmp_path / "chairs"
    root.mkdir()
    entry = {k: v for k, v in index_entry("chair", 0).items() if k != old_key}
    (root / "objects.json").write_text(json.dumps({"category": "chair", "objects": [entry]}))
    with pytest.raises(
        HypnerfError, match=f"objects.json: objects made by an older hypnerf-ns \\({old_key}: not recorded"
    ):
        check_style(root / "objects.json")
    (root / "objects.json").write_text(json.dumps({"category": "chair", "objects": [index_entry("chair", 0)]}))
    check_style(root / "objects.json")


def test_recolour_changes_some_materials_and_keeps_their_texture() -> None:
    """Over many seeds about half the materials get a new colour; a recoloured material keeps its
    texture as relative brightness, an untouched one keeps its colours exactly; same seed, same colours."""
    rng = np.random.default_rng(0)
    material = np.repeat(np.arange(4), 50)
    shade = rng.uniform(0.5, 1.0, (200, 3, 1))
    corner = (shade * np.array([0.4, 0.3, 0.2])).astype(np.float32)  # brown, textured
    changed = []
    for seed in range(40):
        out = recolour(corner, material, seed)
        np.testing.assert_array_equal(out, recolour(corner, material, seed))
        for m in range(4):
            mine = material == m
            moved = not np.allclose(out[mine], corner[mine], atol=1e-5)
            changed.append(moved)
            if moved:  # the texture survives: brightness ranks as before
                assert np.corrcoef(out[mine].max(-1).ravel(), corner[mine].max(-1).ravel())[0, 1] > 0.9
    assert 0.3 < np.mean(changed) < 0.7


@needs_infinigen
def test_rerun_keeps_objects_and_same_seed_gives_same_object(chairs: Path, tmp_path: Path) -> None:
    folder = chairs / object_id("chair", SEEDS[1])
    before = folder.stat().st_mtime_ns
    tiny_run(chairs, SEEDS[0], len(SEEDS))  # resumes: nothing left to make
    assert folder.stat().st_mtime_ns == before
    tiny_run(tmp_path, SEEDS[1], 1, overwrite=True)  # a fresh process makes seed 7 alone
    again, first = np.stack(images(tmp_path / folder.name)).astype(int), np.stack(images(folder)).astype(int)
    assert np.abs(again - first).max() <= 1  # the same object, up to float rounding


@needs_infinigen
def test_category_loads_and_trains(chairs: Path, tmp_path: Path) -> None:
    import torch

    from hypnerf_ns.data.dataparser import CategoryDataParserConfig
    from hypnerf_ns.method.training import train_step

    outputs = CategoryDataParserConfig(data=chairs).setup().get_dataparser_outputs(split="train")
    assert outputs.metadata["object_ids"] == [object_id("chair", s) for s in SEEDS]
    assert len(outputs.image_filenames) == len(SEEDS) * TINY.views[0]

    torch.manual_seed(0)
    steps = 40
    config = small_config(chairs, tmp_path, steps=steps, scale=1.0)  # the views are 32 px already
    config.pipeline.datamanager.pixel_sampler.objects_per_batch = len(SEEDS)
    config.pipeline.datamanager.train_num_rays_per_batch = 512
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    losses = [train_step(trainer, step).loss for step in range(steps)]
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.5 * first, (first, last)


def test_without_infinigen_one_line_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in ("bpy", "infinigen") else real_find_spec(name, *a)
    )
    with pytest.raises(HypnerfError) as caught:
        check_installed()
    assert "\n" not in str(caught.value) and 'pip install -e ".[procedural]"' in str(caught.value)
