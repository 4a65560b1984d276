"""Per-object latent codes and the hypernetwork that turns them into a whole NeRF.

A NeRF is plain data here: `NeRFParams`, a mapping name -> tensor with a leading object axis
(hash tables `[B, L, T, F]`, MLP weights `[B, in, out]`, biases `[B, out]`). The field
(`field.py`) is a pure function of (points, which object, params), so generating, batching,
finetuning and saving a NeRF are all the same code path.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NeRFParams = dict[str, Tensor]
"""name -> tensor with a leading object axis, e.g. tables [B, L, T, F], density_w0 [B, in, out]."""

ParamShapes = dict[str, tuple[int, ...]]
"""name -> shape of that parameter for one object (no object axis)."""

TABLE_INIT = 1e-4
"""Half-width of the uniform initial weights of the table head, Instant-NGP's range of initial table
values: a fresh hypernetwork's tables are near zero for every code (`fresh_params` draws a NeRF's
own tables uniform in it)."""

HEAD_INIT = 1e-3
"""Half-width of the uniform initial weights of the MLP heads: small, so a fresh hypernetwork makes
nearly the NeRF of the heads' biases (`init_params`) for every code."""

CODE_INIT_LOGVAR = -10.0
"""Initial log-variance of every code dimension (std e^-5, below the means' `init_std`): early samples
stay at their object's mean, and the KL term widens them as far as the reconstruction allows."""

BLEND_RANGE = (0.2, 0.8)
"""Range of the uniform blend weight of `Codebook.blends`: away from 0 and 1, so a sample is neither
of the two objects it blends."""


@dataclass
class Codes:
    """Latent codes of a batch of objects: shape drives geometry, colour drives appearance."""

    shape: Tensor
    """[B, shape_dim]"""
    color: Tensor
    """[B, color_dim]"""

    def rows(self, index: slice | Tensor) -> Codes:
        """The codes of the objects at `index` (a slice or index tensor along the batch axis)."""
        return Codes(self.shape[index], self.color[index])

    def lerp(self, other: Codes, shape_t: float, color_t: float) -> Codes:
        """Blend towards `other`, shape and colour separately (t = 0: self, t = 1: other)."""
        return Codes(torch.lerp(self.shape, other.shape, shape_t), torch.lerp(self.color, other.color, color_t))


