"""Every object out: `hypnerf-ns select` configs for nerfstudio's tools, and `hypnerf-ns export mesh`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image, ImageSequence

from hypnerf_ns.cli import entrypoint
from hypnerf_ns.errors import InputError
from hypnerf_ns.lib.views import load_cameras, read_rgba
from hypnerf_ns.nerf.latent_files import FinetunedNeRF
from hypnerf_ns.tasks.mesh import silhouette_iou

pytestmark = pytest.mark.slow

SCALE = 0.25  # the trained fixture's image scale (32 px)


def ground_truth(folder: Path):
    """Test cameras and alpha masks [C, 32, 32] of an object folder."""
    cameras, files = load_cameras(folder, "test", None, SCALE)
    return cameras, torch.stack([read_rgba(file, (32, 32))[..., 3] for file in files])


def test_export_mesh_of_a_training_object(trained, three_chairs: Path, tmp_path: Path) -> None:
    config, trainer, _ = trained
    model = trainer.pipeline.model
    object_id = model.object_ids[0]
    output = tmp_path / "chair.ply"
    entrypoint(
        [
            "export",
            "mesh",
            "--load-config",
            str(config.get_base_dir() / "config.yml"),
            "--object",
            object_id,
            "--output",
            str(output),
            "--resolution",
            "64",
            "--level",
            "5",
        ]
    )
    mesh = trimesh.load(output, process=False)
    assert len(mesh.vertices) > 500 and mesh.is_watertight
    assert np.all(mesh.bounds[0] >= -0.5 - 1e-3) and np.all(mesh.bounds[1] <= 0.5 + 1e-3), mesh.bounds
    colours = mesh.visual.vertex_colors[:, :3].astype(float)
    assert colours.std(axis=0).max() > 5, "vertices are coloured, not one flat colour"
    cameras, alpha = ground_truth(three_chairs / object_id)
    others = [silhouette_iou(mesh, *ground_truth(three_chairs / other)) for other in model.object_ids[1:]]
    own = silhouette_iou(mesh, cameras, alpha)
    # The fixture prior is soft (200 steps at 32 px: a low --level); 0.87-0.93 on the real prior (README).
    assert own > 0.2 and own > 2 * max(others), (own, others)
    # The same NeRF saved as a finetuned-NeRF file exports the same mesh.
    with torch.no_grad():
        params = model.hypernetwork(model.codebook(torch.tensor([0]), sample=False))
    FinetunedNeRF(params, model.hypernetwork.fingerprint(), name=object_id).save(tmp_path / "tuned" / "nerf.pt")
    config_path = str(config.get_base_dir() / "config.yml")
    entrypoint(
        [
            "export",
            "mesh",
            "--load-config",
            config_path,
            "--finetuned",
            str(tmp_path / "tuned" / "nerf.pt"),
            "--output",
            str(tmp_path / "tuned.obj"),
            "--resolution",
            "64",
            "--level",
            "5",
        ]
    )
    assert np.allclose(trimesh.load(tmp_path / "tuned.obj", process=False).vertices, mesh.vertices, atol=1e-5)
    with pytest.raises(InputError, match="exactly one of --object"):
        entrypoint(
            ["export", "mesh", "--load-config", str(config.get_base_dir() / "config.yml"), "--output", str(output)]
        )


@pytest.fixture(scope="module")
def selections(trained, three_chairs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Derived configs (`hypnerf-ns select`) showing a training object and a latent inverted from one view."""
    config, trainer, _ = trained
    config_path = str(config.get_base_dir() / "config.yml")
    folder = tmp_path_factory.mktemp("selections")
    object_id = trainer.pipeline.model.object_ids[2]
    entrypoint(["select", "--load-config", config_path, "--object", object_id, "--output", str(folder / "object.yml")])
    entrypoint(
        [
            "invert",
            "--load-config",
            config_path,
            "--data",
            str(three_chairs / object_id),
            "--views",
            "0",
            "--steps",
            "5",
            "--output",
            str(folder / "inverted"),
        ]
    )
    entrypoint(
        [
            "select",
            "--load-config",
            config_path,
            "--latent",
            str(folder / "inverted" / "latent.pt"),
            "--output",
            str(folder / "latent.yml"),
        ]
    )
    return {"object": folder / "object.yml", "latent": folder / "latent.yml"}


