"""Category DataManager: each training batch holds rays of several objects.

A subclass of nerfstudio's VanillaDataManager (so `ns-export` accepts it); only the pixel
sampler differs: it picks `objects_per_batch` objects, then `num_rays_per_batch /
objects_per_batch` random pixels from random views of each. Rays come out grouped by object,
which lets the model run each object's generated MLP as one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Type

import torch
from torch import Tensor
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.data.pixel_samplers import PixelSampler, PixelSamplerConfig

from hypnerf_ns.data.dataparser import CategoryDataParserConfig


@dataclass
class ObjectBatchPixelSamplerConfig(PixelSamplerConfig):
    _target: Type = field(default_factory=lambda: ObjectBatchPixelSampler)
    objects_per_batch: int = 8
    """Objects in each batch; every object gets num_rays_per_batch / objects_per_batch rays."""


class ObjectBatchPixelSampler(PixelSampler):
    """Samples pixels object by object. Needs `object_index_of_image` ([num images] long) at setup."""

    config: ObjectBatchPixelSamplerConfig

    def __init__(self, config: ObjectBatchPixelSamplerConfig, object_index_of_image: Tensor, **kwargs) -> None:  # noqa: ANN003
        super().__init__(config, **kwargs)
        self.object_index_of_image = object_index_of_image.long()
        self.rank, self.world_size = 0, 1  # draw only objects k with k % world_size == rank (`shard`)

    def shard(self, rank: int, world_size: int) -> None:
        """Draw rays only from objects k with k mod `world_size` == `rank` (one process's share)."""
        self.rank, self.world_size = rank, world_size

    def sample(self, image_batch: Dict) -> Dict:
        """Pixels of `image_batch` (images [N, H, W, C], image_idx [N]), grouped by object.

        Returns {"image": [K * R, C], "indices": [K * R, 3] (camera, y, x)} plus any other
        per-pixel entries of the batch, with K objects and R rays per object.
        """
        images: Tensor = image_batch["image"]
        image_idx: Tensor = image_batch["image_idx"].cpu()
        num_images, height, width = images.shape[:3]
        objects = self.object_index_of_image[image_idx]
        counts = torch.bincount(objects)
        by_object = torch.argsort(objects, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        present = torch.nonzero(counts)[:, 0]
        present = present[present % self.world_size == self.rank]
        num_objects = min(self.config.objects_per_batch, len(present))
        chosen = present[torch.randperm(len(present))[:num_objects]].sort().values  # [K]
        rays_per_object = self.num_rays_per_batch // num_objects
        pick = (torch.rand(num_objects, rays_per_object) * counts[chosen, None]).long()
        c = by_object[starts[chosen, None] + pick].reshape(-1)
        y = torch.randint(0, height, c.shape)
        x = torch.randint(0, width, c.shape)
        batch = {key: value[c, y, x] for key, value in image_batch.items() if key != "image_idx" and value is not None}
        batch["indices"] = torch.stack([image_idx[c], y, x], dim=-1)
        return batch


@dataclass
class CategoryDataManagerConfig(VanillaDataManagerConfig):
    _target: Type = field(default_factory=lambda: CategoryDataManager)
    dataparser: CategoryDataParserConfig = field(default_factory=CategoryDataParserConfig)
    pixel_sampler: ObjectBatchPixelSamplerConfig = field(default_factory=ObjectBatchPixelSamplerConfig)


class CategoryDataManager(VanillaDataManager):
    """VanillaDataManager whose batches are rays of several objects, grouped by object."""

    config: CategoryDataManagerConfig

    def shard(self, rank: int, world_size: int) -> None:
        """Training rays only from this process's share of the objects (see `ObjectBatchPixelSampler.shard`)."""
        assert isinstance(self.train_pixel_sampler, ObjectBatchPixelSampler)
        self.train_pixel_sampler.shard(rank, world_size)

    def _get_pixel_sampler(self, dataset, num_rays_per_batch: int) -> PixelSampler:  # noqa: ANN001 - nerfstudio's signature
        object_index = torch.tensor(dataset.metadata["object_index_of_image"], dtype=torch.long)
        return self.config.pixel_sampler.setup(num_rays_per_batch=num_rays_per_batch, object_index_of_image=object_index)
