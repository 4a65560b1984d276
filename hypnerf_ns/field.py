"""HyperField: a small Instant-NGP-style NeRF whose parameters are generated per object.

The field owns no weights. Its parameters (`NeRFParams`, see hypernetwork.py) are bound for
one forward pass with `field.bound(params)`; every sample carries the slot of its object in
those params (`ray_samples.metadata["slot"]`). Samples must be grouped by slot (ascending),
which the model guarantees, so each object's MLP runs as one matrix product over its samples.

    position -> hash grid (per-object tables) -> density MLP -> density, geometry features
    geometry features + SH(direction) -> colour MLP -> rgb
"""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from torch import Tensor
from nerfstudio.cameras.rays import Frustums, RaySamples
from nerfstudio.field_components.activations import trunc_exp
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.fields.base_field import Field
from nerfstudio.utils.math import components_from_spherical_harmonics

from hypnerf_ns.encoding import HashGridSpec, hash_encode
from hypnerf_ns.hypernetwork import NeRFParams, ParamShapes


def point_samples(points: Tensor, slot: Tensor, directions: Optional[Tensor] = None) -> RaySamples:
    """Samples at single points [P, 3] of slots [P] (long), seen along `directions` [P, 3] (default: none)."""
    zero = torch.zeros_like(points[:, :1])
    frustums = Frustums(points, torch.zeros_like(points) if directions is None else directions, zero, zero, zero)
    return RaySamples(frustums=frustums, metadata={"slot": slot[:, None]})


def grouped_linear(x: Tensor, weight: Tensor, bias: Tensor, counts: List[int]) -> Tensor:
    """Per-object linear layer over samples grouped by object.

    Args:
        x: [P, in], the first counts[0] rows belong to object 0, the next counts[1] to object 1, ...
        weight: [B, in, out]; bias: [B, out]; counts: B ints summing to P.

    Returns:
        [P, out]
    """
    if len(counts) == 1:
        return torch.addmm(bias[0], x, weight[0])
    return torch.cat([torch.addmm(bias[i], chunk, weight[i]) for i, chunk in enumerate(x.split(counts))])


MAX_RAW_DENSITY = 15.0
"""exp(15) = 3.3e6 per unit length: opaque within any sample; caps the activation so it never overflows."""


def density_from_raw(raw: Tensor) -> Tensor:
    """Density = exp(raw), raw capped at MAX_RAW_DENSITY (an uncapped exp reaches inf in float32,
    and one inf optical depth turns the packed transmittance cumsum into NaN for later rays)."""
    return trunc_exp(raw.clamp(max=MAX_RAW_DENSITY))


