"""The plugin is visible to nerfstudio's CLI, picks the CPU by itself and has no import side effects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow


def test_ns_train_lists_hyp_nerf_with_description() -> None:
    ns_train = Path(sys.executable).parent / "ns-train"
    result = subprocess.run([str(ns_train), "--help"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "hyp-nerf" in result.stdout and "HyP-NeRF: a hypernetwork NeRF prior" in result.stdout


def test_trainer_picks_the_cpu_when_there_is_no_cuda(tmp_path: Path) -> None:
    import copy

    from hypnerf_ns.method.trainer import HypNeRFTrainer
    from method_configs import hyp_nerf

    config = copy.deepcopy(hyp_nerf.config)
    config.output_dir = tmp_path
    assert config.machine.device_type == "cuda", "nerfstudio's default; the trainer decides when training starts"
    trainer = config.setup(local_rank=0, world_size=1)
    assert isinstance(trainer, HypNeRFTrainer)
    assert trainer.device == ("cuda:0" if torch.cuda.is_available() else "cpu")


def test_importing_the_plugin_changes_no_global_state() -> None:
    """nerfstudio imports every method config at the start of every ns-* command: ours must not
    change the environment, warning filters, torch's safe globals or its random state beyond
    what the nerfstudio modules it builds on do themselves."""
    state = "(dict(os.environ), list(warnings.filters), list(s.get_safe_globals()), torch.random.get_rng_state())"
    code = (
        "import os, warnings, torch, torch.serialization as s; "
        "import nerfstudio.engine.trainer, nerfstudio.pipelines.base_pipeline, nerfstudio.models.base_model, "
        "nerfstudio.viewer.viewer_elements, "
        "nerfstudio.data.datamanagers.base_datamanager, nerfstudio.utils.eval_utils, nerfacc, torchmetrics; "
        f"before = {state}; import method_configs, hypnerf_ns.cli; after = {state}; "
        "assert before[:3] == after[:3] and torch.equal(before[3], after[3]), [before[k] == after[k] for k in range(3)]"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
