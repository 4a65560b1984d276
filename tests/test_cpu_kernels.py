"""The C++ CPU kernels other than the hash encoding's (test_encoding.py): they build, and each
equals its pure-torch counterpart."""

from __future__ import annotations

import torch

from hypnerf_ns.nerf.cpu_kernels import cpu_kernels, flush_denormals


def test_kernels_build() -> None:
    assert cpu_kernels() is not None, "the CPU kernels must build on this machine (C++ compiler + ninja)"


def test_flush_denormals_reaches_every_worker_thread() -> None:
    """Denormal inputs of an op split over all of torch's threads come out as zeros after `flush_denormals`."""
    kernels = cpu_kernels()
    assert kernels is not None
    denormal = torch.ones(1 << 22, dtype=torch.int32).view(torch.float32)  # 1.4e-45 each
    kernels.set_flush_denormal_all_threads(False)
    assert bool((denormal * 1.0 > 0).all()), "without flushing, denormals survive arithmetic"
    assert flush_denormals()
    assert torch.count_nonzero(denormal * 1.0) == 0, "in every thread's share of the op"
