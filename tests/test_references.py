"""The core maths against independent references: values worked out by hand or by another library.

hash encoding at grid vertices   the table entry at the vertex's index, computed here in Python ints
                                 (dense: x + y (r+1) + z (r+1)^2; hashed: Instant-NGP's primes, xor, mod T)
hash encoding between vertices   a trilinear function sampled on a dense level's vertices is reproduced
                                 exactly; random dense grids equal torch's grid_sample (trilinear)
packed_weights                   T_i (1 - exp(-sigma_i delta_i)) by explicit loops and math.exp, and
                                 nerfacc's render_weight_from_density (dense form, CPU)
Codebook.kl                      torch.distributions.kl_divergence of Normal(mean, std) to Normal(0, 1)
HyperNetwork / HyperField init   the shapes of the design, the heads' initial weights and biases, He init
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor
from torch.distributions import Normal, kl_divergence

from hypnerf_ns.nerf.cpu_kernels import cpu_kernels
from hypnerf_ns.nerf.encoding import hash_encode, hash_encode_reference
from hypnerf_ns.nerf.field import HyperField
from hypnerf_ns.nerf.hash_grid import PRIMES, HashGridSpec
from hypnerf_ns.nerf.hypernetwork import Codebook, Codes, HyperNetwork
from hypnerf_ns.nerf.sampling import packed_weights

Encoder = Callable[[Tensor, Tensor, Tensor, HashGridSpec], Tensor]

INSTANT_NGP_PRIMES = (1, 2654435761, 805459861)
"""The spatial-hash primes of Instant-NGP (Müller et al. 2022), as unsigned 32-bit integers."""


@pytest.fixture(params=["reference", "cpu-kernel"])
def encode(request: pytest.FixtureRequest) -> Encoder:
    """Both CPU implementations of the encoding: the pure-torch reference and `hash_encode` (the C++ kernel)."""
    if request.param == "reference":
        return hash_encode_reference
    assert cpu_kernels() is not None, "the CPU kernel must build on this machine (C++ compiler + ninja)"
    return hash_encode


def vertex_index(vertex: tuple[int, int, int], resolution: int, dense: bool, table_size: int) -> int:
    """Table row of a grid vertex, from the definition of the encoding, in Python ints."""
    x, y, z = vertex
    if dense:
        return x + y * (resolution + 1) + z * (resolution + 1) ** 2
    p0, p1, p2 = INSTANT_NGP_PRIMES
    return (((x * p0) ^ (y * p1) ^ (z * p2)) & 0xFFFFFFFF) % table_size


def trilinear(points: Tensor, coefficients: Tensor) -> Tensor:
    """[P, 3] points, [8] coefficients -> [P] values of the general trilinear polynomial
    c0 + c1 x + c2 y + c3 z + c4 xy + c5 yz + c6 xz + c7 xyz."""
    x, y, z = points.unbind(dim=-1)
    monomials = torch.stack([torch.ones_like(x), x, y, z, x * y, y * z, x * z, x * y * z], dim=-1)
    return monomials @ coefficients


def dense_table(grid: Tensor, table_size: int) -> Tensor:
    """[r+1, r+1, r+1, F] values at vertices (x, y, z) -> [T, F] dense-level table (row x + y (r+1) + z (r+1)^2)."""
    vertices, features = grid.shape[0], grid.shape[-1]
    table = torch.full((table_size, features), float("nan"), dtype=grid.dtype)  # rows past the grid must never be read
    table[: vertices**3] = grid.permute(2, 1, 0, 3).reshape(-1, features)  # x varies fastest
    return table


# ---- hash encoding ------------------------------------------------------------------------------


def test_primes_are_instant_ngps() -> None:
    assert tuple(p % 2**32 for p in PRIMES) == INSTANT_NGP_PRIMES


@pytest.mark.parametrize(
    "spec",
    [
        # resolutions 4, 8, 16, 32 (the first two dense), then 3, 9, 27 (the first dense)
        HashGridSpec(num_levels=4, features=2, log2_table_size=10, base_resolution=4, max_resolution=32),
        HashGridSpec(num_levels=3, features=4, log2_table_size=9, base_resolution=3, max_resolution=27),
    ],
)
def test_encoding_at_a_vertex_is_that_vertexs_table_entry(encode: Encoder, spec: HashGridSpec) -> None:
    assert any(spec.dense_levels) and not all(spec.dense_levels), "both kinds of level are under test"
    generator = torch.Generator().manual_seed(0)
    num_objects, count = 3, 400
    tables = torch.randn(num_objects, spec.num_levels, spec.table_size, spec.features, generator=generator)
    slot = torch.randint(0, num_objects, (count,), generator=generator)
    for level, (resolution, dense) in enumerate(zip(spec.resolutions, spec.dense_levels, strict=True)):
        vertices = torch.randint(0, resolution + 1, (count, 3), generator=generator)  # upper bound included
        ends = (0, resolution)
        vertices[:8] = torch.tensor([[a, b, c] for a in ends for b in ends for c in ends])  # the corners of the box
        out = encode(vertices.float() / resolution, slot, tables, spec)
        rows = [vertex_index(tuple(v), resolution, dense, spec.table_size) for v in vertices.tolist()]
        expected = tables[slot, level, torch.tensor(rows)]
        got = out[:, level * spec.features : (level + 1) * spec.features]
        message = f"level {level} (resolution {resolution}, dense={dense})"
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5, msg=message)


def test_dense_level_reproduces_a_trilinear_function(encode: Encoder) -> None:
    spec = HashGridSpec(num_levels=1, features=2, log2_table_size=10, base_resolution=7, max_resolution=7)
    resolution = spec.resolutions[0]
    assert spec.dense_levels == (True,)
    generator = torch.Generator().manual_seed(1)
    coefficients = torch.randn(8, spec.features, generator=generator, dtype=torch.float64)
    axis = torch.arange(resolution + 1, dtype=torch.float64) / resolution
    vertices = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)  # [x, y, z, 3]
    grid = torch.stack([trilinear(vertices, coefficients[:, f]) for f in range(spec.features)], dim=-1)
    tables = dense_table(grid, spec.table_size)[None, None].float()

    points = torch.rand(2000, 3, generator=generator)
    points[:3] = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.5, 1.0]])
    got = encode(points, torch.zeros(len(points), dtype=torch.long), tables, spec)
    expected = torch.stack([trilinear(points.double(), coefficients[:, f]) for f in range(spec.features)], dim=-1)
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-5)


def test_dense_levels_equal_grid_sample(encode: Encoder) -> None:
    spec = HashGridSpec(num_levels=2, features=2, log2_table_size=10, base_resolution=3, max_resolution=6)
    assert spec.resolutions == (3, 6) and spec.dense_levels == (True, True)
    generator = torch.Generator().manual_seed(2)
    grids = [torch.randn(r + 1, r + 1, r + 1, spec.features, generator=generator).double() for r in spec.resolutions]
    tables = torch.stack([dense_table(grid, spec.table_size) for grid in grids])[None].float()  # [1, L, T, F]

    points = torch.rand(3000, 3, generator=generator)
    got = encode(points, torch.zeros(len(points), dtype=torch.long), tables, spec)
    # grid_sample reads (x, y, z) sample coordinates as (W, H, D) of a [N, C, D, H, W] input; with
    # align_corners=True, -1 and 1 are the centres of the first and last voxels: vertices 0 and r.
    sample_at = (points.double() * 2 - 1)[None, None, None]  # [1, 1, 1, P, 3]
    for level, grid in enumerate(grids):
        volume = grid.permute(3, 2, 1, 0)[None]  # [1, F, z, y, x]
        expected = torch.nn.functional.grid_sample(volume, sample_at, mode="bilinear", align_corners=True)
        expected = expected.reshape(spec.features, -1).t()  # [P, F]
        level_features = got[:, level * spec.features : (level + 1) * spec.features].double()
        torch.testing.assert_close(level_features, expected, rtol=0, atol=1e-5)


# ---- volume rendering weights -------------------------------------------------------------------

COUNTS = [3, 0, 5, 1, 7, 0]
"""Samples per ray: rays without samples in the middle and at the end of the ray index range."""


def ragged_samples(counts: list[int], seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Packed densities, deltas and ray indices [S] for rays with `counts` samples."""
    generator = torch.Generator().manual_seed(seed)
    total = sum(counts)
    densities = torch.rand(total, generator=generator) * 8.0
    deltas = torch.rand(total, generator=generator) * 0.2 + 0.01
    ray_index = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    return densities, deltas, ray_index


