"""The fused CPU hash-encoding kernel against the pure-torch reference."""

from __future__ import annotations

import pytest
import torch

from hypnerf_ns.nerf.cpu_kernels import cpu_kernels
from hypnerf_ns.nerf.encoding import HashGridSpec, hash_encode, hash_encode_reference


def test_levels_grow_and_coarse_levels_are_dense() -> None:
    spec = HashGridSpec(num_levels=8, log2_table_size=12, base_resolution=8, max_resolution=128)
    assert spec.resolutions[0] == 8 and spec.resolutions[-1] == 128
    assert list(spec.resolutions) == sorted(spec.resolutions)
    assert spec.dense_levels[0] and not spec.dense_levels[-1]  # 9^3 fits in 4096 rows, 129^3 does not


@pytest.mark.parametrize(
    "spec",
    [
        HashGridSpec(),
        HashGridSpec(num_levels=3, features=4, base_resolution=4, max_resolution=64),
        HashGridSpec(num_levels=2, features=3),
    ],
)
def test_kernel_matches_reference_values_and_gradients(spec: HashGridSpec) -> None:
    assert cpu_kernels() is not None, "the CPU kernel must build on this machine (C++ compiler + ninja)"
    torch.manual_seed(0)
    tables = torch.randn(3, spec.num_levels, spec.table_size, spec.features, requires_grad=True)
    x = torch.rand(5000, 3) * 1.2 - 0.1  # some points outside [0, 1]: clamped, so no gradient along that axis
    x[:100] = torch.tensor([0.0, 1.0, 0.5])  # exactly on the bounds, where torch's clamp passes no gradient either
    x.requires_grad_(True)
    slot = torch.randint(0, 3, (5000,))
    grad_out = torch.randn(5000, spec.output_dim)

    fast = hash_encode(x, slot, tables, spec)
    fast_gx, fast_gt = torch.autograd.grad(fast, (x, tables), grad_out)
    ref = hash_encode_reference(x, slot, tables, spec)
    ref_gx, ref_gt = torch.autograd.grad(ref, (x, tables), grad_out)

    assert fast.shape == (5000, spec.output_dim)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast_gt, ref_gt, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast_gx, ref_gx, rtol=1e-3, atol=1e-2)


def test_each_point_reads_only_its_own_objects_table() -> None:
    spec = HashGridSpec(num_levels=2, base_resolution=4, max_resolution=8)
    tables = torch.zeros(2, spec.num_levels, spec.table_size, spec.features)
    tables[1] = 1.0
    x = torch.rand(100, 3)
    slot = torch.tensor([0, 1] * 50)
    out = hash_encode(x, slot, tables, spec)
    torch.testing.assert_close(out[0::2], torch.zeros(50, spec.output_dim))
    torch.testing.assert_close(out[1::2], torch.ones(50, spec.output_dim))
