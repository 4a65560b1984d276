"""`nerf.rendering.render_rays` against a hand-written dense renderer, and independent of ray order.

The reference evaluates the field at every step of every ray (no occupancy grid, no packing)
and composites in float64 with explicit transmittance products:
w_k = prod_{j<k} exp(-sigma_j delta) (1 - exp(-sigma_k delta)).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hypnerf_ns.nerf.field import HyperField
from hypnerf_ns.nerf.hash_grid import HashGridSpec
from hypnerf_ns.nerf.hypernetwork import NeRFParams
from hypnerf_ns.nerf.rendering import render_rays
from hypnerf_ns.nerf.sampling import ray_aabb

STEP = 1.0 / 64


def random_nerfs(field: HyperField, count: int, seed: int = 0) -> NeRFParams:
    """`count` NeRFs with random tables (visible, distinct density) and He-initialised MLPs."""
    generator = torch.Generator().manual_seed(seed)
    nerfs = []
    for _ in range(count):
        params = field.init_mlp_params(generator)
        params["density_b1"][0] = 0.5
        params["tables"] = (torch.rand(field.table_shape, generator=generator) * 2 - 1) * 0.5
        nerfs.append(params)
    return {name: torch.stack([nerf[name] for nerf in nerfs]) for name in nerfs[0]}


def rays_towards_box(count: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Origins on a sphere of radius 1.9 and unit directions towards points near the centre, [count, 3] each."""
    generator = torch.Generator().manual_seed(seed)
    origins = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1) * 1.9
    targets = torch.rand(count, 3, generator=generator) * 0.8 - 0.4
    return origins, torch.nn.functional.normalize(targets - origins, dim=-1)


def dense_reference(
    field: HyperField, params: NeRFParams, origins: Tensor, directions: Tensor, slot: Tensor
) -> dict[str, Tensor]:
    """rgb on white, accumulation and depth [R, .] by evaluating every step of every ray, one ray at a time."""
    t_near, t_far = ray_aabb(origins, directions, field.aabb)
    rgb, accumulation, depth = [], [], []
    for r in range(len(origins)):
        steps = torch.arange(int(((t_far[r] - t_near[r]) / STEP).ceil().clamp_min(0)) + 1)
        t = t_near[r] + (steps + 0.5) * STEP
        t = t[t < t_far[r]]
        points = origins[r] + directions[r] * t[:, None]
        one = {name: value[slot[r] : slot[r] + 1] for name, value in params.items()}
        with torch.no_grad():
            out = field(points, directions[r].expand_as(points), torch.zeros(len(t), dtype=torch.long), [len(t)], one)
        alpha = 1.0 - torch.exp(-out["density"][:, 0].double() * STEP)
        transmittance = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.float64), 1.0 - alpha[:-1]]), dim=0)
        weights = transmittance * alpha
        total = weights.sum()
        rgb.append((weights[:, None] * out["rgb"].double()).sum(0) + (1.0 - total))
        accumulation.append(total[None])
        depth.append((weights * t.double()).sum()[None] / total)
    return {
        "rgb": torch.stack(rgb).float(),
        "accumulation": torch.stack(accumulation).float(),
        "depth": torch.stack(depth).float(),
    }


def test_render_rays_equals_the_dense_reference() -> None:
    field = HyperField(
        HashGridSpec(num_levels=4, log2_table_size=10, base_resolution=4, max_resolution=32),
        torch.tensor([[-0.5] * 3, [0.5] * 3]),
    )
    params = random_nerfs(field, 2)
    origins, directions = rays_towards_box(48)
    slot = torch.arange(48) // 24
    everywhere = torch.ones(2, 8, 8, 8, dtype=torch.bool)
    with torch.no_grad():
        rendered = render_rays(field, params, origins, directions, slot, everywhere, step_size=STEP, background="white")
    expected = dense_reference(field, params, origins, directions, slot)
    assert 0.2 < float(expected["accumulation"].mean()) < 0.95, "the NeRFs are neither empty nor opaque"
    for name in ("rgb", "accumulation"):
        torch.testing.assert_close(rendered[name], expected[name], rtol=0, atol=1e-5)
    hit = expected["accumulation"][:, 0] >= 0.5
    assert hit.sum() > 5
    torch.testing.assert_close(rendered["depth"][hit], expected["depth"][hit], rtol=1e-5, atol=1e-5)


def test_unsorted_slots_render_as_sorted_ones() -> None:
    """Rays of three NeRFs in shuffled order render exactly as the same rays grouped by NeRF, in both
    orders back, with every output (normals included), through sparse occupancy grids."""
    field = HyperField(
        HashGridSpec(num_levels=4, log2_table_size=10, base_resolution=4, max_resolution=32),
        torch.tensor([[-0.5] * 3, [0.5] * 3]),
    )
    params = random_nerfs(field, 3, seed=1)
    occupied = torch.rand(3, 16, 16, 16, generator=torch.Generator().manual_seed(4)) < 0.5
    origins, directions = rays_towards_box(90, seed=2)
    slot = torch.randperm(90, generator=torch.Generator().manual_seed(3)) % 3
    order = torch.argsort(slot, stable=True)
    options = {"step_size": STEP, "background": "black", "normals": True}
    shuffled = render_rays(field, params, origins, directions, slot, occupied, **options)
    grouped = render_rays(field, params, origins[order], directions[order], slot[order], occupied, **options)
    assert set(shuffled) == {"rgb", "accumulation", "depth", "num_samples", "normals"}
    for name, value in grouped.items():
        assert torch.equal(shuffled[name][order], value), name
    alone = render_rays(
        field,
        {name: value[2:3] for name, value in params.items()},
        origins[slot == 2],
        directions[slot == 2],
        torch.zeros(int((slot == 2).sum()), dtype=torch.long),
        occupied[2:3],
        **options,
    )
    torch.testing.assert_close(shuffled["rgb"][slot == 2], alone["rgb"], rtol=0, atol=1e-6)
