"""Seconds-long training on real dev chairs: the loss drops, renders beat a constant image,
checkpoints reload to identical renders, and `ns-train` trains, checkpoints and resumes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import STEPS
from nerfstudio.utils.eval_utils import eval_setup

from hypnerf_ns.lib.prior import object_codes
from hypnerf_ns.lib.rendering import render_pixels
from hypnerf_ns.lib.views import pixels_of
from hypnerf_ns.nerf.rendering import render_rays

pytestmark = pytest.mark.slow


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(torch.mean((a - b) ** 2)))


def test_loss_drops(trained) -> None:
    _, _, losses = trained
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)


def val_render(pipeline, index: int):
    """Val view `index` as the viewer renders it (the caller puts the model in eval mode)."""
    dataset = pipeline.datamanager.eval_dataset
    camera = dataset.cameras[index : index + 1].to(pipeline.model.device)
    with torch.no_grad():
        outputs = pipeline.model.get_outputs_for_camera(camera)
    return outputs, dataset[index]


def test_render_beats_constant_images(trained, shown_model) -> None:
    _, trainer, _ = trained
    pipeline = trainer.pipeline
    for index in (0, len(pipeline.datamanager.eval_dataset) - 1):  # first and last object
        outputs, batch = val_render(pipeline, index)
        gt = pipeline.model.renderer_rgb.blend_background(batch["image"], background_color="white")
        white, mean = torch.ones_like(gt), gt.mean(dim=(0, 1), keepdim=True).expand_as(gt)
        rendered = psnr(outputs["rgb"], gt)
        assert rendered > max(psnr(white, gt), psnr(mean, gt)) + 1.0, (rendered, psnr(white, gt), psnr(mean, gt))
        metrics, _ = pipeline.model.get_image_metrics_and_images(outputs, batch)
        assert metrics["psnr"] == pytest.approx(rendered, abs=1e-3) and 0 < metrics["ssim"] <= 1
        assert set(outputs) >= {"rgb", "accumulation", "depth", "normals"}
        assert outputs["normals"].min() >= 0 and outputs["normals"].max() <= 1


def test_checkpoint_reloads_to_identical_renders(trained, shown_model) -> None:
    config, trainer, _ = trained
    before, _ = val_render(trainer.pipeline, 1)
    _, pipeline, checkpoint, step = eval_setup(config.get_base_dir() / "config.yml", test_mode="test")
    assert step == STEPS - 1 and checkpoint.name == f"step-{STEPS - 1:09d}.ckpt"
    assert pipeline.model.object_ids == trainer.pipeline.model.object_ids
    pipeline.datamanager.eval_dataset = trainer.pipeline.datamanager.eval_dataset  # same val view
    after, _ = val_render(pipeline, 1)
    for name in ("rgb", "accumulation", "depth"):
        torch.testing.assert_close(after[name], before[name], rtol=0, atol=0)


def test_ns_train_checkpoints_and_resumes(three_chairs: Path, tmp_path: Path) -> None:
    ns_train = str(Path(sys.executable).parent / "ns-train")
    common = [
        "--data", str(three_chairs), "--vis", "tensorboard", "--output-dir", str(tmp_path),
        "--pipeline.datamanager.camera-res-scale-factor", "0.25",
        "--pipeline.datamanager.train-num-rays-per-batch", "512", "--steps-per-save", "5",
        "--timestamp", "run", "--experiment-name", "chairs",
    ]  # fmt: skip
    first = subprocess.run(
        [ns_train, "hyp-nerf", *common, "--max-num-iterations", "6"], capture_output=True, text=True, timeout=600
    )
    assert first.returncode == 0, first.stderr[-3000:]
    models = tmp_path / "chairs" / "hyp-nerf" / "run" / "nerfstudio_models"
    assert (models / "step-000000005.ckpt").is_file()
    assert list((tmp_path / "chairs" / "hyp-nerf" / "run").glob("events.out.tfevents.*")), "no tensorboard log"

    second = subprocess.run(
        [ns_train, "hyp-nerf", *common, "--max-num-iterations", "6", "--load-dir", str(models)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Done loading Nerfstudio checkpoint" in second.stdout + second.stderr
    assert (models / "step-000000011.ckpt").is_file()


def test_viewer_controls_pick_and_blend_objects(trained, shown_model) -> None:
    """Rays without an object (viewer, ns-render) show the object picked in the viewer controls."""
    _, trainer, _ = trained
    model = shown_model
    dataset = trainer.pipeline.datamanager.eval_dataset
    camera = dataset.cameras[0:1].to(model.device)
    tagged = model.get_outputs_for_camera(camera)["rgb"]  # eval view 0 belongs to object 0
    camera.metadata = None

    def viewer_render(first: str, second: str, shape_t: float, color_t: float) -> torch.Tensor:
        model.controls.viewer_object.value, model.controls.viewer_blend_object.value = first, second
        model.controls.viewer_shape_blend.value, model.controls.viewer_color_blend.value = shape_t, color_t
        return model.get_outputs_for_camera(camera)["rgb"]

    ids = model.object_ids
    first = viewer_render(ids[0], ids[0], 0.0, 0.0)
    other = viewer_render(ids[2], ids[2], 0.0, 0.0)
    assert (other - first).abs().mean() > 0.01
    # Evaluation and the viewer generate the object and its occupancy grid the same way: same image.
    torch.testing.assert_close(first, tagged, rtol=0, atol=1e-5)
    blend = viewer_render(ids[0], ids[2], 0.5, 0.5)
    assert (blend - first).abs().mean() > 0.002 and (blend - other).abs().mean() > 0.002
    assert torch.equal(viewer_render(ids[0], ids[2], 1.0, 1.0), other)


def test_viewer_image_equals_the_tools_render(trained, shown_model) -> None:
    """The viewer's image of an object (rays without an object, the controls' pick) equals what the
    tools (`hypnerf-ns render`, eval, inversion: `lib.rendering`) render of it from the same camera."""
    _, trainer, _ = trained
    model = shown_model
    camera = trainer.pipeline.datamanager.eval_dataset.cameras[3:4].to(model.device)
    camera.metadata = None
    pixels = pixels_of(camera, None, model.device)
    for object_id in model.object_ids[:2]:
        model.controls.viewer_object.value = object_id
        with torch.no_grad():
            viewer = model.get_outputs_for_camera(camera)["rgb"].reshape(-1, 3)
        tool = render_pixels(model, model.hypernetwork(object_codes(model, object_id)), pixels)
        assert float((viewer - 1.0).abs().mean()) > 0.05, "the object is in view"
        torch.testing.assert_close(viewer, tool, rtol=0, atol=1e-5)


def test_rays_through_empty_space_render_background(trained, shown_model) -> None:
    """A batch in which no sample survives the occupancy grids renders plain background."""
    _, trainer, _ = trained
    model = shown_model
    camera = trainer.pipeline.datamanager.eval_dataset.cameras[0:1].to(model.device)
    rays = camera.generate_rays(camera_indices=0).flatten()
    objects = torch.zeros(1, dtype=torch.long)
    params = model.hypernetwork(model.codebook(objects, sample=False))
    empty = torch.zeros(1, *model.occupancy.occupied().shape[1:], dtype=torch.bool)
    with torch.no_grad():
        slot = torch.zeros(len(rays), dtype=torch.long)
        outputs = render_rays(
            model.field, params, rays.origins, rays.directions, slot, empty, step_size=model.config.render_step_size
        )
    assert torch.equal(outputs["accumulation"], torch.zeros_like(outputs["accumulation"]))
    assert torch.allclose(outputs["rgb"], torch.ones_like(outputs["rgb"]))


def test_checkpoint_of_another_category_is_refused(trained) -> None:
    from hypnerf_ns.errors import HypnerfError

    _, trainer, _ = trained
    state = trainer.pipeline.model.state_dict()
    state["_extra_state"] = {"object_ids": ["some-other-chair"], "object_names": ["Other"]}
    with pytest.raises(HypnerfError, match="objects differ"):
        trainer.pipeline.model.load_state_dict(state)
