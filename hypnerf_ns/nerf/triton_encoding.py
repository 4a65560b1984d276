"""Triton kernels of the per-object multi-resolution hash encoding, for CUDA tensors.

`hash_encode_reference` (encoding.py) defines the encoding; these kernels compute it, its gradient
with respect to the tables and its gradient with respect to the points, each in one pass over the
points, without the reference's [P, L, 8, F] intermediates. tinycudann is no substitute: its
encodings own their parameters, so they cannot evaluate tables that a hypernetwork generates.

Tested only in Triton's interpreter (TRITON_INTERPRET=1, CPU tensors) against the reference; the
kernels have not yet run on a GPU. Importing this module needs triton.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

from hypnerf_ns.nerf.hash_grid import PRIMES, HashGridSpec

BLOCK_P = 128  # points per program

_PRIME_X = tl.constexpr(PRIMES[0])
_PRIME_Y = tl.constexpr(PRIMES[1])
_PRIME_Z = tl.constexpr(PRIMES[2])


def triton_available(device: torch.device) -> bool:
    """Whether `hash_encode_triton` runs on tensors of `device`: CUDA tensors, or any tensors
    (CPU ones in practice) under the interpreter (TRITON_INTERPRET=1)."""
    return device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


@triton.jit
def _load_points(x_ptr, slot_ptr, num_points, BLOCK_P: tl.constexpr):
    """This program's point indices [BLOCK_P] (int64), which of them exist, their x, y, z [BLOCK_P] and slots
    [BLOCK_P]."""
    point = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    valid = point < num_points
    x = tl.load(x_ptr + point * 3, mask=valid, other=0.0)
    y = tl.load(x_ptr + point * 3 + 1, mask=valid, other=0.0)
    z = tl.load(x_ptr + point * 3 + 2, mask=valid, other=0.0)
    slot = tl.load(slot_ptr + point, mask=valid, other=0)
    return point, valid, x, y, z, slot


@triton.jit
def _cell(coord, res):
    """Cell [BLOCK_P] (int32) and position within it (in cells) of coordinates [BLOCK_P] clamped to [0, 1], at
    `res` cells per axis."""
    pos = tl.minimum(tl.maximum(coord, 0.0), 1.0) * res.to(tl.float32)
    cell = tl.minimum(tl.floor(pos), (res - 1).to(tl.float32))
    return cell.to(tl.int32), pos - cell


@triton.jit
def _level(x, y, z, slot, res_ptr, dense_ptr, level: tl.constexpr, L: tl.constexpr, T: tl.constexpr):
    """One level's view of the points: its resolution and dense flag (scalars), each point's cell
    and position within it along x, y, z [BLOCK_P], and the first row of its table [BLOCK_P] (int64)."""
    res = tl.load(res_ptr + level)
    dense = tl.load(dense_ptr + level)
    cell_x, frac_x = _cell(x, res)
    cell_y, frac_y = _cell(y, res)
    cell_z, frac_z = _cell(z, res)
    return res, dense, cell_x, cell_y, cell_z, frac_x, frac_y, frac_z, (slot * L + level).to(tl.int64) * T


@triton.jit
def _corner(cell_x, cell_y, cell_z, frac_x, frac_y, frac_z, res, dense, k: tl.constexpr, T: tl.constexpr):
    """Vertex k = 4 dx + 2 dy + dz of each point's cell (the reference's order): its table row [BLOCK_P]
    (int32, within the level's table), trilinear weight [BLOCK_P] and the weight's derivatives [BLOCK_P]
    with respect to the position in cells along x, y and z."""
    dx: tl.constexpr = k >> 2 & 1
    dy: tl.constexpr = k >> 1 & 1
    dz: tl.constexpr = k & 1
    # Per-axis weight (1 - dx) + sx * frac, i.e. 1 - frac or frac; sx is its derivative.
    sx: tl.constexpr = 2 * dx - 1
    sy: tl.constexpr = 2 * dy - 1
    sz: tl.constexpr = 2 * dz - 1
    wx = (1 - dx) + sx * frac_x
    wy = (1 - dy) + sy * frac_y
    wz = (1 - dz) + sz * frac_z
    vx = cell_x + dx
    vy = cell_y + dy
    vz = cell_z + dz
    # int32 products wrap, as in the reference.
    summed = vx + vy * (res + 1) + vz * ((res + 1) * (res + 1))
    hashed = (vx * _PRIME_X) ^ (vy * _PRIME_Y) ^ (vz * _PRIME_Z)
    row = tl.where(dense != 0, summed, hashed) & (T - 1)
    return row, wx * wy * wz, sx * wy * wz, wx * sy * wz, wx * wy * sz


@triton.jit
def _forward_kernel(
    x_ptr,
    slot_ptr,
    tables_ptr,
    res_ptr,
    dense_ptr,
    out_ptr,
    num_points,
    L: tl.constexpr,
    T: tl.constexpr,
    F: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """out [P, L * F] from x [P, 3], slot [P], tables [B, L, T, F], res [L] and dense [L] (int32)."""
    point, valid, x, y, z, slot = _load_points(x_ptr, slot_ptr, num_points, BLOCK_P)
    feature = tl.arange(0, F)
    for level in tl.static_range(L):
        res, dense, cell_x, cell_y, cell_z, frac_x, frac_y, frac_z, table = _level(
            x, y, z, slot, res_ptr, dense_ptr, level, L, T
        )
        acc = tl.zeros((BLOCK_P, F), dtype=tl.float32)
        for k in tl.static_range(8):
            row, weight, _, _, _ = _corner(cell_x, cell_y, cell_z, frac_x, frac_y, frac_z, res, dense, k, T)
            corner_features = tl.load(
                tables_ptr + ((table + row) * F)[:, None] + feature[None, :], mask=valid[:, None], other=0.0
            )
            acc += weight[:, None] * corner_features
        tl.store(out_ptr + (point * (L * F) + level * F)[:, None] + feature[None, :], acc, mask=valid[:, None])


@triton.jit
def _backward_tables_kernel(
    grad_out_ptr,
    x_ptr,
    slot_ptr,
    res_ptr,
    dense_ptr,
    grad_tables_ptr,
    num_points,
    L: tl.constexpr,
    T: tl.constexpr,
    F: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """Adds weight * grad_out [P, L * F] into the rows of grad_tables [B, L, T, F] (zeroed by the caller) each
    point read."""
    point, valid, x, y, z, slot = _load_points(x_ptr, slot_ptr, num_points, BLOCK_P)
    feature = tl.arange(0, F)
    for level in tl.static_range(L):
        res, dense, cell_x, cell_y, cell_z, frac_x, frac_y, frac_z, table = _level(
            x, y, z, slot, res_ptr, dense_ptr, level, L, T
        )
        grad = tl.load(
            grad_out_ptr + (point * (L * F) + level * F)[:, None] + feature[None, :], mask=valid[:, None], other=0.0
        )
        for k in tl.static_range(8):
            row, weight, _, _, _ = _corner(cell_x, cell_y, cell_z, frac_x, frac_y, frac_z, res, dense, k, T)
            tl.atomic_add(
                grad_tables_ptr + ((table + row) * F)[:, None] + feature[None, :],
                weight[:, None] * grad,
                mask=valid[:, None],
            )


@triton.jit
def _backward_points_kernel(
    grad_out_ptr,
    x_ptr,
    slot_ptr,
    tables_ptr,
    res_ptr,
    dense_ptr,
    grad_x_ptr,
    num_points,
    L: tl.constexpr,
    T: tl.constexpr,
    F: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    """grad_x [P, 3] from grad_out [P, L * F]: sum over levels and vertices of (d weight / d x) * (features . grad_out).

    Zero along axes where x is clamped, including at exactly 0 and 1, as torch's autograd of the
    reference's clamp (torch passes no gradient through clamp at its bounds)."""
    point, valid, x, y, z, slot = _load_points(x_ptr, slot_ptr, num_points, BLOCK_P)
    feature = tl.arange(0, F)
    grad_x = tl.zeros((BLOCK_P,), dtype=tl.float32)
    grad_y = tl.zeros((BLOCK_P,), dtype=tl.float32)
    grad_z = tl.zeros((BLOCK_P,), dtype=tl.float32)
    for level in tl.static_range(L):
        res, dense, cell_x, cell_y, cell_z, frac_x, frac_y, frac_z, table = _level(
            x, y, z, slot, res_ptr, dense_ptr, level, L, T
        )
        grad = tl.load(
            grad_out_ptr + (point * (L * F) + level * F)[:, None] + feature[None, :], mask=valid[:, None], other=0.0
        )
        scale = res.to(tl.float32)  # d position-in-cells / d x
        for k in tl.static_range(8):
            row, _, dweight_x, dweight_y, dweight_z = _corner(
                cell_x, cell_y, cell_z, frac_x, frac_y, frac_z, res, dense, k, T
            )
            corner_features = tl.load(
                tables_ptr + ((table + row) * F)[:, None] + feature[None, :], mask=valid[:, None], other=0.0
            )
            dot = tl.sum(corner_features * grad, axis=1) * scale
            grad_x += dot * dweight_x
            grad_y += dot * dweight_y
            grad_z += dot * dweight_z
    grad_x = tl.where((x > 0.0) & (x < 1.0), grad_x, 0.0)
    grad_y = tl.where((y > 0.0) & (y < 1.0), grad_y, 0.0)
    grad_z = tl.where((z > 0.0) & (z < 1.0), grad_z, 0.0)
    tl.store(grad_x_ptr + point * 3, grad_x, mask=valid)
    tl.store(grad_x_ptr + point * 3 + 1, grad_y, mask=valid)
    tl.store(grad_x_ptr + point * 3 + 2, grad_z, mask=valid)


class HashEncodeTriton(torch.autograd.Function):
    """Autograd wrapper of the Triton kernels: gradients for the tables and, when asked, the points.

    Inputs are contiguous: x [P, 3] float32, slot [P] int32, tables [B, L, T, F] float32,
    resolutions [L] int32 and dense [L] int32 (1 for densely indexed levels), all on one device.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, slot: Tensor, tables: Tensor, resolutions: Tensor, dense: Tensor) -> Tensor:
        ctx.save_for_backward(x, slot, tables, resolutions, dense)
        _, num_levels, table_size, features = tables.shape
        out = torch.empty(x.shape[0], num_levels * features, device=x.device, dtype=torch.float32)
        grid = (triton.cdiv(x.shape[0], BLOCK_P),)
        _forward_kernel[grid](
            x, slot, tables, resolutions, dense, out, x.shape[0], num_levels, table_size, features, BLOCK_P
        )
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, slot, tables, resolutions, dense = ctx.saved_tensors
        _, num_levels, table_size, features = tables.shape
        grad_out = grad_out.float().contiguous()
        grid = (triton.cdiv(x.shape[0], BLOCK_P),)
        grad_tables = grad_x = None
        if ctx.needs_input_grad[2]:
            grad_tables = torch.zeros_like(tables)
            _backward_tables_kernel[grid](
                grad_out,
                x,
                slot,
                resolutions,
                dense,
                grad_tables,
                x.shape[0],
                num_levels,
                table_size,
                features,
                BLOCK_P,
            )
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty_like(x)
            _backward_points_kernel[grid](
                grad_out,
                x,
                slot,
                tables,
                resolutions,
                dense,
                grad_x,
                x.shape[0],
                num_levels,
                table_size,
                features,
                BLOCK_P,
            )
        return grad_x, None, grad_tables, None, None


def hash_encode_triton(x: Tensor, slot: Tensor, tables: Tensor, spec: HashGridSpec) -> Tensor:
    """`hash_encode_reference` computed by the Triton kernels, in float32.

    Args:
        x: [P, 3] points in [0, 1]^3 (points outside are clamped to the border cells).
        slot: [P] int index into the object axis of `tables`.
        tables: [B, L, T, F] one table per object and level; F must be a power of two.
        spec: the grid's shape; L, T and F must match `tables`.

    Returns:
        [P, L * F] float32 trilinearly interpolated features, level-major.
    """
    features = tables.shape[3]
    assert features & (features - 1) == 0, f"the Triton kernels need a power-of-two feature count, not {features}"
    resolutions = torch.tensor(spec.resolutions, device=x.device, dtype=torch.int32)
    dense = torch.tensor(spec.dense_levels, device=x.device, dtype=torch.int32)
    return HashEncodeTriton.apply(
        x.float().contiguous(), slot.to(torch.int32).contiguous(), tables.float().contiguous(), resolutions, dense
    )