class Codebook(nn.Module):
    """Variational codes of the training objects: a Gaussian (mean, log-variance) per object.

    In training the codes are reparameterised samples, at evaluation the means; `kl` is the
    KL divergence of the per-object Gaussians to N(0, I), which keeps the code space smooth
    enough to blend, sample from, and invert into.

    Rows are looked up with sparse gradients: only the objects of a batch get a gradient, and
    a sparse optimiser (SparseAdam) moves only those. Dense Adam would keep moving every code
    on stale momentum long after its object left the batch.
    """

    def __init__(self, num_objects: int, shape_dim: int, color_dim: int, init_std: float = 0.01) -> None:
        super().__init__()
        self.shape_mean = nn.Parameter(torch.randn(num_objects, shape_dim) * init_std)
        self.color_mean = nn.Parameter(torch.randn(num_objects, color_dim) * init_std)
        self.shape_logvar = nn.Parameter(torch.full((num_objects, shape_dim), CODE_INIT_LOGVAR))
        self.color_logvar = nn.Parameter(torch.full((num_objects, color_dim), CODE_INIT_LOGVAR))

    @property
    def num_objects(self) -> int:
        return self.shape_mean.shape[0]

    def _rows(self, table: Tensor, objects: Tensor) -> Tensor:
        return F.embedding(objects, table, sparse=True)

    def forward(self, objects: Tensor, sample: bool) -> Codes:
        """Codes of `objects` ([B] long): reparameterised samples if `sample`, else the means."""
        shape, color = self._rows(self.shape_mean, objects), self._rows(self.color_mean, objects)
        if sample:
            shape = shape + torch.randn_like(shape) * (0.5 * self._rows(self.shape_logvar, objects)).exp()
            color = color + torch.randn_like(color) * (0.5 * self._rows(self.color_logvar, objects)).exp()
        return Codes(shape, color)

    def blends(self, count: int, generator: torch.Generator) -> Codes:
        """`count` new objects' codes [count, D]: a shape between two random objects' shape means and
        a colour between two others' colour means (weights uniform in `BLEND_RANGE`).

        The codes lie near a thin manifold of the code space: independent Gaussian draws per
        dimension, even fitted to the codes, mostly land off it and render fog (half of 16 on the
        36 dev chairs), while blends stay on it.
        """
        parts = []
        low, high = BLEND_RANGE
        for table in (self.shape_mean.detach(), self.color_mean.detach()):
            a, b = torch.randint(len(table), (2, count), generator=generator)
            t = (low + (high - low) * torch.rand(count, 1, generator=generator)).to(table.device)
            parts.append(torch.lerp(table[a], table[b], t))
        return Codes(*parts)

    def kl(self, objects: Tensor) -> Tensor:
        """Mean KL(N(mean, var) || N(0, I)) per object over `objects` ([B] long), a scalar."""
        total = torch.zeros((), device=self.shape_mean.device)
        for mean, logvar in ((self.shape_mean, self.shape_logvar), (self.color_mean, self.color_logvar)):
            m, lv = self._rows(mean, objects), self._rows(logvar, objects)
            total = total + 0.5 * (m.square() + lv.exp() - 1.0 - lv).sum(dim=-1).mean()
        return total


def _trunk(in_dim: int, hidden: int, layers: int) -> nn.Sequential:
    modules: list[nn.Module] = []
    for i in range(layers):
        modules += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.ReLU(inplace=True)]
    return nn.Sequential(*modules)


class ParamHead(nn.Module):
    """Linear map from trunk features to a group of NeRF parameters, split by name.

    Initialised as `base + small code-dependent change`: the bias holds one sensible NeRF
    (`init_params`), the weight is small, so a fresh hypernetwork makes the same reasonable
    NeRF for every code and training moves objects apart from there.
    """

    def __init__(
        self, hidden: int, shapes: Mapping[str, tuple[int, ...]], init_params: NeRFParams, weight_scale: float
    ) -> None:
        super().__init__()
        self.shapes = dict(shapes)
        sizes = [math.prod(s) for s in shapes.values()]
        self.sizes = sizes
        self.linear = nn.Linear(hidden, sum(sizes))
        self._kept_grad: Tensor | None = None
        with torch.no_grad():
            self.linear.weight.uniform_(-weight_scale, weight_scale)
            self.linear.bias.copy_(torch.cat([init_params[name].reshape(-1) for name in shapes]))

    def forward(self, features: Tensor) -> NeRFParams:
        """[B, hidden] -> {name: [B, *shape]}"""
        flat = _LinearIntoKeptGrad.apply(features, self.linear.weight, self.linear.bias, self)
        return {
            name: chunk.reshape(features.shape[0], *shape)
            for (name, shape), chunk in zip(self.shapes.items(), flat.split(self.sizes, dim=-1), strict=True)
        }

    def add_weight_grad(self, grad_out: Tensor, features: Tensor) -> None:
        """weight.grad += grad_out^T @ features ([B, out] and [B, hidden]), into the memory of an earlier
        step's gradient when the optimiser has let go of it (`zero_grad(set_to_none=True)`)."""
        weight = self.linear.weight
        if weight.grad is not None:
            weight.grad.addmm_(grad_out.t(), features)
            return
        kept = self._kept_grad
        if kept is None or kept.shape != weight.shape or kept.dtype != weight.dtype or kept.device != weight.device:
            kept = self._kept_grad = torch.empty_like(weight)
        weight.grad = torch.mm(grad_out.t(), features, out=kept)


