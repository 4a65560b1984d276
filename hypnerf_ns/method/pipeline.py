"""The hyp-nerf pipeline: nerfstudio's VanillaPipeline, with distributed training that runs on
CPUs (gloo) as on GPUs (NCCL) and shards the category's objects over the processes.

nerfstudio wraps the model in DistributedDataParallel, which rejects the codebook's sparse
gradients and (with its `device_ids=[local_rank]`) CPU modules. Instead, here: every process
starts from rank 0's weights (broadcast), draws its rays from its own shard of the objects
(object k goes to rank k mod world size), and the optimisers average the gradients over the
processes before each step (optimizers.py), sparse codebook rows included: the gradient of the
mean loss over all processes' rays, with only the rows of objects some process saw. Every
process then takes the same step, so the weights stay identical and checkpoints are the
single-process format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.distributed as dist
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig
from torch.cuda.amp.grad_scaler import GradScaler

from hypnerf_ns.data.datamanager import CategoryDataManager
from hypnerf_ns.method.checkpoints import allow_numpy_scalars_in_checkpoints


@dataclass
class HypNeRFPipelineConfig(VanillaPipelineConfig):
    _target: type = field(default_factory=lambda: HypNeRFPipeline)


class HypNeRFPipeline(VanillaPipeline):
    """VanillaPipeline without the DDP wrapper: one shard of objects per process, weights from rank 0."""

    def __init__(
        self,
        config: HypNeRFPipelineConfig,
        device: str,
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        grad_scaler: GradScaler | None = None,
    ) -> None:
        allow_numpy_scalars_in_checkpoints()  # before the Trainer or eval_setup loads a checkpoint
        # world_size 1 for the parent: it would wrap the model in DDP and step DDP samplers.
        super().__init__(config, device, test_mode, world_size=1, local_rank=local_rank, grad_scaler=grad_scaler)
        self.processes = world_size
        if world_size > 1:
            assert isinstance(self.datamanager, CategoryDataManager)
            self.datamanager.shard(dist.get_rank(), world_size)
            for value in self.model.state_dict().values():  # tensors share the weights' storage
                if isinstance(value, torch.Tensor):
                    dist.broadcast(value, src=0)
