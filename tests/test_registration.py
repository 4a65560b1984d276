"""The plugin is visible to nerfstudio's CLI and picks the CPU by itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch


def test_ns_train_lists_hyp_nerf_with_description() -> None:
    ns_train = Path(sys.executable).parent / "ns-train"
    result = subprocess.run([str(ns_train), "--help"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "hyp-nerf" in result.stdout and "HyP-NeRF: a hypernetwork NeRF prior" in result.stdout


def test_default_device_follows_cuda_availability() -> None:
    from method_configs import hyp_nerf

    assert hyp_nerf.config.machine.device_type == ("cuda" if torch.cuda.is_available() else "cpu")
