"""Hypernetwork output shapes and gradients; the batched field against per-object evaluation."""

from __future__ import annotations

import copy

import pytest
import torch

from hypnerf_ns.nerf import hypernetwork
from hypnerf_ns.nerf.encoding import HashGridSpec
from hypnerf_ns.nerf.field import HyperField
from hypnerf_ns.nerf.hypernetwork import Codebook, HyperNetwork

GRID = HashGridSpec(num_levels=4, log2_table_size=10, base_resolution=4, max_resolution=32)
AABB = torch.tensor([[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]])


def make(num_objects: int = 4):
    field = HyperField(GRID, AABB, hidden_dim=16, geo_feat_dim=7, sh_levels=2)
    codebook = Codebook(num_objects, shape_dim=8, color_dim=6)
    hyper = HyperNetwork(
        8, 6, 32, 2, field.table_shape, field.density_shapes(), field.color_shapes(), field.init_mlp_params()
    )
    return field, codebook, hyper


def directions_like(points: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn_like(points), dim=-1)


def test_hypernetwork_makes_every_parameter_of_the_field() -> None:
    field, codebook, hyper = make()
    params = hyper(codebook(torch.tensor([0, 2, 3]), sample=True))
    expected = {"tables": field.table_shape, **field.density_shapes(), **field.color_shapes()}
    assert {name: tuple(p.shape[1:]) for name, p in params.items()} == expected
    assert all(p.shape[0] == 3 for p in params.values())


def test_gradients_reach_codes_and_hypernetwork() -> None:
    torch.manual_seed(0)
    field, codebook, hyper = make()
    for p in hyper.parameters():  # move off the init so that every path carries gradient
        p.data.add_(torch.randn_like(p) * 0.05)
    objects = torch.tensor([1, 3])
    params = hyper(codebook(objects, sample=True))
    points = torch.rand(200, 3) - 0.5
    slot = torch.arange(2).repeat_interleave(100)
    out = field(points, directions_like(points), slot, [100, 100], params)
    loss = out["rgb"].sum() + out["density"].sum() + codebook.kl(objects)
    loss.backward()
    for name, p in [*codebook.named_parameters(), *hyper.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad.to_dense()).all(), name
    for p in (codebook.shape_mean, codebook.color_mean):
        assert p.grad.is_sparse  # only the batch's rows, for SparseAdam
        grad = p.grad.to_dense()
        assert (grad[objects].abs().sum(dim=1) > 0).all() and grad[[0, 2]].abs().sum() == 0
    assert all(p.grad.abs().sum() > 0 for p in hyper.parameters())


def gradients_of_two_steps(hyper: HyperNetwork, codebook: Codebook) -> tuple[list, list]:
    """Per step (zero_grad, then two backward passes that accumulate): every weight's gradient, and
    the address of the table head's weight gradient."""
    grads, addresses = [], []
    for step in range(2):
        hyper.zero_grad(set_to_none=True)
        for objects in ([0, 2], [1, 3, 3]):
            params = hyper(codebook(torch.tensor(objects), sample=False))
            generator = torch.Generator().manual_seed(10 * step + len(objects))
            sum((p * torch.randn(p.shape, generator=generator)).sum() for p in params.values()).backward()
        grads.append({name: p.grad.clone() for name, p in hyper.named_parameters()})
        addresses.append(hyper.table_head.linear.weight.grad.data_ptr())
    return grads, addresses


