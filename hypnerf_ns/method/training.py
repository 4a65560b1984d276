"""Driving nerfstudio's Trainer step by step (benchmarks and tests measure each step)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from nerfstudio.engine.callbacks import TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer, TrainerConfig

if TYPE_CHECKING:
    from hypnerf_ns.data.datamanager import CategoryDataManagerConfig


@dataclass
class StepResult:
    step: int
    loss: float
    metrics: dict[str, float]
    seconds: float


def train_step(trainer: Trainer, step: int) -> StepResult:
    """One training iteration with the callbacks around it, exactly as `Trainer.train` runs it."""
    start = time.perf_counter()
    for callback in trainer.callbacks:
        callback.run_callback_at_location(step, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
    loss, _, metrics = trainer.train_iteration(step)
    for callback in trainer.callbacks:
        callback.run_callback_at_location(step, TrainingCallbackLocation.AFTER_TRAIN_ITERATION)
    return StepResult(
        step, float(loss.detach()), {k: float(v) for k, v in metrics.items()}, time.perf_counter() - start
    )


def stepped_config(
    base: TrainerConfig, data: Path, output_dir: Path, resolution_scale: float, seed: int
) -> TrainerConfig:
    """A copy of `base` for a run driven by `train_step`: trains on the category at `data` with
    images scaled by `resolution_scale`, logs to tensorboard (no viewer) under `output_dir`, is
    seeded with `seed`, and saves no periodic checkpoints (the caller saves when it chooses)."""
    config = copy.deepcopy(base)
    datamanager = cast("CategoryDataManagerConfig", config.pipeline.datamanager)  # hyp-nerf's
    datamanager.data = data
    datamanager.dataparser.data = data
    datamanager.camera_res_scale_factor = resolution_scale
    config.vis = "tensorboard"
    config.output_dir = output_dir
    config.machine.seed = seed
    config.steps_per_save = 10**9
    return config