class HyperField(Field):
    """Density and colour of points under the NeRF parameters of their own object.

    Args:
        grid: hash-grid shape.
        aabb: [2, 3] box that the grid spans (min corner, max corner).
        hidden_dim: width of the density and colour MLPs.
        geo_feat_dim: geometry features passed from the density to the colour MLP.
        sh_levels: spherical-harmonics levels of the view direction (levels^2 components).
        density_bias: initial pre-activation density; negative starts from nearly empty space.
    """

    def __init__(
        self,
        grid: HashGridSpec,
        aabb: Tensor,
        hidden_dim: int = 32,
        geo_feat_dim: int = 15,
        sh_levels: int = 3,
        density_bias: float = -1.0,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.register_buffer("aabb", aabb.float().clone(), persistent=False)
        self.hidden_dim = hidden_dim
        self.geo_feat_dim = geo_feat_dim
        self.sh_levels = sh_levels
        self.density_bias = density_bias
        self._params: Optional[NeRFParams] = None
        self._counts: List[int] = []

    # ---- parameters as data ------------------------------------------------------------------
    @property
    def table_shape(self) -> Tuple[int, int, int]:
        return (self.grid.num_levels, self.grid.table_size, self.grid.features)

    def density_shapes(self) -> ParamShapes:
        h, out = self.hidden_dim, 1 + self.geo_feat_dim
        return {"density_w0": (self.grid.output_dim, h), "density_b0": (h,), "density_w1": (h, out), "density_b1": (out,)}

    def color_shapes(self) -> ParamShapes:
        h, inp = self.hidden_dim, self.geo_feat_dim + self.sh_levels**2
        return {"color_w0": (inp, h), "color_b0": (h,), "color_w1": (h, 3), "color_b1": (3,)}

    def init_mlp_params(self, generator: Optional[torch.Generator] = None) -> NeRFParams:
        """One object's MLP weights, He-initialised, biases zero; density starts at `density_bias`."""
        params: NeRFParams = {}
        for name, shape in {**self.density_shapes(), **self.color_shapes()}.items():
            if len(shape) == 2:
                params[name] = torch.randn(shape, generator=generator) * math.sqrt(2.0 / shape[0])
            else:
                params[name] = torch.zeros(shape)
        params["density_b1"][0] = self.density_bias
        return params

    @contextmanager
    def bound(self, params: NeRFParams, counts: List[int]) -> Iterator[None]:
        """Evaluate with `params` (B objects) while inside; `counts[b]` samples belong to slot b."""
        self._params, self._counts = params, counts
        try:
            yield
        finally:
            self._params, self._counts = None, []

    # ---- nerfstudio Field interface ----------------------------------------------------------
    def normalize(self, positions: Tensor) -> Tensor:
        """World positions [..., 3] -> [0, 1]^3 inside the aabb."""
        return (positions - self.aabb[0]) / (self.aabb[1] - self.aabb[0])

    def get_density(self, ray_samples: RaySamples) -> Tuple[Tensor, Tensor]:
        """Density [P, 1] and geometry features [P, geo_feat_dim] of packed samples [P]."""
        raw, geo = self._density_mlp(ray_samples.frustums.get_positions(), ray_samples.metadata["slot"][..., 0])
        return density_from_raw(raw), geo

    def get_outputs(self, ray_samples: RaySamples, density_embedding: Optional[Tensor] = None) -> Dict:
        assert density_embedding is not None
        return {FieldHeadNames.RGB: self._color_mlp(density_embedding, ray_samples.frustums.directions)}

    def forward(self, ray_samples: RaySamples, compute_normals: bool = False) -> Dict[FieldHeadNames, Tensor]:
        """Density, rgb and (if `compute_normals`) unit normals, minus the density gradient."""
        positions = ray_samples.frustums.get_positions()
        slot = ray_samples.metadata["slot"][..., 0]
        with torch.enable_grad() if compute_normals else nullcontext():
            if compute_normals and not positions.requires_grad:
                positions = positions.detach().requires_grad_(True)
            raw, geo = self._density_mlp(positions, slot)
        outputs = {
            FieldHeadNames.DENSITY: density_from_raw(raw),
            FieldHeadNames.RGB: self._color_mlp(geo, ray_samples.frustums.directions),
        }
        if compute_normals:
            with torch.enable_grad():
                (gradient,) = torch.autograd.grad(raw.sum(), positions, retain_graph=torch.is_grad_enabled())
            outputs[FieldHeadNames.NORMALS] = -torch.nn.functional.normalize(gradient, dim=-1)
        return outputs

    def _density_mlp(self, positions: Tensor, slot: Tensor) -> Tuple[Tensor, Tensor]:
        """Pre-activation density [P, 1] and geometry features [P, geo_feat_dim]."""
        p = self._params
        assert p is not None, "HyperField: bind parameters with `with field.bound(params, counts):`"
        features = hash_encode(self.normalize(positions), slot, p["tables"], self.grid)
        h = torch.relu(grouped_linear(features, p["density_w0"], p["density_b0"], self._counts))
        out = grouped_linear(h, p["density_w1"], p["density_b1"], self._counts)
        return out[:, :1], out[:, 1:]

    def _color_mlp(self, geo: Tensor, directions: Tensor) -> Tensor:
        """rgb [P, 3] from geometry features [P, geo_feat_dim] and unit view directions [P, 3]."""
        p = self._params
        assert p is not None
        sh = components_from_spherical_harmonics(self.sh_levels, directions)
        h = torch.relu(grouped_linear(torch.cat([geo, sh], dim=-1), p["color_w0"], p["color_b0"], self._counts))
        return torch.sigmoid(grouped_linear(h, p["color_w1"], p["color_b1"], self._counts))