def test_heads_equal_plain_linear_layers_with_weight_gradients_in_memory_kept_across_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    _, codebook, hyper = make()
    plain = copy.deepcopy(hyper)
    codes = codebook(torch.tensor([0, 1, 3]), sample=False)
    generated = hyper(codes)
    kept, addresses = gradients_of_two_steps(hyper, codebook)
    assert addresses[0] == addresses[1]  # the second step wrote into the first step's memory
    monkeypatch.setattr(
        hypernetwork._LinearIntoKeptGrad, "apply", lambda x, w, b, head: torch.nn.functional.linear(x, w, b)
    )
    for name, value in plain(codes).items():
        torch.testing.assert_close(generated[name], value, rtol=1e-5, atol=1e-7, msg=name)
    expected, _ = gradients_of_two_steps(plain, codebook)
    for step in range(2):
        for name, grad in expected[step].items():
            torch.testing.assert_close(kept[step][name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_batched_field_matches_per_object_evaluation() -> None:
    torch.manual_seed(1)
    field, codebook, hyper = make()
    for p in hyper.parameters():
        p.data.add_(torch.randn_like(p) * 0.05)
    params = hyper(codebook(torch.arange(4), sample=False))
    counts = [30, 0, 50, 20]
    slot = torch.repeat_interleave(torch.arange(4), torch.tensor(counts))
    points = torch.rand(100, 3) - 0.5
    directions = directions_like(points)
    with torch.no_grad():
        together = field(points, directions, slot, counts, params, compute_normals=True)
    start = 0
    for b, n in enumerate(counts):
        if n == 0:
            continue
        one = {name: p[b : b + 1] for name, p in params.items()}
        part = slice(start, start + n)
        with torch.no_grad():
            alone = field(
                points[part], directions[part], torch.zeros(n, dtype=torch.long), [n], one, compute_normals=True
            )
        for head in ("density", "rgb", "normals"):
            torch.testing.assert_close(together[head][start : start + n], alone[head], rtol=1e-4, atol=1e-5)
        start += n


def test_fresh_hypernetwork_makes_a_nearly_empty_grey_nerf() -> None:
    torch.manual_seed(2)
    field, codebook, hyper = make()
    params = hyper(codebook(torch.arange(4), sample=False))
    slot = torch.arange(4).repeat_interleave(250)
    points = torch.rand(1000, 3) - 0.5
    with torch.no_grad():
        out = field(points, directions_like(points), slot, [250] * 4, params)
    assert out["density"].max() < 1.0  # < 1% opacity per 1/128 step: empty space
    rgb = out["rgb"]
    assert (rgb - 0.5).abs().max() < 0.35 and rgb.std() < 0.15  # grey-ish, no noise


def test_huge_raw_density_stays_finite_and_does_not_spoil_other_rays() -> None:
    from hypnerf_ns.nerf.field import density_from_raw
    from hypnerf_ns.nerf.sampling import packed_weights

    raw = torch.tensor([0.0, 1000.0, 2.0, 0.5, 1.0])
    density = density_from_raw(raw)
    assert torch.isfinite(density).all()
    ray_index = torch.tensor([0, 0, 0, 1, 1])
    deltas = torch.full((5,), 0.01)
    weights = packed_weights(density, deltas, ray_index, 2)
    assert torch.isfinite(weights).all()
    assert weights[:3].sum() == pytest.approx(1.0, abs=1e-5), "the capped sample is opaque"
    alone = packed_weights(density[3:], deltas[3:], torch.zeros(2, dtype=torch.long), 1)
    assert torch.allclose(weights[3:], alone), "the next ray is unaffected"


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="nerfacc's packed kernels need CUDA (none on this project's machines)"
)
def test_packed_weights_by_nerfacc_on_cuda_equal_the_torch_ones() -> None:
    from hypnerf_ns.nerf.sampling import packed_weights

    generator = torch.Generator().manual_seed(0)
    ray_index = torch.randint(0, 50, (2000,), generator=generator).sort().values
    density = torch.rand(2000, generator=generator) * 20
    deltas = torch.full((2000,), 1 / 128)
    on_cpu = packed_weights(density, deltas, ray_index, 60)
    on_cuda = packed_weights(density.cuda(), deltas.cuda(), ray_index.cuda(), 60).cpu()
    torch.testing.assert_close(on_cuda, on_cpu, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("path", ["cpu kernel", "tensor ops"])
@pytest.mark.parametrize("resolution", [32, 64])
def test_march_keeps_exactly_the_occupied_steps(resolution: int, path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`march` equals testing every step of every ray against the grids (sparse random grids,
    jittered rays), by the C++ kernel and by the two-level tensor march (CUDA's), bit for bit."""
    from hypnerf_ns.nerf import sampling
    from hypnerf_ns.nerf.cpu_kernels import cpu_kernels
    from hypnerf_ns.nerf.sampling import march, ray_aabb

    if path == "cpu kernel":
        assert cpu_kernels() is not None
    else:
        monkeypatch.setattr(sampling, "cpu_kernels", lambda: None)

    torch.manual_seed(0)
    aabb = torch.tensor([[-0.5] * 3, [0.5] * 3])
    occupied = torch.rand(2, resolution, resolution, resolution) < 0.02
    origins = torch.nn.functional.normalize(torch.randn(500, 3), dim=-1) * 1.9
    directions = torch.nn.functional.normalize(torch.rand(500, 3) * 0.8 - 0.4 - origins, dim=-1)
    grid_of_ray = torch.arange(500) % 2
    t_near, t_far = ray_aabb(origins, directions, aabb)
    step = 1.0 / 128
    torch.manual_seed(1)
    ray_index, t_starts, t_ends = march(
        origins, directions, t_near, t_far, step, occupied, grid_of_ray, aabb, jitter=True
    )
    torch.manual_seed(1)
    offset = torch.rand(500)  # the same per-ray jitter march drew
    every = t_near[:, None] + (torch.arange(256)[None, :] + offset[:, None]) * step
    cell = (
        ((origins[:, None] + directions[:, None] * every[..., None] - aabb[0]) * resolution)
        .long()
        .clamp(0, resolution - 1)
    )
    expected = (every < t_far[:, None]) & occupied[grid_of_ray[:, None], cell[..., 0], cell[..., 1], cell[..., 2]]
    rays, steps = expected.nonzero(as_tuple=True)
    assert len(rays) > 1000
    assert torch.equal(ray_index, rays)
    torch.testing.assert_close(0.5 * (t_starts + t_ends), every[rays, steps])


@pytest.mark.parametrize("jitter", [True, False])
def test_march_kernel_equals_tensor_march_bit_for_bit(jitter: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU kernel and the two-level tensor march give identical samples in a box that is not
    the unit cube (the cell arithmetic divides by its extent), rays inside and outside the box."""
    from hypnerf_ns.nerf import sampling
    from hypnerf_ns.nerf.sampling import march, ray_aabb

    torch.manual_seed(0)
    aabb = torch.tensor([[-0.6, -0.5, -0.45], [0.7, 0.5, 0.55]])
    occupied = torch.rand(3, 32, 32, 32) < 0.05
    origins = torch.cat([torch.nn.functional.normalize(torch.randn(700, 3), dim=-1) * 1.9, torch.rand(100, 3) - 0.5])
    directions = torch.nn.functional.normalize(torch.rand(800, 3) * 0.8 - 0.4 - origins, dim=-1)
    grid_of_ray = torch.randint(0, 3, (800,)).sort().values
    t_near, t_far = ray_aabb(origins, directions, aabb)
    results = []
    for kernel in (True, False):
        if not kernel:
            monkeypatch.setattr(sampling, "cpu_kernels", lambda: None)
        torch.manual_seed(1)
        results.append(march(origins, directions, t_near, t_far, 1.0 / 100, occupied, grid_of_ray, aabb, jitter=jitter))
    assert len(results[0][0]) > 1000
    for from_kernel, from_tensors in zip(*results, strict=True):
        assert torch.equal(from_kernel, from_tensors)


def test_occupancy_kept_up_to_date_per_object_equals_derived_at_once() -> None:
    """The occupancy `update` keeps object by object equals deriving all grids from the densities anew."""
    from hypnerf_ns.nerf.sampling import OccupancyGrids, occupancy_from_density

    torch.manual_seed(0)
    grids = OccupancyGrids(300, 8, AABB, density_threshold=1.0)
    assert bool(grids.occupied().all()), "grids never updated count as fully occupied"
    blob = torch.tensor([0.2, -0.1, 0.0])  # a dense ball, radius 0.2, a different size per object
    for objects in (torch.arange(0, 120), torch.arange(100, 260), torch.tensor([7, 299])):
        radius = 0.1 + objects[:, None].float() / 1000
        grids.update(objects, lambda points, r=radius: 10.0 * ((points - blob).norm(dim=-1) < r).float())
    kept = grids.occupied().clone()
    expected = occupancy_from_density(grids.density, grids.density_threshold)
    expected[~grids.updated] = True
    assert torch.equal(kept, expected)
    assert not bool(kept[:261].all()) and bool(kept[261:299].all())
    grids._occupied = None  # derived anew (as after loading a checkpoint): the same
    assert torch.equal(grids.occupied(), expected)


@pytest.mark.parametrize("relu", [False, True])
def test_grouped_linear_values_and_gradients(relu: bool) -> None:
    """Each object's rows through its own weights, an object with no samples included (double-precision gradcheck)."""
    from hypnerf_ns.nerf.field import grouped_linear

    torch.manual_seed(0)
    counts = [5, 0, 7, 3]
    x = torch.randn(15, 4, dtype=torch.double, requires_grad=True)
    weight = torch.randn(4, 4, 6, dtype=torch.double, requires_grad=True)
    bias = torch.randn(4, 6, dtype=torch.double, requires_grad=True)
    expected = torch.cat([chunk @ weight[i] + bias[i] for i, chunk in enumerate(x.split(counts))])
    if relu:
        assert bool((expected < 0).any()), "some outputs are cut by the ReLU"
        expected = expected.relu()
    torch.testing.assert_close(grouped_linear(x, weight, bias, counts, relu), expected)
    assert torch.autograd.gradcheck(lambda x, w, b: grouped_linear(x, w, b, counts, relu), (x, weight, bias))


@pytest.mark.parametrize(("resolution", "cells"), [(32, 1), (64, 2), (5, 7)])
def test_dilate_equals_a_max_pool_over_the_box(resolution: int, cells: int) -> None:
    from hypnerf_ns.nerf.sampling import dilate

    torch.manual_seed(0)
    occupied = torch.rand(3, resolution, resolution, resolution) < 0.03
    expected = (
        torch.nn.functional.max_pool3d(occupied[:, None].float(), 2 * cells + 1, stride=1, padding=cells)[:, 0] > 0
    )
    assert occupied.any()
    assert torch.equal(dilate(occupied, cells), expected)
