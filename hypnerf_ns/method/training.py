"""Driving nerfstudio's Trainer step by step (benchmarks and tests measure each step)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict

from nerfstudio.engine.callbacks import TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer


@dataclass
class StepResult:
    step: int
    loss: float
    metrics: Dict[str, float]
    seconds: float


def train_step(trainer: Trainer, step: int) -> StepResult:
    """One training iteration with the callbacks around it, exactly as `Trainer.train` runs it."""
    start = time.perf_counter()
    for callback in trainer.callbacks:
        callback.run_callback_at_location(step, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
    loss, _, metrics = trainer.train_iteration(step)
    for callback in trainer.callbacks:
        callback.run_callback_at_location(step, TrainingCallbackLocation.AFTER_TRAIN_ITERATION)
    return StepResult(step, float(loss.detach()), {k: float(v) for k, v in metrics.items()}, time.perf_counter() - start)