def test_packed_weights_equal_hand_computed_weights() -> None:
    densities, deltas, ray_index = ragged_samples(COUNTS, seed=3)
    expected: list[float] = []
    start = 0
    for count in COUNTS:
        optical_depth = 0.0  # of the samples before this one on the same ray
        for i in range(start, start + count):
            sigma_delta = float(densities[i]) * float(deltas[i])
            expected.append(math.exp(-optical_depth) * (1.0 - math.exp(-sigma_delta)))
            optical_depth += sigma_delta
        start += count
    got = packed_weights(densities, deltas, ray_index, len(COUNTS))
    torch.testing.assert_close(got.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-5, atol=1e-6)
    assert got.shape == (sum(COUNTS),)


def test_packed_weights_equal_nerfaccs_dense_weights() -> None:
    nerfacc = pytest.importorskip("nerfacc")
    densities, deltas, ray_index = ragged_samples(COUNTS, seed=4)
    # The same rays padded to one length with empty samples (delta 0: weight 0, transmittance unchanged).
    width = max(COUNTS)
    within = torch.cat([torch.arange(count) for count in COUNTS])
    sigmas = torch.zeros(len(COUNTS), width)
    dense_deltas = torch.zeros(len(COUNTS), width)
    sigmas[ray_index, within] = densities
    dense_deltas[ray_index, within] = deltas
    t_ends = torch.cumsum(dense_deltas, dim=-1) + 0.5
    t_starts = t_ends - dense_deltas
    try:
        weights = nerfacc.render_weight_from_density(t_starts, t_ends, sigmas)[0]
    except (RuntimeError, NotImplementedError) as error:
        pytest.skip(f"nerfacc's dense render_weight_from_density does not run on the CPU here: {error}")
    got = packed_weights(densities, deltas, ray_index, len(COUNTS))
    torch.testing.assert_close(got, weights[ray_index, within], rtol=1e-5, atol=1e-6)


