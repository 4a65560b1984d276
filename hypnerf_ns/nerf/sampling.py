"""Ray marching through per-object occupancy grids, and packed volume rendering weights.

Samples are *packed*: one flat list of samples over all rays, each with its ray index, in ray
order and front to back. Only samples inside the object's box and in occupied cells of that
object's grid are kept, so the field runs where there is something to see. nerfacc's packed
primitives are CUDA-only: on CUDA the weights come from nerfacc, elsewhere from the same
operation in plain torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hypnerf_ns.nerf.cpu_kernels import cpu_kernels

COARSE_STEPS = 4
"""Steps per interval of `march_two_level`'s first level."""


def ray_aabb(origins: Tensor, directions: Tensor, aabb: Tensor, near: float = 0.0) -> tuple[Tensor, Tensor]:
    """Entry and exit distances of rays through an axis-aligned box.

    Args:
        origins, directions: [R, 3] (directions need not be unit length).
        aabb: [2, 3] min and max corner.
        near: entry distances are at least this.

    Returns:
        t_near, t_far: [R] each; t_far <= t_near where a ray misses the box.
    """
    inv = 1.0 / torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0 = (aabb[0] - origins) * inv
    t1 = (aabb[1] - origins) * inv
    t_near = torch.minimum(t0, t1).amax(dim=-1).clamp_min(near)
    t_far = torch.maximum(t0, t1).amin(dim=-1)
    return t_near, t_far


