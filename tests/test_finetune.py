"""Denoise-and-finetune on the seconds-trained fixture prior: the denoiser learns, finetuning
fits its targets with the NeRF's own parameters, the NeRF file reloads, consistency is measured."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hypnerf_ns.cli import entrypoint
from hypnerf_ns.errors import InputError
from hypnerf_ns.lib.cameras import orbit_like
from hypnerf_ns.lib.metrics import score_nerf
from hypnerf_ns.lib.views import load_posed_pixels
from hypnerf_ns.nerf.latent_files import FinetunedNeRF
from hypnerf_ns.tasks.denoise import FILE_NAME as DENOISER_FILE
from hypnerf_ns.tasks.denoise import Denoiser, load_denoiser, train_denoiser, training_pairs
from hypnerf_ns.tasks.finetune import consistency, denoised_views, finetune
from hypnerf_ns.tasks.inversion import candidate_codes

pytestmark = pytest.mark.slow

SCALE = 0.25  # the trained fixture's image scale (32 px)


def mean_nerf(model):
    candidates, _, _ = candidate_codes(model)
    with torch.no_grad():
        return model.hypernetwork(candidates.rows(slice(-1, None)))


def test_denoiser_starts_as_identity_and_its_loss_falls(trained, three_chairs: Path) -> None:
    _, trainer, _ = trained
    model = trainer.pipeline.model
    objects = [(index, three_chairs / object_id) for index, object_id in enumerate(model.object_ids)]
    inputs, targets = training_pairs(
        model, objects, SCALE, inversions_per_object=1, views_per_inversion=3, steps=5, seed=0
    )
    assert inputs.shape == targets.shape == (9, 4, 32, 32)
    assert float(inputs[:, 3].mean()) > 0.02, "the inverted NeRFs render something"
    denoiser = Denoiser(width=8)
    with torch.no_grad():
        assert torch.allclose(denoiser(inputs), inputs), "an untrained denoiser passes renders through"
    log = train_denoiser(denoiser, inputs, targets, steps=150, batch_size=9, lr=3e-3)
    assert np.mean(log.losses[-10:]) < 0.8 * np.mean(log.losses[:10]), (log.losses[:10], log.losses[-10:])
    assert log.kept_step == 150 and not log.validation_psnr


def test_denoiser_pairs_leave_out_each_objects_own_code(
    trained, three_chairs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subset of the objects (as `denoiser train --max-objects` takes) is inverted with its own code excluded, not
    its position's."""
    import hypnerf_ns.tasks.denoise as denoise

    _, trainer, _ = trained
    model = trainer.pipeline.model
    excluded = []
    real_best_start = denoise.best_start

    def recording_best_start(*args, **kwargs):
        excluded.append(kwargs["exclude"])
        return real_best_start(*args, **kwargs)

    monkeypatch.setattr(denoise, "best_start", recording_best_start)
    training_pairs(
        model,
        [(2, three_chairs / model.object_ids[2])],
        SCALE,
        inversions_per_object=1,
        views_per_inversion=1,
        steps=1,
        seed=0,
    )
    assert excluded == [2]


def test_denoiser_training_keeps_the_weights_best_on_held_out_pairs() -> None:
    torch.manual_seed(0)
    inputs = torch.rand(6, 4, 16, 16)
    targets = inputs.clone()
    targets[:3, :3] = 1.0 - targets[:3, :3]  # the first three: invert the colours; the rest: the identity
    held_out = (inputs[3:], targets[3:])
    denoiser = Denoiser(width=8)
    log = train_denoiser(
        denoiser, inputs[:3], targets[:3], steps=40, batch_size=3, lr=3e-3, validation=held_out, validate_every=10
    )
    assert [step for step, _ in log.validation_psnr] == [0, 10, 20, 30, 40]
    assert log.validation_psnr[-1][1] < log.validation_psnr[0][1], (
        "learning the training pairs spoils the held-out ones"
    )
    assert log.kept_step == 0
    with torch.no_grad():
        assert torch.allclose(denoiser(held_out[0]), held_out[0]), "the identity's weights are back"


def test_finetune_fits_its_targets_with_the_nerfs_own_parameters(trained, three_chairs: Path) -> None:
    _, trainer, _ = trained
    model = trainer.pipeline.model
    targets = load_posed_pixels(three_chairs / model.object_ids[0], "train", [0, 7, 14, 21], SCALE, model.device)
    inputs = load_posed_pixels(three_chairs / model.object_ids[0], "train", [3], SCALE, model.device)
    start = mean_nerf(model)
    weights = {k: v.clone() for k, v in model.hypernetwork.state_dict().items()}
    before = score_nerf(model, start, targets)[0]["psnr"]
    tuned = finetune(model, start, targets, inputs, steps=40, lr=0.01)
    after = score_nerf(model, tuned, targets)[0]["psnr"]
    assert after > before + 1.0, (before, after)
    assert not torch.equal(tuned["tables"], start["tables"]) and not torch.equal(tuned["color_w1"], start["color_w1"])
    for name, value in model.hypernetwork.state_dict().items():
        assert torch.equal(value, weights[name]), f"hypernetwork weight {name} moved"


def test_see_through_is_higher_for_a_half_transparent_nerf(trained, three_chairs: Path) -> None:
    _, trainer, _ = trained
    model = trainer.pipeline.model
    index = torch.tensor([0], device=model.device)
    with torch.no_grad():
        solid = model.hypernetwork(model.codebook(index, sample=False))
    faded = {**solid, "density_b1": solid["density_b1"].clone()}
    faded["density_b1"][..., 0] -= 2.0  # every density x e^-2: surfaces become see-through
    test = load_posed_pixels(three_chairs / model.object_ids[0], "test", None, SCALE, model.device)
    assert 0.0 <= consistency(model, solid, test) < consistency(model, faded, test) <= 1.0


