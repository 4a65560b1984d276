"""The Triton hash-encoding kernels against the pure-torch reference, in Triton's interpreter.

Triton decides at kernel-decoration time whether to interpret, and other tests of the same pytest
process may import triton or the kernels first, so the kernels run in a subprocess with
TRITON_INTERPRET=1 set before any triton import; values and gradients come back in a file and are
compared here with the reference's autograd.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hypnerf_ns.nerf.encoding import HashGridSpec, hash_encode_reference

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")

SPEC = HashGridSpec(num_levels=4, features=2, log2_table_size=10, base_resolution=4, max_resolution=32)

# Runs in the subprocess: argv[1] holds the inputs, argv[2] receives the kernels' results.
_RUN_KERNELS = """
import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

import torch

from hypnerf_ns.nerf.encoding import HashGridSpec
from hypnerf_ns.nerf.triton_encoding import hash_encode_triton, triton_available

inputs = torch.load(sys.argv[1])
x = inputs["x"].requires_grad_()
tables = inputs["tables"].requires_grad_()
out = hash_encode_triton(x, inputs["slot"], tables, HashGridSpec(**inputs["spec"]))
grad_x, grad_tables = torch.autograd.grad(out, (x, tables), inputs["grad_out"])
available = triton_available(torch.device("cpu"))
torch.save({"out": out.detach(), "grad_x": grad_x, "grad_tables": grad_tables, "available": available}, sys.argv[2])
"""


@pytest.fixture(scope="module")
def inputs() -> dict:
    """300 points of 3 objects, some outside [0, 1]^3 and some exactly on its faces, with tables and an output
    gradient."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(300, 3, generator=generator) * 1.2 - 0.1
    x[:10, 0] = 1.0
    x[10:20, 1] = 0.0
    x[20] = 1.0
    return {
        "x": x,
        "slot": torch.randint(0, 3, (300,), generator=generator),
        "tables": torch.randn(3, SPEC.num_levels, SPEC.table_size, SPEC.features, generator=generator),
        "grad_out": torch.randn(300, SPEC.output_dim, generator=generator),
        "spec": dataclasses.asdict(SPEC),
    }


@pytest.fixture(scope="module")
def kernel_results(inputs: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The Triton path's output [P, L * F], grad_x [P, 3] and grad_tables [B, L, T, F], run in the interpreter."""
    folder = tmp_path_factory.mktemp("triton")
    torch.save(inputs, folder / "inputs.pt")
    repo = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [sys.executable, "-c", _RUN_KERNELS, str(folder / "inputs.pt"), str(folder / "results.pt")],
        cwd=repo,
        env={**os.environ, "TRITON_INTERPRET": "1"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return torch.load(folder / "results.pt")


@pytest.fixture(scope="module")
def reference_results(inputs: dict) -> dict:
    """The same quantities from torch's autograd of `hash_encode_reference`."""
    x = inputs["x"].clone().requires_grad_()
    tables = inputs["tables"].clone().requires_grad_()
    out = hash_encode_reference(x, inputs["slot"], tables, SPEC)
    grad_x, grad_tables = torch.autograd.grad(out, (x, tables), inputs["grad_out"])
    return {"out": out.detach(), "grad_x": grad_x, "grad_tables": grad_tables}


def test_triton_is_available_in_the_interpreter(kernel_results: dict) -> None:
    assert kernel_results["available"]


def test_triton_forward_matches_reference(kernel_results: dict, reference_results: dict) -> None:
    assert kernel_results["out"].shape == (300, SPEC.output_dim)
    torch.testing.assert_close(kernel_results["out"], reference_results["out"], rtol=1e-5, atol=1e-6)


def test_triton_table_gradient_matches_reference(kernel_results: dict, reference_results: dict) -> None:
    torch.testing.assert_close(kernel_results["grad_tables"], reference_results["grad_tables"], rtol=1e-4, atol=1e-6)


def test_triton_point_gradient_matches_reference(kernel_results: dict, reference_results: dict, inputs: dict) -> None:
    grad_x = kernel_results["grad_x"]
    torch.testing.assert_close(grad_x, reference_results["grad_x"], rtol=1e-4, atol=1e-4)
    clamped = (inputs["x"] <= 0.0) | (inputs["x"] >= 1.0)  # torch's clamp passes no gradient at or beyond its bounds
    assert clamped.any() and (grad_x[clamped] == 0).all() and (grad_x[~clamped] != 0).all()


# Runs in the subprocess: one training step of the whole model on argv[1] (a category), its loss
# and gradients through the Triton path, then the same batch through the pure-torch reference.
_TRAINING_STEP = """
import os
import sys

os.environ["TRITON_INTERPRET"] = "1"
sys.path.insert(0, os.getcwd())  # tests/: conftest's small_config

from pathlib import Path

import torch
from conftest import small_config

import hypnerf_ns.nerf.field as field
import hypnerf_ns.nerf.triton_encoding as triton_encoding
from hypnerf_ns.nerf.encoding import hash_encode_reference

torch.manual_seed(0)
config = small_config(Path(sys.argv[1]), Path(sys.argv[3]), steps=1)
config.pipeline.datamanager.train_num_rays_per_batch = 64
config.pipeline.datamanager.pixel_sampler.objects_per_batch = 2
trainer = config.setup(local_rank=0, world_size=1)
trainer.setup()
model = trainer.pipeline.model
ray_bundle, batch = trainer.pipeline.datamanager.next_train(0)


def step():
    torch.manual_seed(1)  # the same samples along the rays both times
    model.zero_grad()
    outputs = model(ray_bundle)
    loss = sum(model.get_loss_dict(outputs, batch, model.get_metrics_dict(outputs, batch)).values())
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.hypernetwork.named_parameters() if p.grad is not None}
    return float(loss), grads


calls = []
kernels = triton_encoding.hash_encode_triton
triton_encoding.hash_encode_triton = lambda *args: calls.append(1) or kernels(*args)  # hash_encode dispatches here
triton_loss, triton_grads = step()
field.hash_encode = hash_encode_reference
reference_loss, reference_grads = step()
torch.save(
    {"calls": len(calls), "losses": (triton_loss, reference_loss), "grads": (triton_grads, reference_grads)},
    sys.argv[2],
)
"""


@pytest.mark.slow
def test_triton_path_runs_a_whole_training_step(two_box_chairs: Path, tmp_path: Path) -> None:
    result_path = tmp_path / "step.pt"
    done = subprocess.run(
        [sys.executable, "-c", _TRAINING_STEP, str(two_box_chairs), str(result_path), str(tmp_path / "outputs")],
        cwd=Path(__file__).parent, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = torch.load(result_path, weights_only=True)
    assert result["calls"] > 0, "the step went through the Triton kernels"
    triton_loss, reference_loss = result["losses"]
    assert torch.isfinite(torch.tensor(triton_loss)) and triton_loss == pytest.approx(reference_loss, rel=1e-4)
    triton_grads, reference_grads = result["grads"]
    assert triton_grads.keys() == reference_grads.keys() and triton_grads
    for name, grad in triton_grads.items():
        scale = reference_grads[name].abs().max().clamp_min(1e-12)
        assert (grad - reference_grads[name]).abs().max() <= 1e-3 * scale, name