BOX = 0.55  # the object box [-0.5, 0.5]^3 and a little slack


def check_surface(points: np.ndarray, colours: np.ndarray, at_least: int) -> None:
    """Enough points, nearly all in the object box, coloured (not one flat colour)."""
    assert len(points) >= at_least, len(points)
    inside = (np.abs(points) <= BOX).all(axis=1).mean()
    assert inside > 0.95, f"only {inside:.0%} of the points lie in the object box"
    assert colours.shape[0] == len(points) and colours[:, :3].astype(float).std(axis=0).max() > 0.02 * colours.max(), (
        "coloured"
    )


def check_shows_its_object(mesh: trimesh.Trimesh, shown: str, model, three_chairs: Path) -> None:
    """A mesh of the selected training object matches its test-view silhouettes better than the others'."""
    if shown != "object":  # the latent is inverted in 5 steps: no claim about its shape
        return
    own, *others = [
        silhouette_iou(mesh, *ground_truth(three_chairs / o)) for o in (model.object_ids[2], *model.object_ids[:2])
    ]
    assert own > 0.3 and own > max(others) + 0.05, (own, others)


@pytest.mark.parametrize("shown", ["object", "latent"])
def test_ns_export_pointcloud(selections: dict[str, Path], shown: str, tmp_path: Path) -> None:
    import open3d as o3d
    from nerfstudio.scripts.exporter import ExportPointCloud

    ExportPointCloud(
        load_config=selections[shown],
        output_dir=tmp_path,
        num_points=3000,
        remove_outliers=False,
        normal_method="model_output",
    ).main()
    cloud = o3d.io.read_point_cloud(str(tmp_path / "point_cloud.ply"))
    check_surface(np.asarray(cloud.points), np.asarray(cloud.colors), at_least=1000)
    assert cloud.has_normals()


@pytest.mark.parametrize("shown", ["object", "latent"])
def test_ns_export_poisson(
    selections: dict[str, Path], shown: str, trained, three_chairs: Path, tmp_path: Path
) -> None:
    from nerfstudio.scripts.exporter import ExportPoissonMesh

    # Normals from the model's output (the default); texturing by rendering a 2048^2 atlas is left to users with time.
    ExportPoissonMesh(
        load_config=selections[shown],
        output_dir=tmp_path,
        num_points=3000,
        remove_outliers=False,
        texture_method="point_cloud",
        num_rays_per_batch=4096,
    ).main()
    mesh = trimesh.load(tmp_path / "poisson_mesh.ply", process=False)
    check_surface(mesh.vertices, mesh.visual.vertex_colors, at_least=500)
    check_shows_its_object(mesh, shown, trained[1].pipeline.model, three_chairs)