# ---- codes and hypernetwork ---------------------------------------------------------------------


def test_codebook_kl_equals_torch_distributions() -> None:
    generator = torch.Generator().manual_seed(5)
    codebook = Codebook(num_objects=6, shape_dim=5, color_dim=3)
    parts = ((codebook.shape_mean, codebook.shape_logvar), (codebook.color_mean, codebook.color_logvar))
    with torch.no_grad():
        for mean, logvar in parts:
            mean.copy_(torch.randn(mean.shape, generator=generator))
            logvar.copy_(torch.randn(logvar.shape, generator=generator))
    objects = torch.tensor([0, 3, 3, 5])  # a repeated object counts twice in the mean

    expected = torch.zeros((), dtype=torch.float64)
    for mean, logvar in parts:
        m, lv = mean.detach()[objects].double(), logvar.detach()[objects].double()
        expected = expected + kl_divergence(Normal(m, (0.5 * lv).exp()), Normal(0.0, 1.0)).sum(dim=-1).mean()

    got = codebook.kl(objects)
    assert got.shape == ()
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)


GRID = HashGridSpec(num_levels=4, features=2, log2_table_size=10, base_resolution=4, max_resolution=32)
AABB = torch.tensor([[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]])
HIDDEN, GEO, SH_LEVELS, TRUNK = 16, 7, 3, 32
TABLE_INIT, HEAD_INIT = 1e-4, 1e-3


def make_hypernetwork() -> tuple[HyperField, HyperNetwork, dict[str, Tensor]]:
    """A small field and its hypernetwork, built as the model builds them; also the MLP init it was given."""
    field = HyperField(GRID, AABB, hidden_dim=HIDDEN, geo_feat_dim=GEO, sh_levels=SH_LEVELS)
    init = field.init_mlp_params(torch.Generator().manual_seed(0))
    hyper = HyperNetwork(
        8, 6, TRUNK, 2, field.table_shape, field.density_shapes(), field.color_shapes(), init, table_init=TABLE_INIT
    )
    return field, hyper, init


