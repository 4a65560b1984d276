"""Inversion on a seconds-trained prior: codes fit views, the right object is found, latent files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from nerfstudio.cameras.cameras import Cameras
from PIL import Image

from hypnerf_ns.cli import entrypoint
from hypnerf_ns.data.render import look_at_origin
from hypnerf_ns.errors import InputError
from hypnerf_ns.lib.metrics import score_nerf
from hypnerf_ns.lib.views import load_posed_pixels, mirrored, pixels_of
from hypnerf_ns.nerf.hypernetwork import Codes
from hypnerf_ns.nerf.latent_files import FinetunedNeRF, Latent, load_codes
from hypnerf_ns.tasks.inversion import best_start, candidate_codes, invert

pytestmark = pytest.mark.slow

SCALE = 0.25  # the trained fixture's image scale (32 px)


def test_best_start_finds_the_object_of_its_own_views(shown_model, three_chairs: Path) -> None:
    model = shown_model
    for index, object_id in enumerate(model.object_ids):
        pixels = load_posed_pixels(three_chairs / object_id, "test", [0, 1], SCALE, model.device)
        start, ranking = best_start(model, pixels)
        assert ranking[0][0] == object_id, ranking
        assert torch.equal(start.shape, model.codebook.shape_mean[index : index + 1].detach())


def test_best_start_ranks_every_candidate_best_first(shown_model, three_chairs: Path) -> None:
    """The start is the first of the ranking; the ranking holds every candidate once, errors ascending,
    and leaves `exclude` last."""
    model = shown_model
    pixels = load_posed_pixels(three_chairs / model.object_ids[2], "test", [0, 1], SCALE, model.device)
    candidates, _, names = candidate_codes(model)
    start, ranking = best_start(model, pixels)
    assert sorted(name for name, _ in ranking) == sorted(names)
    errors = [error for _, error in ranking]
    assert errors == sorted(errors)
    first = names.index(ranking[0][0])
    assert torch.equal(start.shape, candidates.shape[first : first + 1])
    assert torch.equal(start.color, candidates.color[first : first + 1])
    _, excluded = best_start(model, pixels, exclude=2)
    assert excluded[-1] == (model.object_ids[2], float("inf"))


def test_inversion_from_the_mean_code_fits_the_input_views(trained, three_chairs: Path) -> None:
    _, trainer, _ = trained
    model = trainer.pipeline.model
    object_id = model.object_ids[1]
    pixels = load_posed_pixels(three_chairs / object_id, "train", [0, 5, 10], SCALE, model.device)
    candidates, _, names = candidate_codes(model)
    mean = candidates.rows(slice(-1, None))
    assert names[-1] == "mean code"
    with torch.no_grad():
        before = score_nerf(model, model.hypernetwork(mean), pixels)[0]["psnr"]
    weights = {k: v.clone() for k, v in model.hypernetwork.state_dict().items()}
    codes = invert(model, pixels, mean, steps=40, lr=0.05)
    with torch.no_grad():
        after = score_nerf(model, model.hypernetwork(codes), pixels)[0]["psnr"]
    assert after > before + 1.0, (before, after)
    for name, value in model.hypernetwork.state_dict().items():
        assert torch.equal(value, weights[name]), f"hypernetwork weight {name} moved"
    assert all(p.requires_grad for p in model.hypernetwork.parameters()), "training can go on afterwards"


def test_invert_command_writes_latent_metrics_and_renders(trained, three_chairs: Path, tmp_path: Path) -> None:
    config, trainer, _ = trained
    object_id = trainer.pipeline.model.object_ids[0]
    output = tmp_path / "inverted"
    entrypoint(
        [
            "invert",
            "--load-config",
            str(config.get_base_dir() / "config.yml"),
            "--data",
            str(three_chairs / object_id),
            "--views",
            "0",
            "3",
            "--steps",
            "5",
            "--output",
            str(output),
        ]
    )
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["views"] == [0, 3] and np.isfinite(metrics["test_psnr"]) and metrics["seconds"] > 0
    renders = sorted((output / "renders").glob("test_*.png"))
    with Image.open(renders[0]) as first:
        assert len(renders) == 8 and first.size == (32, 32)
    latent = Latent.load(output / "latent.pt")
    assert latent.source["views"] == [0, 3] and latent.name == object_id
    load_codes(output / "latent.pt", trainer.pipeline.model.hypernetwork)  # made with this prior


def test_invert_refines_into_a_nerf_file_that_fits_its_views_better(
    trained, unseen_chair: Path, tmp_path: Path
) -> None:
    """`invert --mirror --refine-steps N`: the codes, then the NeRF fitted through the hypernetwork,
    saved as a finetuned NeRF file that renders the input view (and its mirror image) better than
    the NeRF of the codes."""
    config, trainer, _ = trained
    model = trainer.pipeline.model
    output = tmp_path / "refined"
    entrypoint(
        [
            "invert",
            "--load-config",
            str(config.get_base_dir() / "config.yml"),
            "--data",
            str(unseen_chair),
            "--views",
            "0",
            "--steps",
            "20",
            "--mirror",
            "--refine-steps",
            "60",
            "--output",
            str(output),
        ]
    )
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["mirror"] and metrics["refine_steps"] == 60 and np.isfinite(metrics["test_psnr"])
    refined = FinetunedNeRF.load(output / "nerf.pt", model.hypernetwork)
    assert refined.source["mirror"] and refined.source["views"] == [0]
    inputs = load_posed_pixels(unseen_chair, "train", [0], SCALE, model.device)
    with torch.no_grad():
        generated = model.hypernetwork(load_codes(output / "latent.pt", model.hypernetwork))
    for view in (inputs, mirrored(inputs)):
        assert score_nerf(model, refined.params, view)[0]["psnr"] > score_nerf(model, generated, view)[0]["psnr"] + 0.5


def test_latent_round_trip_and_refusals(trained, tmp_path: Path) -> None:
    _, trainer, _ = trained
    model = trainer.pipeline.model
    codes = Codes(torch.randn(1, model.config.shape_code_dim), torch.randn(1, model.config.color_code_dim))
    path = tmp_path / "a.pt"
    Latent(codes, model.hypernetwork.fingerprint(), "cfg.yml", "thing", {"views": [1]}).save(path)
    loaded = Latent.load(path)
    assert torch.equal(loaded.codes.shape, codes.shape) and torch.equal(loaded.codes.color, codes.color)
    assert torch.equal(load_codes(path, model.hypernetwork).shape, codes.shape), "made with this prior"

    Latent(codes, "0123456789abcdef", "other/config.yml").save(tmp_path / "other.pt")
    with pytest.raises(InputError, match=re.escape("other.pt: made with another prior")):
        load_codes(tmp_path / "other.pt", model.hypernetwork)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match=re.escape("junk.pt: not a latent file")):
        Latent.load(tmp_path / "junk.pt")
    with pytest.raises(InputError, match="no such latent file"):
        Latent.load(tmp_path / "missing.pt")


def test_fit_from_scratch_fits_its_views(trained, three_chairs: Path) -> None:
    from hypnerf_ns.tasks.inversion import fit_from_scratch, fresh_params

    _, trainer, _ = trained
    model = trainer.pipeline.model
    pixels = load_posed_pixels(three_chairs / model.object_ids[2], "train", [0, 1], SCALE, model.device)
    before = score_nerf(model, {k: v.detach() for k, v in fresh_params(model).items()}, pixels)[0]["psnr"]
    after = score_nerf(model, fit_from_scratch(model, pixels, steps=40, lr=0.02), pixels)[0]["psnr"]
    assert after > before + 1.0, (before, after)


def test_eval_generalization_writes_the_schema(trained, three_chairs: Path, unseen_chair: Path, tmp_path: Path) -> None:
    config, trainer, _ = trained
    root = tmp_path / "category"
    root.mkdir()
    unseen = unseen_chair.name
    for folder in [*(three_chairs / o for o in trainer.pipeline.model.object_ids), unseen_chair]:
        (root / folder.name).symlink_to(folder)
    output = tmp_path / "generalization.json"
    config_path = str(config.get_base_dir() / "config.yml")
    command = ["eval", "--load-config", config_path, "--data", str(root), "--output", str(output), "--steps", "3"]
    command += ["--refine-steps", "20"]
    entrypoint(command)
    report = json.loads(output.read_text())
    assert (
        report["task"] == "generalization"
        and report["input_views"] == [0]
        and report["seconds"] > 0
        and report["refine_steps"] == 20
    )
    assert list(report["objects"]) == [unseen]
    for method in ("prior", "refined", "nearest", "mean", "scratch"):
        result = report["objects"][unseen][method]
        assert np.isfinite(result["psnr"]) and 0 < result["ssim"] <= 1
        assert report["mean"][method]["psnr"] == pytest.approx(result["psnr"])
    assert report["mirror"] is False
    entrypoint([*command, "--mirror"])
    mirrored_report = json.loads(output.read_text())
    assert mirrored_report["mirror"] is True and all(
        np.isfinite(mirrored_report["mean"][m]["psnr"]) for m in ("prior", "refined", "scratch")
    )


def test_mirrored_views_are_the_views_of_the_mirrored_camera() -> None:
    """x -> -x maps the camera at `eye` to the one at the mirrored eye with its x axis flipped;
    its image is the original flipped left-right (cx at the centre, as the data tools write)."""
    pose = torch.tensor(look_at_origin(np.array([1.2, -1.0, 0.8])), dtype=torch.float32)[:3]
    mirror_pose = torch.diag(torch.tensor([-1.0, 1.0, 1.0])) @ pose @ torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    cameras = Cameras(
        camera_to_worlds=torch.stack([pose, mirror_pose]), fx=40.0, fy=40.0, cx=16.0, cy=12.0, width=32, height=24
    )
    rgba = torch.rand(1, 24, 32, 4)
    pixels = pixels_of(cameras[0:1], rgba, torch.device("cpu"))
    seen_in_mirror = mirrored(pixels)
    mirror_camera = pixels_of(cameras[1:2], None, torch.device("cpu"))
    assert torch.allclose(seen_in_mirror.origins, mirror_camera.origins, atol=1e-5)
    assert torch.allclose(seen_in_mirror.directions, mirror_camera.directions, atol=1e-5)
    assert torch.equal(seen_in_mirror.rgba.reshape(24, 32, 4), rgba[0].flip(1))


def test_refine_improves_the_fit_and_leaves_the_prior_unchanged(trained, three_chairs: Path) -> None:
    from hypnerf_ns.tasks.inversion import refine

    _, trainer, _ = trained
    model = trainer.pipeline.model
    pixels = load_posed_pixels(three_chairs / model.object_ids[0], "train", [0, 1], SCALE, model.device)
    codes = model.codebook(torch.tensor([1]), sample=False)  # another object's codes: a poor fit to start
    with torch.no_grad():
        generated = model.hypernetwork(codes)
        before = score_nerf(model, generated, pixels)[0]["psnr"]
    prior = model.hypernetwork.fingerprint()
    table_weight = model.hypernetwork.table_head.linear.weight  # kept in refine, shared with its copy
    kept_grad = None if table_weight.grad is None else table_weight.grad.clone()
    refined = refine(model, pixels, codes, steps=100)
    after = score_nerf(model, refined, pixels)[0]["psnr"]
    assert after > before + 1.0, (before, after)
    assert model.hypernetwork.fingerprint() == prior  # a copy of the hypernetwork was fitted
    assert all(p.requires_grad for p in model.hypernetwork.parameters())  # and training can go on
    assert (table_weight.grad is None) == (kept_grad is None)  # no gradient reached the shared weight
    assert table_weight.grad is None or torch.equal(table_weight.grad, kept_grad)
    assert set(refined) == set(generated) and all(refined[k].shape == generated[k].shape for k in refined)
    # The table bias moved on the coarser half of the levels only: the finer levels changed only through
    # the codes and trunks, i.e. by the kept head weight times a change of the 128 trunk features.
    levels = model.field.grid.num_levels
    change = (refined["tables"] - generated["tables"])[0]  # [L, T, F]
    head = table_weight.detach().reshape(levels, -1, table_weight.shape[1])  # [L, T * F, hidden]

    def unexplained(level_slice: slice) -> float:
        """Share of the tables' change on those levels that no change of the trunk features explains."""
        weight, target = head[level_slice].reshape(-1, head.shape[-1]), change[level_slice].reshape(-1, 1)
        features = torch.linalg.lstsq(weight, target).solution
        return float((weight @ features - target).norm() / target.norm())

    assert unexplained(slice(levels // 2, levels)) < 1e-3  # float error
    assert unexplained(slice(0, levels // 2)) > 1e-2  # the bias moved there (0.05 on the fixture)


def test_refine_drift_weight_holds_the_nerf_near_the_prior(trained, three_chairs: Path) -> None:
    """`drift_weight` 0 lets the hypernetwork copy move freely; a large weight holds the refined NeRF
    near the prior's (the default, `REFINE_DRIFT_WEIGHT`, is a small pull between the two)."""
    from hypnerf_ns.tasks.inversion import refine

    _, trainer, _ = trained
    model = trainer.pipeline.model
    pixels = load_posed_pixels(three_chairs / model.object_ids[0], "train", [0], SCALE, model.device)
    codes = model.codebook(torch.tensor([1]), sample=False)  # another object's codes: refining must move them
    with torch.no_grad():
        generated = model.hypernetwork(codes)

    def change(drift_weight: float) -> float:
        refined = refine(model, pixels, codes, steps=40, drift_weight=drift_weight)
        return sum(float((refined[k] - generated[k]).square().sum()) for k in refined)

    free, held = change(0.0), change(1e4)
    assert held < 0.5 * free, (held, free)