@pytest.mark.parametrize("shown", ["object", "latent"])
def test_ns_export_tsdf(selections: dict[str, Path], shown: str, trained, three_chairs: Path, tmp_path: Path) -> None:
    """The real `ns-export tsdf` command, in a subprocess, with the flags the README gives."""
    import subprocess
    import sys

    command = [
        sys.executable, "-c", "from nerfstudio.scripts.exporter import entrypoint; entrypoint()", "tsdf",
        "--load-config", str(selections[shown]), "--output-dir", str(tmp_path),
        "--resolution", "48", "--downscale-factor", "4",
        "--bounding-box-min", "-0.55", "-0.55", "-0.55", "--bounding-box-max", "0.55", "0.55", "0.55",
        "--texture-method", "tsdf",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    mesh = trimesh.load(tmp_path / "tsdf_mesh.ply", process=False)
    check_surface(mesh.vertices, mesh.visual.vertex_colors, at_least=300)
    on_walls = (np.abs(mesh.vertices) > BOX - 0.02).any(axis=1).mean()
    assert on_walls < 0.1, f"{on_walls:.0%} of the vertices lie on the walls of the fusion box: space was not carved"
    check_shows_its_object(mesh, shown, trained[1].pipeline.model, three_chairs)


def test_select_refuses_an_unknown_object(trained, tmp_path: Path) -> None:
    config, _, _ = trained
    with pytest.raises(InputError, match="unknown object"):
        entrypoint(
            [
                "select",
                "--load-config",
                str(config.get_base_dir() / "config.yml"),
                "--object",
                "no-such-chair",
                "--output",
                str(tmp_path / "x.yml"),
            ]
        )
    assert not (tmp_path / "x.yml").exists()


def test_show_active_only_renders_the_selection_for_every_ray(shown_model) -> None:
    from nerfstudio.cameras.rays import RayBundle

    model = shown_model
    origins = torch.tensor([[1.9, 0.0, 0.3]]).repeat(64, 1)
    targets = torch.stack([torch.zeros(64), torch.linspace(-0.3, 0.3, 64), torch.linspace(-0.3, 0.3, 64)], dim=1)
    directions = torch.nn.functional.normalize(targets - origins, dim=-1)

    def render(object_index: int):
        bundle = RayBundle(
            origins,
            directions,
            pixel_area=torch.ones(64, 1),
            metadata={"object_index": torch.full((64, 1), object_index)},
        )
        with torch.no_grad():
            return model.get_outputs(bundle)["rgb"]

    first, second = render(0), render(1)
    assert not torch.allclose(first, second, atol=1e-3), "the two objects look different along these rays"
    model.controls.viewer_object.value = model.object_ids[1]
    model.config.show_active_only = True
    shown = render(0)
    torch.testing.assert_close(shown, second, rtol=0, atol=1e-5, msg="rays of object 0 show the active object 1")


@pytest.mark.parametrize("shown", ["object", "latent"])
def test_ns_render_interpolate_writes_a_video_of_the_selection(
    selections: dict[str, Path], shown: str, three_chairs: Path, trained, tmp_path: Path
) -> None:
    import mediapy
    from nerfstudio.scripts.render import RenderInterpolated

    video = tmp_path / "interpolate.mp4"
    RenderInterpolated(load_config=selections[shown], output_path=video, interpolation_steps=2, frame_rate=8).main()
    frames = mediapy.read_video(str(video))
    object_ids = trained[1].pipeline.model.object_ids
    test_views = sum(
        len(json.loads((three_chairs / o / "transforms_test.json").read_text())["frames"]) for o in object_ids
    )
    assert len(frames) == 2 * (test_views - 1), "2 frames from each test camera to the next"
    assert frames.shape[1:] == (32, 32, 3)
    assert frames.astype(float).std() > 5, "the object is in the frames, not a blank video"


def test_render_turntable_morph_and_sheet(trained, tmp_path: Path) -> None:
    import mediapy

    config, trainer, _ = trained
    model = trainer.pipeline.model
    config_path = str(config.get_base_dir() / "config.yml")
    first, last = model.object_ids[0], model.object_ids[2]
    common = ["--frames", "4", "--resolution", "32", "--fps", "4"]

    def render(verb: str, *choice: str, output: str) -> None:
        entrypoint(["render", verb, "--load-config", config_path, *choice, "--output", str(tmp_path / output), *common])

    render("turntable", "--object", first, output="a.mp4")
    render("turntable", "--object", last, output="b.mp4")
    render("morph", "--start", first, "--end", last, output="morph.mp4")
    a, b, morph = (mediapy.read_video(str(tmp_path / name)).astype(float) for name in ("a.mp4", "b.mp4", "morph.mp4"))
    assert a.shape == b.shape == morph.shape == (4, 32, 32, 3)
    assert np.abs(a - b).mean() > 3, "two different chairs"

    # The morph starts as the first object and ends as the last (same cameras; lossy video coding
    # adds about 2 grey levels of noise, so nearness is judged against the other object).
    def distance(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.abs(x - y).mean())

    assert distance(morph[0], a[0]) < 0.5 * distance(morph[0], b[0])
    assert distance(morph[-1], b[-1]) < 0.5 * distance(morph[-1], a[-1])

    # An animated WebP (Pillow, no ffmpeg): the same frames, looping.
    render("turntable", "--object", first, output="a.webp")
    with Image.open(tmp_path / "a.webp") as animated:
        assert animated.info.get("loop") == 0
        frames = np.stack([np.asarray(frame.convert("RGB"), dtype=float) for frame in ImageSequence.Iterator(animated)])
    assert frames.shape == (4, 32, 32, 3)
    assert distance(frames, a) < 0.2 * distance(a, b), "the turntable's frames, up to lossy coding"

    entrypoint(
        [
            "render",
            "sheet",
            "--load-config",
            config_path,
            "--samples",
            "5",
            "--columns",
            "3",
            "--resolution",
            "24",
            "--output",
            str(tmp_path / "sheet.png"),
        ]
    )
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    assert sheet.shape == (48, 72, 3)
    assert sheet[24:, 48:].min() == 255, "the sixth tile is empty (five samples)"
    assert sheet[:24, :24].min() < 200, "a sample is drawn"


def test_viewer_sample_button_and_latent_field(shown_model, tmp_path: Path) -> None:
    from hypnerf_ns.nerf.hypernetwork import Codes
    from hypnerf_ns.nerf.latent_files import Latent

    model = shown_model
    with torch.no_grad():
        objects = model.hypernetwork(model.codebook(torch.arange(len(model.object_ids)), sample=False))
        picked, _ = model._displayed()
        assert torch.allclose(picked["tables"][0], objects["tables"][0], atol=1e-5), (
            "the picked object (the first) by default"
        )

        model.controls.viewer_sample.cb_hook(
            model.controls.viewer_sample
        )  # the button's callback, as the viewer calls it
        sampled, occupied = model._displayed()
        assert occupied.shape == (1, *[model.config.occupancy_resolution] * 3)
        assert all(
            not torch.allclose(sampled["tables"][0], objects["tables"][k]) for k in range(len(model.object_ids))
        ), "a new object"
        model.controls.viewer_sample.cb_hook(model.controls.viewer_sample)
        assert not torch.equal(model._displayed()[0]["tables"], sampled["tables"]), "each press samples anew"

        codes = Codes(
            torch.randn(1, model.config.shape_code_dim) * 0.1, torch.randn(1, model.config.color_code_dim) * 0.1
        )
        Latent(codes, model.hypernetwork.fingerprint()).save(tmp_path / "latent.pt")
        model.controls.viewer_latent.value = str(tmp_path / "latent.pt")
        model.controls.viewer_latent.cb_hook(model.controls.viewer_latent)
        assert torch.allclose(model._displayed()[0]["tables"], model.hypernetwork(codes)["tables"])

        model.controls.viewer_latent.value = str(tmp_path / "missing.pt")
        model.controls.viewer_latent.cb_hook(model.controls.viewer_latent)
        assert (
            model.controls.viewer_latent.value.startswith("hypnerf-ns: ")
            and "missing.pt: no such latent file" in model.controls.viewer_latent.value
        )
        assert torch.allclose(model._displayed()[0]["tables"], model.hypernetwork(codes)["tables"]), (
            "a bad file changes nothing"
        )

        model.controls.viewer_object.cb_hook(
            model.controls.viewer_object
        )  # touching the object controls shows the objects again
        assert torch.allclose(model._displayed()[0]["tables"][0], objects["tables"][0], atol=1e-5)
