"""nerfstudio's Trainer, adapted: device chosen at start, checkpoints written atomically, resume
from the newest complete checkpoint.

nerfstudio's default device is CUDA; on a machine without one, training falls back to the CPU
with one line instead of failing. Probing CUDA here (not in `method_configs.py`) keeps the
plugin's import free of side effects: nerfstudio imports every method's config at the start of
every `ns-*` command. A process killed while saving (out of memory, pre-emption, Ctrl-C twice)
loses at most the last save interval (see `checkpoints`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import torch
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils.decorators import check_main_thread
from nerfstudio.utils.rich_utils import CONSOLE

from hypnerf_ns.files import save_torch_atomic
from hypnerf_ns.method.checkpoints import checkpoint_path, newest_complete_step
from hypnerf_ns.nerf.cpu_kernels import flush_denormals

SKIPPED_SHOWN = 10
"""Skipped views named in the end-of-training summary (each was named in a warning when skipped)."""


@dataclass
class HypNeRFTrainerConfig(TrainerConfig):
    """nerfstudio's TrainerConfig with `HypNeRFTrainer` as its target."""

    _target: type = field(default_factory=lambda: HypNeRFTrainer)


class HypNeRFTrainer(Trainer):
    """Trains on the CPU when the configured CUDA device is not there (denormals flushed); saves and resumes
    safely; reports the training views skipped as unreadable."""

    def __init__(self, config: TrainerConfig, *args: Any, **kwargs: Any) -> None:
        if config.machine.device_type == "cuda" and not torch.cuda.is_available():
            CONSOLE.print("no CUDA device: training on the CPU")
            config.machine.device_type = "cpu"
        super().__init__(config, *args, **kwargs)

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        """As nerfstudio's; on the CPU, denormal floats are then flushed to zero (see `flush_denormals`)."""
        super().setup(test_mode)
        if self.device == "cpu":
            flush_denormals()

    def train(self) -> None:
        """As nerfstudio's; at the end, how many training views were skipped as unreadable, and which."""
        super().train()
        skipped = getattr(self.pipeline.datamanager, "skipped_views", [])
        if skipped:
            shown = ", ".join(map(str, skipped[:SKIPPED_SHOWN])) + (", ..." if len(skipped) > SKIPPED_SHOWN else "")
            CONSOLE.print(f"skipped {len(skipped)} training view(s), unreadable or of the wrong size: {shown}")

    def _load_checkpoint(self) -> None:
        """As nerfstudio's, but `--load-dir` without `--load-step` takes the newest *complete* checkpoint."""
        if self.config.load_dir is not None and self.config.load_step is None:
            self.config.load_step = newest_complete_step(self.config.load_dir, warn=CONSOLE.print)
        super()._load_checkpoint()

    @check_main_thread
    def save_checkpoint(self, step: int) -> None:
        """As nerfstudio's, written through a temporary file in the run folder and a rename."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.base_dir.glob(".step-*.partial-*.ckpt"):  # left by a killed process
            if not stale.name.endswith(f".partial-{os.getpid()}.ckpt"):
                stale.unlink(missing_ok=True)
        path = checkpoint_path(self.checkpoint_dir, step)
        state = {
            "step": step,
            "pipeline": (  # DistributedDataParallel wraps the pipeline as `.module`
                cast(torch.nn.Module, self.pipeline.module) if hasattr(self.pipeline, "module") else self.pipeline
            ).state_dict(),
            "optimizers": {name: optimizer.state_dict() for name, optimizer in self.optimizers.optimizers.items()},
            "schedulers": {name: scheduler.state_dict() for name, scheduler in self.optimizers.schedulers.items()},
            "scalers": self.grad_scaler.state_dict(),
        }
        save_torch_atomic(state, path, staging=self.base_dir)
        if self.config.save_only_latest_checkpoint:
            for older in self.checkpoint_dir.glob("step-*.ckpt"):
                if older != path:
                    older.unlink()
