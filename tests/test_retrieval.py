"""Retrieval and the reconstruction / retrieval evaluations on a seconds-trained prior."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hypnerf_ns.cli import entrypoint
from hypnerf_ns.errors import InputError
from hypnerf_ns.lib.views import load_posed_pixels
from hypnerf_ns.tasks.retrieval import TRUNCATION, occlude, robust_errors

pytestmark = pytest.mark.slow

SCALE = 0.25  # the trained fixture's image scale (32 px)


def test_occlude_pastes_clutter_behind_and_boxes_over_the_object() -> None:
    rgba = torch.zeros(32, 32, 4)
    rgba[8:24, 8:24] = torch.tensor([1.0, 0.0, 0.0, 1.0])
    out = occlude(rgba, torch.Generator().manual_seed(0))
    assert out.shape == (32, 32, 4) and torch.all(out[..., 3] == 1.0)
    background = out[:8, :, :3].reshape(-1, 3)
    assert background.std(dim=0).max() > 0.01, "clutter varies"
    assert not torch.allclose(background, torch.ones_like(background)), "not the white background any more"
    object_pixels = out[8:24, 8:24, :3].reshape(-1, 3)
    still_red = (object_pixels == torch.tensor([1.0, 0.0, 0.0])).all(dim=1).float().mean()
    assert 0.0 < still_red < 1.0, "some of the object is covered, not all"
    assert torch.equal(out, occlude(rgba, torch.Generator().manual_seed(0))), "fixed by the generator"


def test_robust_errors_cap_each_pixel() -> None:
    query = torch.zeros(100, 3)
    close = torch.full((100, 3), 0.05)
    occluded = close.clone()
    occluded[:30] = 1.0  # an occluder: huge error on 30 pixels
    scores = robust_errors(torch.stack([close, occluded, torch.ones(100, 3)]), query)
    assert scores[0] < scores[1] < scores[2]
    assert scores[2] == pytest.approx(TRUNCATION)


def test_retrieve_command_ranks_the_queried_object_first(trained, three_chairs: Path, tmp_path: Path, capsys) -> None:
    config, trainer, _ = trained
    model = trainer.pipeline.model
    config_file = str(config.get_base_dir() / "config.yml")
    for object_id in model.object_ids:
        capsys.readouterr()
        # A training view: the fixture prior (200 steps on box chairs) is too young to tell them apart from novel views.
        entrypoint(
            [
                "retrieve",
                "--load-config",
                config_file,
                "--camera",
                str(three_chairs / object_id / "transforms_train.json"),
                "--frame",
                "2",
                "--top",
                "3",
            ]
        )
        rows = [
            line
            for line in capsys.readouterr().out.splitlines()
            if line.startswith("│") and any(o in line for o in model.object_ids)
        ]
        assert len(rows) == 3 and object_id in rows[0], rows

    # A query image given separately (here the frame's own view on a grey background, RGB only).
    object_id = model.object_ids[1]
    query = load_posed_pixels(three_chairs / object_id, "train", [2], SCALE, model.device)
    rgba = query.rgba.reshape(32, 32, 4)
    grey = (rgba[..., :3] * rgba[..., 3:] + 0.8 * (1 - rgba[..., 3:])).numpy()
    Image.fromarray((grey * 255).round().astype(np.uint8)).save(tmp_path / "photo.png")
    capsys.readouterr()
    entrypoint(
        [
            "retrieve",
            "--load-config",
            config_file,
            "--camera",
            str(three_chairs / object_id / "transforms_train.json"),
            "--frame",
            "2",
            "--image",
            str(tmp_path / "photo.png"),
        ]
    )
    rows = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("│") and any(o in line for o in model.object_ids)
    ]
    assert object_id in rows[0], rows

    with pytest.raises(InputError, match=re.escape("cameras.json: expected a transforms_<split>.json file")):
        entrypoint(["retrieve", "--load-config", config_file, "--camera", str(tmp_path / "cameras.json")])
    with pytest.raises(InputError, match=re.escape("missing.png: no such image")):
        entrypoint(
            [
                "retrieve",
                "--load-config",
                config_file,
                "--camera",
                str(three_chairs / object_id / "transforms_test.json"),
                "--image",
                str(tmp_path / "missing.png"),
            ]
        )


def test_eval_reconstruction_reports_quality_and_bytes(trained, three_chairs: Path, tmp_path: Path) -> None:
    config, trainer, _ = trained
    model = trainer.pipeline.model
    output = tmp_path / "reconstruction.json"
    entrypoint(
        [
            "eval",
            "--load-config",
            str(config.get_base_dir() / "config.yml"),
            "--data",
            str(three_chairs),
            "--task",
            "reconstruction",
            "--output",
            str(output),
        ]
    )
    report = json.loads(output.read_text())
    assert report["task"] == "reconstruction" and report["seconds"] > 0 and report["hypernetwork_bytes"] > 0
    assert sorted(report["objects"]) == sorted(model.object_ids)
    codes_bytes = 4 * (model.config.shape_code_dim + model.config.color_code_dim)
    for result in report["objects"].values():
        assert result["bytes"]["codes"] == codes_bytes and result["bytes"]["nerf"] > 100 * codes_bytes
        assert np.isfinite(result["prior"]["psnr"]) and 0 < result["prior"]["ssim"] <= 1
    # Each object's own code renders it better than the mean code does.
    assert report["mean"]["prior"]["psnr"] > report["mean"]["mean"]["psnr"], report["mean"]


def test_eval_retrieval_reports_top_k_clean_and_occluded(trained, three_chairs: Path, tmp_path: Path) -> None:
    config, trainer, _ = trained
    model = trainer.pipeline.model
    output = tmp_path / "retrieval.json"
    entrypoint(
        [
            "eval",
            "--load-config",
            str(config.get_base_dir() / "config.yml"),
            "--data",
            str(three_chairs),
            "--task",
            "retrieval",
            "--output",
            str(output),
            "--pixels",
            "512",
        ]
    )
    report = json.loads(output.read_text())
    assert report["task"] == "retrieval" and sorted(report["objects"]) == sorted(model.object_ids)
    for method in ("prior", "pixel-nn"):
        metrics = report["mean"][method]
        assert set(metrics) == {"top1_clean", "top5_clean", "top1_occluded", "top5_occluded"}
        assert all(0.0 <= value <= 1.0 for value in metrics.values())
        assert metrics["top5_clean"] == 1.0, "only three objects: always within the top five"
    # Clean test views (novel to the prior): the fixture prior finds their chair (1.0 measured, 24 queries).
    assert report["mean"]["prior"]["top1_clean"] >= 0.9, report["mean"]
