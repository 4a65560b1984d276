"""Functional multi-resolution hash encoding whose tables are data, not module state.

The hypernetwork generates one set of tables per object, so the encoding is a pure function
of (points, which object each point belongs to, tables). All objects' tables are gathered from
one flat tensor in one call: a batch may mix points of several objects without a Python loop.

Coarse levels whose grid fits in the table are indexed densely (one entry per vertex, no
collisions); finer levels use the spatial hash of Instant-NGP. Index math is int32.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

from hypnerf_ns.nerf.cpu_kernels import cpu_kernels
from hypnerf_ns.nerf.hash_grid import PRIMES, HashGridSpec

KERNEL_FEATURES = (1, 2, 4, 8)
"""Features per table entry the C++ kernel is compiled for (its HASH_ENCODING_DISPATCH); others use the reference."""


def hash_encode_reference(x: Tensor, slot: Tensor, tables: Tensor, spec: HashGridSpec) -> Tensor:
    """Encode points with the hash grid of the object each point belongs to (pure torch).

    The readable definition of the encoding, used wherever no kernel is available; the C++ and
    Triton kernels must match it.

    Args:
        x: [P, 3] points in [0, 1]^3 (points outside are clamped to the border cells).
        slot: [P] int index into the object axis of `tables`.
        tables: [B, L, T, F] one table per object and level.
        spec: the grid's shape; L, T and F must match `tables`.

    Returns:
        [P, L * F] trilinearly interpolated features, level-major.
    """
    _num_objects, num_levels, table_size, features = tables.shape
    device = x.device
    res = torch.tensor(spec.resolutions, device=device, dtype=x.dtype)  # [L]
    pos = x.clamp(0.0, 1.0)[:, None, :] * res[None, :, None]  # [P, L, 3]
    cell = pos.floor().clamp_max(res[None, :, None] - 1)
    frac = pos - cell  # [P, L, 3]
    cell = cell.to(torch.int32)

    # Per-axis index contributions for the two vertices (0 and 1) of a cell: [P, L, 3, 2].
    vertex = torch.stack((cell, cell + 1), dim=-1)
    dense = torch.tensor(spec.dense_levels, device=device)  # [L]
    stride = torch.tensor(
        [
            [1, r + 1, (r + 1) ** 2] if d else list(PRIMES)
            for r, d in zip(spec.resolutions, spec.dense_levels, strict=True)
        ],
        device=device,
        dtype=torch.int32,
    )  # [L, 3]
    part = vertex * stride[None, :, :, None]
    px, py, pz = part[:, :, 0], part[:, :, 1], part[:, :, 2]  # [P, L, 2] each
    summed = px[..., :, None, None] + py[..., None, :, None] + pz[..., None, None, :]
    hashed = px[..., :, None, None] ^ py[..., None, :, None] ^ pz[..., None, None, :]
    index = torch.where(dense[None, :, None, None, None], summed, hashed) & (table_size - 1)  # [P, L, 2, 2, 2]

    # One flat gather over all objects and levels.
    offset = (
        slot.to(torch.int32)[:, None] * num_levels + torch.arange(num_levels, device=device, dtype=torch.int32)
    ) * table_size
    index = index.reshape(index.shape[0], num_levels, 8) + offset[:, :, None]
    corner_features = torch.nn.functional.embedding(index, tables.reshape(-1, features))  # [P, L, 8, F]

    # Trilinear weights in the same (x, y, z) vertex order as the indices: [P, L, 8].
    wx = torch.stack((1 - frac[..., 0], frac[..., 0]), dim=-1)
    wy = torch.stack((1 - frac[..., 1], frac[..., 1]), dim=-1)
    wz = torch.stack((1 - frac[..., 2], frac[..., 2]), dim=-1)
    weight = (wx[..., :, None, None] * wy[..., None, :, None] * wz[..., None, None, :]).reshape(-1, num_levels, 8)
    return (corner_features * weight[..., None]).sum(dim=2).reshape(x.shape[0], num_levels * features)


class _HashEncodeCPU(torch.autograd.Function):
    """Autograd wrapper of the fused CPU kernels: gradients for the tables and, when asked, the points."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, slot: Tensor, tables: Tensor, resolutions: Tensor, dense: Tensor) -> Tensor:
        kernels = cpu_kernels()
        assert kernels is not None
        ctx.save_for_backward(x, slot, tables, resolutions, dense)
        return kernels.hash_encode_forward(x, slot, tables, resolutions, dense)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        kernels = cpu_kernels()
        assert kernels is not None
        x, slot, tables, resolutions, dense = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_tables = grad_x = None
        if ctx.needs_input_grad[2]:
            grad_tables = kernels.hash_encode_backward_tables(grad_out, x, slot, list(tables.shape), resolutions, dense)
        if ctx.needs_input_grad[0]:
            grad_x = kernels.hash_encode_backward_points(grad_out, x, slot, tables, resolutions, dense)
        return grad_x, None, grad_tables, None, None


def hash_encode(x: Tensor, slot: Tensor, tables: Tensor, spec: HashGridSpec) -> Tensor:
    """`hash_encode_reference`, run by fused kernels where they are available: float32 points on
    CUDA use the Triton kernels (triton_encoding.py) when triton is installed, on the CPU the C++
    kernel when it builds (1, 2, 4 or 8 features per entry); anything else uses the reference.
    Under Triton's interpreter (TRITON_INTERPRET=1) CPU tensors take the Triton path too: that is
    how CI runs it without a GPU.

    Shapes as in `hash_encode_reference`: x [P, 3], slot [P], tables [B, L, T, F] -> [P, L * F].
    """
    if x.dtype == torch.float32 and (x.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"):
        try:
            from hypnerf_ns.nerf.triton_encoding import hash_encode_triton
        except ImportError:  # no triton: the reference
            return hash_encode_reference(x, slot, tables, spec)
        return hash_encode_triton(x, slot, tables, spec)
    if (
        x.device.type != "cpu"
        or x.dtype != torch.float32
        or tables.shape[-1] not in KERNEL_FEATURES
        or cpu_kernels() is None
    ):
        return hash_encode_reference(x, slot, tables, spec)
    resolutions = torch.tensor(spec.resolutions, dtype=torch.int32)
    dense = torch.tensor(spec.dense_levels, dtype=torch.bool)
    return _HashEncodeCPU.apply(
        x.contiguous(), slot.to(torch.int32).contiguous(), tables.contiguous(), resolutions, dense
    )
