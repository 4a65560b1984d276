"""HyperField: a small Instant-NGP-style NeRF whose parameters are generated per object.

The field owns no weights: it is a function of (points, their object's slot, `NeRFParams`).
Samples must be grouped by slot (ascending; `counts[b]` samples belong to slot b), which the
model guarantees, so each object's MLP runs as one matrix product over its samples.

    position -> hash grid (per-object tables) -> density MLP -> density, geometry features
    geometry features + SH(direction) -> colour MLP -> rgb
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import torch
from nerfstudio.field_components.activations import trunc_exp
from nerfstudio.utils.math import components_from_spherical_harmonics
from torch import Tensor, nn

from hypnerf_ns.nerf.encoding import HashGridSpec, hash_encode
from hypnerf_ns.nerf.hypernetwork import NeRFParams, ParamShapes


def grouped_linear(x: Tensor, weight: Tensor, bias: Tensor, counts: list[int], relu: bool = False) -> Tensor:
    """Per-object linear layer over samples grouped by object, optionally followed by a ReLU.

    Args:
        x: [P, in], the first counts[0] rows belong to object 0, the next counts[1] to object 1, ...
        weight: [B, in, out]; bias: [B, out]; counts: B ints summing to P.
        relu: apply a ReLU to the output (in place, and masked in the backward pass, so the
            activation costs no tensor of its own).

    Returns:
        [P, out]
    """
    return _GroupedLinear.apply(x, weight, bias, counts, relu)


class _GroupedLinear(torch.autograd.Function):
    """`grouped_linear` with each object's product written straight into its rows of one output,
    forward and backward: autograd through per-object slices would concatenate the pieces (and
    their gradients) into new [P, .] tensors at every layer, ~10 full copies of the samples per step."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, counts: list[int], relu: bool) -> Tensor:
        out = x.new_empty(x.shape[0], weight.shape[2])
        for i, (rows, out_rows) in enumerate(zip(x.split(counts), out.split(counts), strict=True)):
            torch.addmm(bias[i], rows, weight[i], out=out_rows)
        if relu:
            out.relu_()
        ctx.save_for_backward(x, weight, out if relu else None)
        ctx.counts = counts
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, activated = ctx.saved_tensors
        if activated is not None:
            grad_out = torch.ops.aten.threshold_backward(grad_out, activated, 0.0)  # 0 where the ReLU cut
        grads = grad_out.contiguous().split(ctx.counts)
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = x.new_empty(x.shape)
            for i, (grad, grad_rows) in enumerate(zip(grads, grad_x.split(ctx.counts), strict=True)):
                torch.mm(grad, weight[i].t(), out=grad_rows)
        if ctx.needs_input_grad[1]:
            grad_weight = torch.stack([rows.t() @ grad for rows, grad in zip(x.split(ctx.counts), grads, strict=True)])
        if ctx.needs_input_grad[2]:
            grad_bias = torch.stack([grad.sum(dim=0) for grad in grads])
        return grad_x, grad_weight, grad_bias, None, None


MAX_RAW_DENSITY = 15.0
"""exp(15) = 3.3e6 per unit length: opaque within any sample; caps the activation so it never overflows."""


def density_from_raw(raw: Tensor) -> Tensor:
    """Density = exp(raw), raw capped at MAX_RAW_DENSITY (an uncapped exp reaches inf in float32,
    and one inf optical depth turns the packed transmittance cumsum into NaN for later rays)."""
    return trunc_exp(raw.clamp(max=MAX_RAW_DENSITY))