def march(
    origins: Tensor,
    directions: Tensor,
    t_near: Tensor,
    t_far: Tensor,
    step: float,
    occupied: Tensor,
    grid_of_ray: Tensor,
    aabb: Tensor,
    jitter: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Evenly spaced samples along each ray, kept only in occupied cells of the ray's grid.

    Sample k of ray r lies at t_near[r] + (k + o_r) step for every k with that point before
    t_far[r] and in an occupied cell; o_r = 0.5, or uniform in [0, 1) with `jitter`. On the CPU
    in float32 the C++ kernel (`march_stepwise`) walks each ray step by step; elsewhere
    `march_two_level` finds the same samples with tensor operations.

    Args:
        origins, directions: [R, 3], directions of unit length; t_near, t_far: [R] from `ray_aabb`.
        step: distance between samples.
        occupied: [N, G, G, G] bool occupancy grids over `aabb` (x, y, z order).
        grid_of_ray: [R] long, which grid each ray marches through.
        aabb: [2, 3].
        jitter: shift each ray's samples by one random offset (training), else sample at fixed steps.

    Returns:
        ray_index [S] long, t_starts [S], t_ends [S]: packed samples, by ray then by distance.
    """
    if origins.shape[0] == 0 or not bool((t_far > t_near).any()):
        empty = origins.new_zeros((0,))
        return empty.long(), empty, empty
    num_rays = origins.shape[0]
    offset = (
        torch.rand(num_rays, device=origins.device) if jitter else torch.full((num_rays,), 0.5, device=origins.device)
    )
    if origins.device.type == "cpu" and origins.dtype == torch.float32 and cpu_kernels() is not None:
        ray_index, t = march_stepwise(origins, directions, t_near, t_far, offset, step, occupied, grid_of_ray, aabb)
    else:
        ray_index, t = march_two_level(origins, directions, t_near, t_far, offset, step, occupied, grid_of_ray, aabb)
    return ray_index, t - 0.5 * step, t + 0.5 * step


def march_stepwise(
    origins: Tensor,
    directions: Tensor,
    t_near: Tensor,
    t_far: Tensor,
    offset: Tensor,
    step: float,
    occupied: Tensor,
    grid_of_ray: Tensor,
    aabb: Tensor,
) -> tuple[Tensor, Tensor]:
    """`march`'s samples by the C++ kernel (cpu_kernels.py): each ray tests every step against its
    grid. Arguments as in `march`, `offset` [R] the o_r; returns ray_index [S] and sample distances t [S]."""
    kernels = cpu_kernels()
    assert kernels is not None, "march_stepwise needs the C++ kernels"
    return kernels.march_occupied(
        origins.contiguous(),
        directions.contiguous(),
        t_near.contiguous(),
        t_far.contiguous(),
        offset,
        step,
        occupied.contiguous(),
        grid_of_ray.long().contiguous(),
        aabb.float().contiguous(),
    )


def march_two_level(
    origins: Tensor,
    directions: Tensor,
    t_near: Tensor,
    t_far: Tensor,
    offset: Tensor,
    step: float,
    occupied: Tensor,
    grid_of_ray: Tensor,
    aabb: Tensor,
) -> tuple[Tensor, Tensor]:
    """`march`'s samples by tensor operations, in two levels, with the same result as testing every step.

    Intervals of about `COARSE_STEPS` steps are tested first, at their middles, against coarse
    grids (cells about that many steps wide: the grids max-pooled, then dilated by one cell, as
    an interval no longer than a cell lies within a cell of its middle), and only the steps of
    intervals that pass are tested one by one. Arguments and returns as in `march_stepwise`.
    """
    num_rays = origins.shape[0]
    resolution = occupied.shape[-1]
    extent = float((aabb[1] - aabb[0]).min())
    pool = max(1, round(resolution * COARSE_STEPS * step / extent))  # cells per coarse cell
    coarse = max(1, int(extent * pool / resolution / step))  # steps per interval, at most a coarse cell
    span = (t_far - t_near).clamp_min(0.0)
    intervals = int(torch.ceil(span.max() / (coarse * step)).item())

    def occupied_at(grids: Tensor, ray: Tensor, t: Tensor) -> Tensor:
        """Whether the points at distances t (any shape; rays `ray` broadcast alike) lie in occupied cells of
        `grids`."""
        g = grids.shape[-1]
        positions = origins[ray] + directions[ray] * t[..., None]
        cell = ((positions - aabb[0]) / (aabb[1] - aabb[0]) * g).long().clamp(0, g - 1)
        flat = (grid_of_ray[ray] * g + cell[..., 0]) * g**2 + cell[..., 1] * g + cell[..., 2]
        return grids.reshape(-1)[flat]

    pooled = (
        occupied if pool == 1 else F.max_pool3d(occupied[:, None].float(), pool, stride=pool, ceil_mode=True)[:, 0] > 0
    )
    near_occupied = dilate(pooled, 1)

    rays = torch.arange(num_rays, device=origins.device)
    middle = t_near[:, None] + (torch.arange(intervals, device=origins.device)[None, :] * coarse + 0.5 * coarse) * step
    hit = occupied_at(near_occupied, rays[:, None], middle) & (middle - 0.5 * coarse * step < t_far[:, None])
    ray_of_interval, interval = hit.nonzero(as_tuple=True)

    ray_index = ray_of_interval.repeat_interleave(coarse)
    step_index = interval.repeat_interleave(coarse) * coarse + torch.arange(coarse, device=origins.device).repeat(
        len(interval)
    )
    t = t_near[ray_index] + (step_index + offset[ray_index]) * step
    keep = (t < t_far[ray_index]) & occupied_at(occupied, ray_index, t)
    return ray_index[keep], t[keep]


def packed_weights(densities: Tensor, deltas: Tensor, ray_index: Tensor, num_rays: int) -> Tensor:
    """Volume rendering weights T_i * (1 - exp(-sigma_i delta_i)) of packed samples.

    Args:
        densities, deltas: [S] per sample; ray_index: [S] long, non-decreasing.

    Returns:
        weights: [S].
    """
    if densities.is_cuda:  # nerfacc's packed scan (CUDA kernels; never run here, no GPU)
        from nerfacc import render_weight_from_density

        return render_weight_from_density(
            torch.zeros_like(deltas), deltas, densities, ray_indices=ray_index, n_rays=num_rays
        )[0]
    optical = densities * deltas
    # Exclusive prefix sum of optical depth within each ray, from one global cumsum in float64
    # (float32 loses the small per-ray sums against the large running total).
    optical64 = optical.double()
    exclusive = torch.cumsum(optical64, dim=0) - optical64
    counts = torch.bincount(ray_index, minlength=num_rays)
    first = torch.cumsum(counts, dim=0) - counts
    within_ray = (exclusive - exclusive[first[ray_index]]).float()
    return torch.exp(-within_ray) * (1.0 - torch.exp(-optical))


class OccupancyGrids(nn.Module):
    """One coarse occupancy grid per training object, kept up to date from the generated density.

    Each grid holds a decaying maximum of the density seen in each cell. A cell is occupied
    when that value reaches `min(threshold, mean of the grid)` (so grids of still-blurry
    objects are not emptied too early), dilated by one cell to keep thin parts. Objects whose
    grid was never updated count as fully occupied.
    """

    # buffers
    aabb: Tensor  # [2, 3]
    density: Tensor  # [N, G, G, G]
    updated: Tensor  # [N] bool

    def __init__(self, num_objects: int, resolution: int, aabb: Tensor, density_threshold: float, decay: float = 0.95):
        super().__init__()
        self.resolution = resolution
        self.density_threshold = density_threshold
        self.decay = decay
        self.register_buffer("aabb", aabb.float().clone(), persistent=False)
        self.register_buffer("density", torch.zeros(num_objects, resolution, resolution, resolution))
        self.register_buffer("updated", torch.zeros(num_objects, dtype=torch.bool))
        self._occupied: Tensor | None = None

    @torch.no_grad()
    def update(self, objects: Tensor, density_fn: Callable[[Tensor], Tensor]) -> None:
        """Refresh the grids of `objects` ([K] long); density_fn maps [K, G^3, 3] points to [K, G^3]."""
        g = self.resolution
        measured = density_fn(grid_points(self.aabb, g, len(objects), jitter=True)).reshape(-1, g, g, g)
        previous = torch.where(self.updated[objects, None, None, None], self.density[objects] * self.decay, 0.0)
        self.density[objects] = torch.maximum(previous, measured)
        self.updated[objects] = True
        if self._occupied is not None:
            self._refresh(objects)

    def occupied(self) -> Tensor:
        """[N, G, G, G] bool occupancy of every object's grid.

        Derived from the densities once (after loading, or on another device), then kept up to date
        object by object in `update`: a step costs the same whatever N, and memory stays one bool
        per cell (deriving all N grids at once would take 3 float copies: 1.5 GB at 4,000 objects).
        """
        if self._occupied is None or self._occupied.device != self.density.device:
            self._occupied = torch.empty(self.density.shape, dtype=torch.bool, device=self.density.device)
            for objects in torch.arange(len(self.density), device=self.density.device).split(256):
                self._refresh(objects)
        return self._occupied

    def _refresh(self, objects: Tensor) -> None:
        """Derive the occupancy of `objects` ([K] long) from their densities (never updated: all occupied)."""
        assert self._occupied is not None
        occupied = occupancy_from_density(self.density[objects], self.density_threshold)
        occupied[~self.updated[objects]] = True
        self._occupied[objects] = occupied

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._occupied = None


def grid_points(aabb: Tensor, resolution: int, num_grids: int = 1, jitter: bool = False) -> Tensor:
    """World positions [num_grids, G^3, 3] (G = `resolution`) in every cell of G^3 grids over the box
    `aabb` [2, 3], cells in (x, y, z) index order, x slowest: the centres ([1, G^3, 3]), or with
    `jitter` one uniform random point per cell and grid."""
    axis = torch.arange(resolution, device=aabb.device, dtype=torch.float32)
    index = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(1, -1, 3)
    if jitter:
        offset = torch.rand(num_grids, resolution**3, 3, device=aabb.device)
    else:
        offset = torch.full((1, 1, 3), 0.5, device=aabb.device)
    return aabb[0] + (index + offset) / resolution * (aabb[1] - aabb[0])


def density_threshold(alpha: float, step: float) -> float:
    """The density at which one step of length `step` is `alpha` opaque: -log(1 - alpha) / step."""
    return -math.log(1.0 - alpha) / step


def occupancy_from_density(density: Tensor, threshold: float, dilation: int = 1) -> Tensor:
    """[N, G, G, G] density -> bool occupancy: at least min(threshold, grid mean), dilated by `dilation` cells.

    "At least" keeps a grid whose density is still uniform (a fresh model) fully occupied, and
    never empties a grid completely (its maximum is always at least its mean).
    """
    level = torch.clamp(density.flatten(1).mean(dim=1), max=threshold)[:, None, None, None]
    return dilate(density >= level, dilation)


def dilate(occupied: Tensor, cells: int) -> Tensor:
    """[N, G, G, G] bool -> [N, G, G, G] bool: occupied wherever a cell within `cells` along every
    axis is (a box of (2 cells + 1)^3), as three one-axis passes of or-ed shifts: on bool grids
    ~10x faster than a max-pool over the box in float."""
    for dim in (1, 2, 3):
        size = occupied.shape[dim]
        grown = occupied.clone()
        for shift in range(1, min(cells, size - 1) + 1):
            grown.narrow(dim, shift, size - shift).logical_or_(occupied.narrow(dim, 0, size - shift))
            grown.narrow(dim, 0, size - shift).logical_or_(occupied.narrow(dim, shift, size - shift))
        occupied = grown
    return occupied
