"""Optimizer configs tuned for the CPU, whose optimisers average gradients over processes.

In distributed training (pipeline.py) each optimiser first averages its parameters' gradients
over all processes, then steps; every process takes the same step. A sparse gradient (the
codebook's rows of the objects in a batch) is averaged over the union of the rows any process
touched and stays sparse, so SparseAdam still moves only those rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from nerfstudio.engine.optimizers import AdamOptimizerConfig, OptimizerConfig
from torch import Tensor


def average_over_processes(params: Iterable[Tensor]) -> None:
    """Replace each gradient of `params` by its mean over all processes (nothing in one process).

    Every process must call this with the same parameters in the same order (collectives).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    world = dist.get_world_size()
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        if param.grad.is_sparse:
            grad = param.grad.coalesce()
            dense = grad.to_dense()
            touched = torch.zeros(param.shape[0], dtype=torch.uint8, device=param.device)
            touched[grad.indices()[0]] = 1
            dist.all_reduce(dense)
            dist.all_reduce(touched, op=dist.ReduceOp.MAX)
            rows = touched.nonzero()[:, 0]
            param.grad = torch.sparse_coo_tensor(rows[None], dense[rows] / world, param.shape)
        else:
            dist.all_reduce(param.grad)
            param.grad /= world


class _ProcessAveraged:
    """Mixin for a torch optimiser: average gradients over processes before each step."""

    param_groups: list

    def step(self, closure: object | None = None):
        average_over_processes([p for group in self.param_groups for p in group["params"]])
        return super().step(closure)  # type: ignore[misc]


class ProcessAveragedAdam(_ProcessAveraged, torch.optim.Adam):
    pass


class ProcessAveragedSparseAdam(_ProcessAveraged, torch.optim.SparseAdam):
    pass


@dataclass
class FusedAdamOptimizerConfig(AdamOptimizerConfig):
    """Adam with torch's fused kernel, which also runs on the CPU.

    The hypernetwork's table head holds most of the parameters (~8M); plain (for-loop) Adam runs
    one tensor operation after another over them, the fused kernel updates each entry in one pass,
    several times faster on the CPU.
    """

    fused: bool = True

    def setup(self, params) -> torch.optim.Optimizer:
        return ProcessAveragedAdam(params, lr=self.lr, eps=self.eps, weight_decay=self.weight_decay, fused=self.fused)


@dataclass
class SparseAdamOptimizerConfig(OptimizerConfig):
    """Lazy Adam for the codebook: rows without a gradient in a step are left alone."""

    def setup(self, params) -> torch.optim.Optimizer:
        return ProcessAveragedSparseAdam(params, lr=self.lr, eps=self.eps)
