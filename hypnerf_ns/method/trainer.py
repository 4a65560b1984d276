"""nerfstudio's Trainer, adapted: the device is chosen when training starts, not when the config is imported.

nerfstudio's default device is CUDA; on a machine without one, training falls back to the CPU
with one line instead of failing. Probing CUDA here (not in `method_configs.py`) keeps the
plugin's import free of side effects: nerfstudio imports every method's config at the start of
every `ns-*` command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Type

import torch
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils.rich_utils import CONSOLE


@dataclass
class HypNeRFTrainerConfig(TrainerConfig):
    """nerfstudio's TrainerConfig with `HypNeRFTrainer` as its target."""

    _target: Type = field(default_factory=lambda: HypNeRFTrainer)


class HypNeRFTrainer(Trainer):
    """Trains on the CPU when the configured CUDA device is not there."""

    def __init__(self, config: TrainerConfig, *args: Any, **kwargs: Any) -> None:
        if config.machine.device_type == "cuda" and not torch.cuda.is_available():
            CONSOLE.print("no CUDA device: training on the CPU")
            config.machine.device_type = "cpu"
        super().__init__(config, *args, **kwargs)