class _LinearIntoKeptGrad(torch.autograd.Function):
    """`features @ weight.T + bias` whose weight gradient `ParamHead.add_weight_grad` writes into
    memory kept from step to step instead of a fresh tensor.

    The table head's weight is 32 MiB ([L * T * F, hidden] fp32): a fresh gradient of that size is
    mapped anew by the allocator every step and faulted in page by page; writing into memory kept
    from the step before avoids it (`benchmarks/step_profile.py` measures the step). The gradient goes
    to `weight.grad` only through `.backward()` (not `torch.autograd.grad`), the only way the
    hypernetwork is trained.
    """

    @staticmethod
    def forward(ctx: Any, features: Tensor, weight: Tensor, bias: Tensor, head: ParamHead) -> Tensor:
        ctx.save_for_backward(features, weight)
        ctx.head = head
        # As (weight @ features^T)^T: with few objects (rows of `features`) MKL runs this form at
        # about twice the speed of features @ weight^T for the table head.
        return torch.addmm(bias[:, None], weight, features.t()).t().contiguous()

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        features, weight = ctx.saved_tensors
        if ctx.needs_input_grad[1]:
            ctx.head.add_weight_grad(grad_out, features)
        grad_features = grad_out @ weight if ctx.needs_input_grad[0] else None
        grad_bias = grad_out.sum(dim=0) if ctx.needs_input_grad[2] else None
        return grad_features, None, grad_bias, None


class HyperNetwork(nn.Module):
    """Codes -> complete NeRF parameters.

    The shape code drives the hash tables and the density MLP; the colour code drives the
    colour MLP, so shape and appearance can be mixed between objects.

    Args:
        shape_dim, color_dim: code sizes.
        hidden, layers: width and depth of each trunk MLP.
        table_shape: (L, T, F) of the hash tables.
        density_shapes, color_shapes: per-object shapes of the two MLPs' weights.
        init_params: one NeRF's worth of initial MLP weights (the heads' biases).
        table_init: half-width of the uniform initial table values (`TABLE_INIT`).
    """

    def __init__(
        self,
        shape_dim: int,
        color_dim: int,
        hidden: int,
        layers: int,
        table_shape: tuple[int, int, int],
        density_shapes: ParamShapes,
        color_shapes: ParamShapes,
        init_params: NeRFParams,
        table_init: float = TABLE_INIT,
    ) -> None:
        super().__init__()
        self.shape_trunk = _trunk(shape_dim, hidden, layers)
        self.color_trunk = _trunk(color_dim, hidden, layers)
        tables = {"tables": table_shape}
        zero_tables = {"tables": torch.zeros(table_shape)}
        self.table_head = ParamHead(hidden, tables, zero_tables, weight_scale=table_init)
        self.density_head = ParamHead(hidden, density_shapes, init_params, weight_scale=HEAD_INIT)
        self.color_head = ParamHead(hidden, color_shapes, init_params, weight_scale=HEAD_INIT)

    def forward(self, codes: Codes) -> NeRFParams:
        """Codes of B objects -> {name: [B, ...]} parameters of B NeRFs."""
        shape_features = self.shape_trunk(codes.shape)
        color_features = self.color_trunk(codes.color)
        return {
            **self.table_head(shape_features),
            **self.density_head(shape_features),
            **self.color_head(color_features),
        }

    def param_shapes(self) -> ParamShapes:
        """Per-object shape of every generated parameter (no object axis)."""
        return {**self.table_head.shapes, **self.density_head.shapes, **self.color_head.shapes}

    def fingerprint(self) -> str:
        """sha256 (hex, 16 chars) of the weights, in state-dict order: ties files of codes or NeRFs
        to the prior that made them, so another checkpoint's file is refused, not rendered as garbage."""
        digest = hashlib.sha256()
        for name, tensor in self.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
        return digest.hexdigest()[:16]