class HyperField(nn.Module):
    """Density and colour of points under the NeRF parameters of their own object.

    Args:
        grid: hash-grid shape.
        aabb: [2, 3] box that the grid spans (min corner, max corner).
        hidden_dim: width of the density and colour MLPs.
        geo_feat_dim: geometry features passed from the density to the colour MLP.
        sh_levels: spherical-harmonics levels of the view direction (levels^2 components).
        density_bias: initial pre-activation density; negative starts from nearly empty space.
    """

    aabb: Tensor  # buffer [2, 3]

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

    # ---- parameters as data ------------------------------------------------------------------
    @property
    def table_shape(self) -> tuple[int, int, int]:
        return (self.grid.num_levels, self.grid.table_size, self.grid.features)

    def density_shapes(self) -> ParamShapes:
        h, out = self.hidden_dim, 1 + self.geo_feat_dim
        return {
            "density_w0": (self.grid.output_dim, h),
            "density_b0": (h,),
            "density_w1": (h, out),
            "density_b1": (out,),
        }

    def color_shapes(self) -> ParamShapes:
        h, inp = self.hidden_dim, self.geo_feat_dim + self.sh_levels**2
        return {"color_w0": (inp, h), "color_b0": (h,), "color_w1": (h, 3), "color_b1": (3,)}

    def init_mlp_params(self, generator: torch.Generator | None = None) -> NeRFParams:
        """One object's MLP weights, He-initialised, biases zero; density starts at `density_bias`."""
        params: NeRFParams = {}
        for name, shape in {**self.density_shapes(), **self.color_shapes()}.items():
            if len(shape) == 2:
                params[name] = torch.randn(shape, generator=generator) * math.sqrt(2.0 / shape[0])
            else:
                params[name] = torch.zeros(shape)
        params["density_b1"][0] = self.density_bias
        return params

    # ---- evaluation --------------------------------------------------------------------------
    def normalize(self, positions: Tensor) -> Tensor:
        """World positions [..., 3] -> [0, 1]^3 inside the aabb."""
        return (positions - self.aabb[0]) / (self.aabb[1] - self.aabb[0])

    def density(self, positions: Tensor, slot: Tensor, counts: list[int], params: NeRFParams) -> Tensor:
        """Density [P] at points [P, 3] of slots [P] (grouped: `counts[b]` points of slot b)."""
        raw, _ = self._density_mlp(positions, slot, counts, params)
        return density_from_raw(raw)[:, 0]

    def forward(
        self,
        positions: Tensor,
        directions: Tensor,
        slot: Tensor,
        counts: list[int],
        params: NeRFParams,
        compute_normals: bool = False,
    ) -> dict[str, Tensor]:
        """ "density" [P, 1], "rgb" [P, 3] and (if `compute_normals`) unit "normals" [P, 3], minus the
        density gradient, at points [P, 3] seen along unit `directions` [P, 3]; slots as in `density`."""
        with torch.enable_grad() if compute_normals else nullcontext():
            if compute_normals and not positions.requires_grad:
                positions = positions.detach().requires_grad_(True)
            raw, geo = self._density_mlp(positions, slot, counts, params)
        outputs = {"density": density_from_raw(raw), "rgb": self._color_mlp(geo, directions, counts, params)}
        if compute_normals:
            with torch.enable_grad():
                (gradient,) = torch.autograd.grad(raw.sum(), positions, retain_graph=torch.is_grad_enabled())
            outputs["normals"] = -torch.nn.functional.normalize(gradient, dim=-1)
        return outputs

    def _density_mlp(self, positions: Tensor, slot: Tensor, counts: list[int], p: NeRFParams) -> tuple[Tensor, Tensor]:
        """Pre-activation density [P, 1] and geometry features [P, geo_feat_dim]."""
        features = hash_encode(self.normalize(positions), slot, p["tables"], self.grid)
        h = grouped_linear(features, p["density_w0"], p["density_b0"], counts, relu=True)
        out = grouped_linear(h, p["density_w1"], p["density_b1"], counts)
        return out[:, :1], out[:, 1:]

    def _color_mlp(self, geo: Tensor, directions: Tensor, counts: list[int], p: NeRFParams) -> Tensor:
        """rgb [P, 3] from geometry features [P, geo_feat_dim] and unit view directions [P, 3]."""
        sh = components_from_spherical_harmonics(self.sh_levels, directions)
        h = grouped_linear(torch.cat([geo, sh], dim=-1), p["color_w0"], p["color_b0"], counts, relu=True)
        return torch.sigmoid(grouped_linear(h, p["color_w1"], p["color_b1"], counts))