def test_generated_params_have_the_designed_shapes() -> None:
    torch.manual_seed(6)
    _, hyper, _ = make_hypernetwork()
    b = 3
    params = hyper(Codes(torch.randn(b, 8), torch.randn(b, 6)))
    levels_x_features = GRID.num_levels * GRID.features
    assert {name: tuple(p.shape) for name, p in params.items()} == {
        "tables": (b, GRID.num_levels, GRID.table_size, GRID.features),
        "density_w0": (b, levels_x_features, HIDDEN),
        "density_b0": (b, HIDDEN),
        "density_w1": (b, HIDDEN, 1 + GEO),
        "density_b1": (b, 1 + GEO),
        "color_w0": (b, GEO + SH_LEVELS**2, HIDDEN),
        "color_b0": (b, HIDDEN),
        "color_w1": (b, HIDDEN, 3),
        "color_b1": (b, 3),
    }


def test_fresh_hypernetwork_makes_small_tables_and_the_init_mlp_for_every_code() -> None:
    torch.manual_seed(7)
    field, hyper, init = make_hypernetwork()

    table_weight = hyper.table_head.linear.weight
    assert table_weight.abs().max() <= TABLE_INIT
    assert abs(table_weight.std().item() / (TABLE_INIT / math.sqrt(3)) - 1) < 0.1  # uniform on [-a, a]: std a / sqrt(3)
    assert abs(table_weight.mean().item()) < 0.01 * TABLE_INIT
    assert torch.count_nonzero(hyper.table_head.linear.bias) == 0
    for head, shapes in ((hyper.density_head, field.density_shapes()), (hyper.color_head, field.color_shapes())):
        assert head.linear.weight.abs().max() <= HEAD_INIT
        flat_init = torch.cat([init[name].reshape(-1) for name in shapes])
        torch.testing.assert_close(head.linear.bias.detach(), flat_init, rtol=0, atol=0)

    codes = Codes(torch.randn(2, 8), torch.randn(2, 6))
    with torch.no_grad():
        params = hyper(codes)
        shape_features, color_features = hyper.shape_trunk(codes.shape), hyper.color_trunk(codes.color)
    # |W f + b - b| <= max |W| * sum |f| for every output (Hölder), per object.
    shape_bound = shape_features.abs().sum(dim=-1)  # [2]
    color_bound = color_features.abs().sum(dim=-1)
    assert (params["tables"].flatten(1).abs().amax(dim=1) <= TABLE_INIT * shape_bound * (1 + 1e-5)).all()
    for names, bound in ((field.density_shapes(), shape_bound), (field.color_shapes(), color_bound)):
        for name in names:
            change = (params[name] - init[name]).flatten(1).abs().amax(dim=1)
            assert (change <= HEAD_INIT * bound * (1 + 1e-5)).all(), name
            if init[name].dim() == 2:  # far below the weights' own scale: every code makes nearly the same MLP
                difference = (params[name][0] - params[name][1]).abs().max()
                assert difference < 0.05 * init[name].std(), name


def test_init_mlp_params_are_he_initialised_with_zero_biases() -> None:
    grid = HashGridSpec(num_levels=8, features=4, log2_table_size=10)
    field = HyperField(grid, AABB, hidden_dim=64, geo_feat_dim=15, sh_levels=4, density_bias=-2.5)
    params = field.init_mlp_params(torch.Generator().manual_seed(8))
    fan_in = {"density_w0": 32, "density_w1": 64, "color_w0": 15 + 16, "color_w1": 64}  # inputs of x @ W, W [in, out]
    checked = 0
    for name, weight in params.items():
        if weight.dim() == 1:
            expected = torch.zeros_like(weight)
            if name == "density_b1":
                expected[0] = -2.5
            torch.testing.assert_close(weight, expected, rtol=0, atol=0, msg=name)
        elif weight.numel() >= 1000:  # enough entries for a sample std within a few per cent
            assert weight.shape[0] == fan_in[name], name
            rms = weight.square().mean().sqrt().item()
            assert abs(rms / math.sqrt(2.0 / fan_in[name]) - 1) < 0.15, (name, rms)
            assert abs(weight.mean().item()) < 0.1 * rms, name
            checked += 1
    assert checked == 3  # density_w0, density_w1, color_w0 (color_w1 has 192 entries)
