"""Category data tooling: mesh rendering, the furniture catalogue, checks, the default category."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from conftest import small_config
from PIL import Image

from hypnerf_ns.data import datamanager as datamanager_module
from hypnerf_ns.data import furniture
from hypnerf_ns.data.check import Check
from hypnerf_ns.data.dataparser import CategoryDataParserConfig
from hypnerf_ns.data.meshes import Meshes, RenderOptions, Stretching, find_meshes, with_stretched_copies
from hypnerf_ns.data.preview import category_sheet
from hypnerf_ns.data.render import load_surface, normalise
from hypnerf_ns.data.writer import write_index
from hypnerf_ns.errors import HypnerfError, InputError

pytestmark = pytest.mark.slow

SMALL = RenderOptions(resolution=32, views=(4, 1, 2), seed=1)


def write_textured_obj(folder: Path, size=(0.4, 1.0, 0.4), texture: bool = True) -> Path:
    """A Y-up box (tall along Y) whose texture is red on its left half (u < 0.5), blue on its right."""
    folder.mkdir(parents=True, exist_ok=True)
    box = trimesh.creation.box(extents=size)
    lines = ["mtllib box.mtl", "usemtl skin"]
    lines += [f"v {x} {y} {z}" for x, y, z in box.vertices]
    lines += [f"vt {0.25 if x < 0 else 0.75} {0.5 + y}" for x, y, z in box.vertices]
    lines += [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in box.faces]
    (folder / "box.obj").write_text("\n".join(lines) + "\n")
    (folder / "box.mtl").write_text("newmtl skin\nKd 0.8 0.8 0.8\n" + ("map_Kd skin.png\n" if texture else ""))
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[:, :4] = (220, 20, 20)
    image[:, 4:] = (20, 20, 220)
    Image.fromarray(image).save(folder / "skin.png")
    return folder / "box.obj"


@pytest.fixture
def mesh_folder(tmp_path: Path) -> Path:
    """Good meshes (textured OBJ in a sub-folder, coloured GLB, vertex-coloured PLY) and bad ones."""
    folder = tmp_path / "meshes"
    write_textured_obj(folder / "tall_box")
    green = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    green.visual.face_colors = (20, 200, 20, 255)
    green.export(folder / "green_ball.glb")
    cone = trimesh.creation.cone(radius=0.3, height=0.6)
    cone.visual.vertex_colors = (230, 200, 20, 255)
    cone.export(folder / "yellow_cone.ply")
    (folder / "empty.obj").write_text("# nothing here\n")
    (folder / "garbage.glb").write_bytes(b"this is not a GLB file at all")
    no_texture = write_textured_obj(folder / "no_texture")
    (no_texture.parent / "skin.png").unlink()
    return folder


def test_meshes_render_into_a_category_and_skip_bad_files(
    mesh_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "category"
    Meshes(input=mesh_folder, output=output, category="things", render=SMALL, preview=tmp_path / "sheet.png").main()
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    for bad in ("empty.obj", "garbage.glb", "skin.png"):
        assert bad in printed, f"no warning naming {bad}"
    listing = json.loads((output / "objects.json").read_text())
    assert listing["category"] == "things"
    assert [o["id"] for o in listing["objects"]] == ["green_ball", "yellow_cone", "tall_box"]

    outputs = CategoryDataParserConfig(data=output).setup().get_dataparser_outputs("train")
    assert len(outputs.image_filenames) == 3 * 4
    assert len(CategoryDataParserConfig(data=output).setup().get_dataparser_outputs("test").image_filenames) == 3 * 2

    ball = np.asarray(Image.open(output / "green_ball" / "train" / "r_0.png"))
    assert ball.shape == (32, 32, 4)
    assert ball[0, 0, 3] == 0 and ball[16, 16, 3] == 255, "transparent background, opaque object centre"
    assert (ball[..., 3] % 255).astype(bool).sum() > 0, "antialiased edges have partial alpha"
    r, g, b = ball[ball[..., 3] == 255][:, :3].mean(0)
    assert g > 2 * r and g > 2 * b, "face colour kept"
    cone = np.asarray(Image.open(output / "yellow_cone" / "train" / "r_0.png"))
    r, g, b = cone[cone[..., 3] == 255][:, :3].mean(0)
    assert r > 2 * b and g > 2 * b, "vertex colour kept"
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.size[0] >= 3 * 32


def test_rendered_views_match_their_cameras_and_stand_z_up(tmp_path: Path) -> None:
    write_textured_obj(tmp_path / "in" / "tall_box")
    output = tmp_path / "category"
    options = RenderOptions(resolution=48, views=(6, 0, 0), elevation_deg=(0.0, 0.0), seed=3)
    Meshes(input=tmp_path / "in", output=output, render=options).main()
    meta = json.loads((output / "tall_box" / "transforms_train.json").read_text())
    focal = meta["fl_x"]
    for frame in meta["frames"]:
        image = np.asarray(Image.open(output / "tall_box" / (frame["file_path"] + ".png")))
        alpha = image[..., 3] > 127
        rows, cols = np.nonzero(alpha)
        # Tall along Y in the file, so tall along Z (vertical in a horizontal view) once Z-up.
        assert rows.max() - rows.min() > 1.8 * (cols.max() - cols.min())
        # At elevation 0 the silhouette of the centred box is symmetric (vertically) about the projected origin.
        x, y, z = (np.linalg.inv(np.asarray(frame["transform_matrix"])) @ np.array([0.0, 0.0, 0.0, 1.0]))[:3]
        assert abs(meta["cy"] - focal * y / -z - (rows.min() + rows.max() + 1) / 2) <= 1.0
        assert (
            abs(meta["cx"] + focal * x / -z - (cols.min() + cols.max() + 1) / 2) <= 1.5
        )  # perspective: not exactly symmetric
        # Both halves of the texture show on its sides.
        rgb = image[alpha][:, :3].astype(int)
        assert (rgb[:, 0] > rgb[:, 2] + 50).any() and (rgb[:, 2] > rgb[:, 0] + 50).any()


def test_one_rendered_object_loads_with_nerfstudios_blender_dataparser(tmp_path: Path) -> None:
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

    write_textured_obj(tmp_path / "in" / "tall_box")
    Meshes(input=tmp_path / "in", output=tmp_path / "category", render=SMALL).main()
    outputs = BlenderDataParserConfig(data=tmp_path / "category" / "tall_box").setup().get_dataparser_outputs("train")
    assert len(outputs.image_filenames) == 4
    assert int(outputs.cameras.width[0]) == 32
    ours = json.loads((tmp_path / "category" / "tall_box" / "transforms_train.json").read_text())
    assert float(outputs.cameras.fx[0]) == pytest.approx(ours["fl_x"], rel=1e-4)


def test_interrupted_runs_resume_and_overwrite_rerenders(tmp_path: Path) -> None:
    write_textured_obj(tmp_path / "in" / "tall_box")
    output = tmp_path / "category"
    Meshes(input=tmp_path / "in", output=output, render=SMALL).main()
    marker = output / "tall_box" / "kept"
    marker.write_text("")
    Meshes(input=tmp_path / "in", output=output, render=SMALL).main()
    assert marker.exists(), "an existing object folder is kept"
    Meshes(input=tmp_path / "in", output=output, render=SMALL, overwrite=True).main()
    assert not marker.exists()


def test_meshes_reports_an_input_without_meshes(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        Meshes(input=tmp_path / "missing", output=tmp_path / "out").main()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no mesh files"):
        Meshes(input=tmp_path / "empty", output=tmp_path / "out").main()


def test_check_lists_every_bad_frame(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_textured_obj(tmp_path / "in" / "tall_box")
    output = tmp_path / "category"
    Meshes(input=tmp_path / "in", output=output, render=SMALL).main()
    Check(root=output).main()
    assert "no problems" in capsys.readouterr().out
    (output / "tall_box" / "train" / "r_1.png").unlink()
    (output / "tall_box" / "train" / "r_2.png").write_bytes(b"not a png")
    Image.new("RGB", (32, 32)).save(output / "tall_box" / "test" / "r_0.png")
    with pytest.raises(HypnerfError, match="3 problem"):
        Check(root=output).main()
    printed = " ".join(capsys.readouterr().out.split())
    for name, problem in (
        ("train/r_1.png", "image missing"),
        ("train/r_2.png", "not a readable image"),
        ("test/r_0.png", "no alpha"),
    ):
        assert f"{name}: {problem}" in printed


def test_catalogue_parsing_and_category_selection() -> None:
    text = (
        "# comment\nid#1=Pack#armchair\nname#1=Fauteuil \\u00e9l\\u00e9gant\nmodelRotation#1=1 0 0 0 0 1 0 -1 0\n"
        "width#1=50\nheight#1=100\ndepth#1=60\nmodel#1=/pack/armchair/armchair.obj\n"
    )
    text += "id#2=Pack#wheelchair\nname#2=Wheelchair\nmodel#2=/pack/w/w.obj\n"
    models = list(furniture.catalogue_models("Pack", furniture.read_properties(text)))
    assert models[0].name == "Fauteuil élégant" and models[0].key == "armchair"
    assert [furniture.in_category(m, "chair") for m in models] == [True, False]
    # The catalogue rotation (Z-up OBJ -> Y-up), then our Y-up -> Z-up, then the catalogue's proportions.
    bounds = np.array([[-1.0, -1.0, 0.0], [1.0, 1.0, 4.0]])  # the OBJ stands along its Z
    corners = np.array([[x, y, z] for x in bounds[:, 0] for y in bounds[:, 1] for z in bounds[:, 2]])
    mapped = corners @ furniture.orientation(models[0], bounds).T
    extent = mapped.max(0) - mapped.min(0)
    assert extent == pytest.approx([50.0, 60.0, 100.0]), "width x depth x height, Z up"


def test_furniture_chairs_and_the_default_category_prepared_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real Debian package (apt-get download), cut to 2 chairs at 32 px to stay quick."""
    real_prepare = furniture.prepare_furniture

    def quick(config: furniture.Furniture):
        config.limit, config.render = 2, SMALL
        return real_prepare(config)

    monkeypatch.setattr(furniture, "prepare_furniture", quick)
    default = tmp_path / "data" / "chairs"
    monkeypatch.setattr(datamanager_module, "DEFAULT_DATA", default)
    config = small_config(default, tmp_path / "run", steps=1).pipeline.datamanager
    datamanager = config.setup(
        device="cpu", test_mode="val", world_size=1, local_rank=0
    )  # what ns-train hyp-nerf builds first
    assert len(datamanager.train_dataparser_outputs.metadata["object_ids"]) == 2
    listing = json.loads((default / "objects.json").read_text())
    assert listing["category"] == "chair"
    assert all(
        o["creator"] and o["license"] and o["source"].startswith("sweethome3d-furniture") for o in listing["objects"]
    )
    assert (default / "CREDITS.md").read_text().count("\n- ") == 2
    assert any((default / "LICENSES").glob("BlendSwap-CC-0.txt"))
    category_sheet(default, tmp_path / "sheet.png")
    sheet = np.asarray(Image.open(tmp_path / "sheet.png").convert("RGB"))
    assert (sheet < 200).any(), "the chairs are visible on the sheet"