def test_denoised_views_are_orbit_renders_cleaned(trained, three_chairs: Path) -> None:
    _, trainer, _ = trained
    model = trainer.pipeline.model
    orbit = orbit_like(three_chairs / model.object_ids[0], 0, SCALE, 6)
    centres = orbit.camera_to_worlds[:, :3, 3]
    assert torch.allclose(centres.norm(dim=-1), torch.full((6,), 1.9), atol=1e-3)
    views = denoised_views(model, mean_nerf(model), Denoiser(width=8), orbit)
    assert views.size == (32, 32) and views.num_views == 6
    assert 0.02 < float(views.rgba[:, 3].mean()) < 0.9, "the object is in view, not filling it"


def test_denoiser_finetune_and_eval_commands(trained, three_chairs: Path, unseen_chair: Path, tmp_path: Path) -> None:
    config, trainer, _ = trained
    model = trainer.pipeline.model
    config_path = config.get_base_dir() / "config.yml"
    entrypoint(
        [
            "denoiser",
            "train",
            "--load-config",
            str(config_path),
            "--steps",
            "5",
            "--inversion-steps",
            "3",
            "--inversions-per-object",
            "1",
            "--views-per-inversion",
            "2",
            "--max-objects",
            "2",
        ]
    )
    denoiser = load_denoiser(config_path.parent / DENOISER_FILE, model)
    assert isinstance(denoiser, Denoiser)
    report = torch.load(config_path.parent / DENOISER_FILE, weights_only=True)["report"]
    assert report["pairs"] + report["held_out_pairs"] == 2 * 2, "2 of the 3 objects, 1 inversion x 2 views each"

    object_id = model.object_ids[1]
    output = tmp_path / "finetuned"
    entrypoint(
        [
            "finetune",
            "--load-config",
            str(config_path),
            "--object",
            object_id,
            "--views",
            "0",
            "--refine-steps",
            "10",
            "--steps",
            "20",
            "--output",
            str(output),
        ]
    )
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["object"] == object_id and metrics["views"] == [0]
    assert {"generated", "refined", "finetuned"} <= set(metrics), "refined on the input view first, then finetuned"
    assert len(sorted((output / "renders").glob("test_*.png"))) == 8
    nerf = FinetunedNeRF.load(output / "nerf.pt", model.hypernetwork)
    assert nerf.name == object_id and nerf.source["denoiser"] is True and nerf.source["refine_steps"] == 10
    test = load_posed_pixels(three_chairs / object_id, "test", None, SCALE, model.device)

    assert score_nerf(model, nerf.params, test)[0]["psnr"] == pytest.approx(metrics["finetuned"]["psnr"], abs=1e-4), (
        "the file renders what was measured"
    )

    inverted = tmp_path / "inverted"
    entrypoint(
        [
            "invert",
            "--load-config",
            str(config_path),
            "--data",
            str(three_chairs / object_id),
            "--views",
            "2",
            "--steps",
            "3",
            "--output",
            str(inverted),
        ]
    )
    entrypoint(
        [
            "finetune",
            "--load-config",
            str(config_path),
            "--latent",
            str(inverted / "latent.pt"),
            "--refine-steps",
            "0",
            "--steps",
            "5",
            "--output",
            str(tmp_path / "from-latent"),
            "--mirror",
        ]
    )
    source = FinetunedNeRF.load(tmp_path / "from-latent" / "nerf.pt", model.hypernetwork).source
    assert source["views"] == [2] and source["mirror"], "the latent's input views are used, with their mirror images"
    assert source["refine_steps"] == 0 and "refined" not in json.loads(
        (tmp_path / "from-latent" / "metrics.json").read_text()
    )

    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match=re.escape("junk.pt: not a finetuned NeRF file")):
        FinetunedNeRF.load(tmp_path / "junk.pt", model.hypernetwork)
    with pytest.raises(InputError, match="exactly one of --latent"):
        entrypoint(["finetune", "--load-config", str(config_path)])

    root = tmp_path / "category"
    root.mkdir()
    unseen = unseen_chair.name
    for folder in [*(three_chairs / o for o in model.object_ids), unseen_chair]:
        (root / folder.name).symlink_to(folder)
    report_path = tmp_path / "generalization.json"
    entrypoint(
        [
            "eval",
            "--load-config",
            str(config_path),
            "--data",
            str(root),
            "--output",
            str(report_path),
            "--steps",
            "3",
            "--refine-steps",
            "20",
            "--finetune",
            "--finetune-steps",
            "10",
        ]
    )
    result = json.loads(report_path.read_text())["objects"][unseen]
    for method in ("prior", "refined", "finetuned", "distilled"):
        assert np.isfinite(result[method]["psnr"]) and 0.0 <= result[method]["see_through"] <= 1.0


def test_the_consistency_term_makes_surfaces_solid(trained, three_chairs: Path) -> None:
    _, trainer, _ = trained
    model = trainer.pipeline.model
    start = mean_nerf(model)
    targets = load_posed_pixels(three_chairs / model.object_ids[0], "train", [0, 7, 14, 21], SCALE, model.device)
    plain = finetune(model, start, targets, None, steps=30, lr=0.01, consistency_weight=0.0)
    solid = finetune(model, start, targets, None, steps=30, lr=0.01, consistency_weight=0.1)
    assert consistency(model, solid, targets) < consistency(model, plain, targets)
