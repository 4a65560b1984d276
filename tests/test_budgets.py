"""Budgets in steps, not seconds (eval's baselines, the scale study's rows), the package's version,
and loading numpy scalars from checkpoints without a deprecation warning."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from hypnerf_ns.tasks.evaluation import optimisation_steps, scratch_steps_for

ROOT = Path(__file__).parent.parent


def benchmark(name: str):
    """benchmarks/NAME.py as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_version_is_pyprojects() -> None:
    import hypnerf_ns

    declared = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert declared is not None
    assert hypnerf_ns.__version__ == importlib.metadata.version("hypnerf-ns") == declared.group(1)


def test_numpy_scalars_load_from_checkpoints_without_a_warning() -> None:
    from hypnerf_ns.method.checkpoints import allow_numpy_scalars_in_checkpoints, numpy_multiarray

    buffer = io.BytesIO()
    torch.save({"lr": np.float64(0.01), "decay": np.float32(0.5)}, buffer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert numpy_multiarray().scalar is not None
        allow_numpy_scalars_in_checkpoints()
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=True)
    assert loaded == {"lr": 0.01, "decay": 0.5} and isinstance(loaded["lr"], np.float64)


def test_scratch_gets_as_many_steps_as_refined_unless_told() -> None:
    assert scratch_steps_for(100, 400) == 500
    assert scratch_steps_for(100, 400, 50) == 50
    assert optimisation_steps(100, 400) == {"prior": 100, "refined": 500, "scratch": 500}
    assert optimisation_steps(100, 400, 50, 300) == {
        "prior": 100,
        "refined": 500,
        "scratch": 50,
        "finetuned": 800,
        "distilled": 800,
    }


def row(**changes) -> dict:
    """A generalization-scale row of the current kind (a step budget)."""
    base = {
        "training_objects": 36,
        "real": 36,
        "procedural": 0,
        "train_steps": 12000,
        "train_cpu_minutes": 25.3,
        "views": 1,
        "mirror": True,
        "refine": "hypernetwork, coarse tables, 400 steps, lr 0.002",
        "procedural_colours": "none",
        "kl_weight": 0.0001,
        "optimisation_steps": {"prior": 100, "refined": 500, "scratch": 500},
        "mean": {"prior": {"psnr": 18.0, "ssim": 0.8, "seconds": 5.0}},
    }
    return {**base, **changes}


def test_scale_study_rows_of_time_budgets_are_kept_apart_from_step_budgets(tmp_path: Path) -> None:
    study = benchmark("generalization_scale")
    assert study.Args(procedural=tmp_path).steps > 0 and not hasattr(study.Args, "minutes")
    # older rows: a budget of CPU time, with or without the steps it bought, and no optimisation_steps
    old = {k: v for k, v in row().items() if k not in ("train_steps", "train_cpu_minutes", "optimisation_steps")}
    old_rows = [{**old, "train_minutes": 25.0}, {**old, "train_minutes": 25.0, "train_steps": 12000, "views": 3}]
    assert [study.budget_of(r) for r in old_rows] == ["25 CPU-minutes", "25 CPU-minutes"]
    assert study.budget_of(row()) == study.step_budget(12000) == "12000 steps"

    output = tmp_path / "generalization-scale.json"
    output.write_text(json.dumps({"runs": [*old_rows, row(mean={"prior": {"psnr": 1.0}})]}))
    merged = study.merged_rows(output, [row(), row(train_steps=6000)])
    assert len(merged) == 4  # the step-budget row replaced; the time-budget rows kept beside it
    assert sorted(study.budget_of(r) for r in merged) == [
        "12000 steps",
        "25 CPU-minutes",
        "25 CPU-minutes",
        "6000 steps",
    ]
    assert [r["mean"]["prior"]["psnr"] for r in merged if study.budget_of(r) == "12000 steps"] == [18.0]

    plot = tmp_path / "plot.png"
    refinement = {views: row()["refine"] for views in study.INPUT_VIEWS}
    study.plot(merged, plot, True, refinement, "none", 0.0001, 12000)
    assert plot.stat().st_size > 0


def test_train_benchmark_budgets_steps() -> None:
    train = benchmark("train")
    args = train.Args()
    assert args.steps > 0 and all(isinstance(s, int) for s in args.eval_at_steps)
    assert not hasattr(args, "minutes")


@pytest.mark.slow
def test_eval_baselines_get_step_budgets(
    trained, three_chairs: Path, unseen_chair: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scratch` fits for `--scratch-steps` steps (no time limit), and the report records every
    optimised method's steps."""
    import hypnerf_ns.tasks.evaluation as evaluation
    from hypnerf_ns.cli import entrypoint

    config, trainer, _ = trained
    root = tmp_path / "category"
    root.mkdir()
    for folder in [*(three_chairs / o for o in trainer.pipeline.model.object_ids), unseen_chair]:
        (root / folder.name).symlink_to(folder)
    calls = []

    def recording_fit(model, pixels, steps, **kwargs):
        calls.append((steps, kwargs))
        return fit_from_scratch(model, pixels, steps, **kwargs)

    fit_from_scratch = evaluation.fit_from_scratch
    monkeypatch.setattr(evaluation, "fit_from_scratch", recording_fit)
    output = tmp_path / "generalization.json"
    common = ["eval", "--load-config", str(config.get_base_dir() / "config.yml"), "--data", str(root)]
    entrypoint([*common, "--output", str(output), "--steps", "3", "--refine-steps", "5", "--scratch-steps", "7"])
    report = json.loads(output.read_text())
    assert calls == [(7, {})]
    assert report["optimisation_steps"] == {"prior": 3, "refined": 8, "scratch": 7}
    assert np.isfinite(report["mean"]["scratch"]["psnr"])

    entrypoint([*common, "--output", str(output), "--steps", "3", "--refine-steps", "5"])
    assert calls[-1] == (8, {}) and json.loads(output.read_text())["optimisation_steps"]["scratch"] == 8
