"""The image encoder: trained on the prior's own views, it maps an object's views to its codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hypnerf_ns.cli import entrypoint
from hypnerf_ns.lib.prior import load_prior, training_codes
from hypnerf_ns.lib.views import load_posed_pixels
from hypnerf_ns.tasks.encoder import FILE_NAME, encode, load_encoder

pytestmark = pytest.mark.slow

SCALE = 0.25  # the trained fixture's image scale (32 px)


@pytest.fixture
def encoder_file(trained):
    """The run's encoder.pt, trained by the CLI; removed afterwards (other tests expect a run without one)."""
    config, _, _ = trained
    config_path = config.get_base_dir() / "config.yml"
    path = config_path.parent / FILE_NAME
    entrypoint(
        [
            "encoder",
            "train",
            "--load-config",
            str(config_path),
            "--steps",
            "300",
            "--size",
            "32",
            "--width",
            "16",
            "--views-per-object",
            "30",
        ]
    )
    yield config_path, path
    path.unlink(missing_ok=True)


def test_encoder_maps_views_to_their_own_objects_codes(encoder_file, three_chairs: Path) -> None:
    config_path, path = encoder_file
    prior = load_prior(config_path)
    model = prior.model
    encoder = load_encoder(path, model.hypernetwork)
    codes = training_codes(model)
    stacked = torch.cat([codes.shape, codes.color], dim=1)
    std = stacked.std(dim=0)
    for index, object_id in enumerate(model.object_ids):
        for view in (0, 5):  # test views: never trained on
            encoded = encode(encoder, load_posed_pixels(three_chairs / object_id, "test", [view], SCALE, model.device))
            distance = (((torch.cat([encoded.shape, encoded.color], dim=1) - stacked) / std) ** 2).sum(dim=1)
            assert int(distance.argmin()) == index, (object_id, view, distance.tolist())
    report = torch.load(path, weights_only=True)["report"]
    assert report["last_loss"] < 0.5 * report["first_loss"], report


def test_invert_starts_from_the_encoder(encoder_file, three_chairs: Path, tmp_path: Path) -> None:
    config_path, _ = encoder_file
    object_id = load_prior(config_path).model.object_ids[1]
    entrypoint(
        [
            "invert",
            "--load-config",
            str(config_path),
            "--data",
            str(three_chairs / object_id),
            "--views",
            "1",
            "--steps",
            "3",
            "--output",
            str(tmp_path),
        ]
    )
    assert json.loads((tmp_path / "metrics.json").read_text())["start"] == "encoder"