def test_stretched_copies_scale_each_axis_and_leave_out_excluded_objects(mesh_folder: Path, tmp_path: Path) -> None:
    heldout = tmp_path / "heldout"
    write_index(heldout, "things", [{"id": "yellow_cone", "name": "held out"}])
    (heldout / "yellow_cone").mkdir()
    output = tmp_path / "category"
    stretching = Stretching(copies=2, amplitude=0.4, seed=5)
    Meshes(input=mesh_folder, output=output, render=SMALL, exclude=heldout, stretching=stretching).main()
    listing = {o["id"]: o for o in json.loads((output / "objects.json").read_text())["objects"]}
    assert sorted(listing) == ["green_ball", "green_ball-s0", "green_ball-s1", "tall_box", "tall_box-s0", "tall_box-s1"]
    assert listing["tall_box-s1"]["stretched_from"] == "tall_box"

    # A copy is the mesh with each axis scaled by its factors before normalisation (largest side 1).
    ball = [obj for obj in find_meshes(mesh_folder) if obj.id == "green_ball"]
    original, *copies = with_stretched_copies(ball, stretching)
    base = normalise(load_surface(original.path), original.rotation).vertices
    base_extent = base.max(0) - base.min(0)
    for copy, entry in zip(copies, (listing["green_ball-s0"], listing["green_ball-s1"]), strict=True):
        factors = np.array(entry["stretch"])
        assert np.all(factors >= np.exp(-0.4)) and np.all(factors <= np.exp(0.4))
        vertices = normalise(load_surface(copy.path), copy.rotation).vertices
        expected = base_extent * factors / (base_extent * factors).max()
        np.testing.assert_allclose(vertices.max(0) - vertices.min(0), expected, atol=2e-3)
    assert not np.allclose(listing["green_ball-s0"]["stretch"], listing["green_ball-s1"]["stretch"]), (
        "each copy draws its own factors"
    )
