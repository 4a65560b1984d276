"""Category DataManager: each training batch holds rays of several objects, images read lazily.

A subclass of nerfstudio's VanillaDataManager (so `ns-export` accepts it). A training batch
picks `objects_per_batch` objects (of this process's shard), `views_per_object` random views of
each, and `num_rays_per_batch / objects_per_batch` random pixels of each object from those views.
Rays come out grouped by object, which lets the model run each object's generated MLP as one
matrix product.

Training images are not all loaded at startup (nerfstudio's CacheDataloader does that): they are
decoded when a batch first needs them and kept, as uint8, in a cache bounded in bytes that drops
the least recently used image first. Memory is then the cache bound plus per-object codes and
optimiser state, whatever the number of objects.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.data.datasets.base_dataset import InputDataset
from nerfstudio.data.pixel_samplers import PixelSampler, PixelSamplerConfig
from nerfstudio.model_components.ray_generators import RayGenerator
from rich.console import Console
from torch import Tensor

from hypnerf_ns.data.dataparser import DEFAULT_DATA, CategoryDataParserConfig
from hypnerf_ns.data.furniture import prepare_default_category
from hypnerf_ns.errors import InputError

CONSOLE = Console(stderr=True)


@dataclass
class ObjectBatchPixelSamplerConfig(PixelSamplerConfig):
    _target: type = field(default_factory=lambda: ObjectBatchPixelSampler)
    objects_per_batch: int = 8
    """Objects in each batch; every object gets num_rays_per_batch / objects_per_batch rays."""


class ObjectBatchPixelSampler(PixelSampler):
    """Samples pixels object by object. Needs `object_index_of_image` ([num images] long) at setup."""

    config: ObjectBatchPixelSamplerConfig

    def __init__(
        self,
        config: ObjectBatchPixelSamplerConfig,
        object_index_of_image: Tensor,
        object_weights: Tensor | None = None,
        **kwargs,
    ) -> None:
        super().__init__(config, **kwargs)
        self.object_index_of_image = object_index_of_image.long()
        self.object_weights = object_weights
        """[num objects] how often each object is drawn, relative to the others (None: uniformly)."""
        self.rank, self.world_size = 0, 1  # choose only objects k with k % world_size == rank (`shard`)

    def shard(self, rank: int, world_size: int) -> None:
        """Choose only objects k with k mod `world_size` == `rank` (one process's share)."""
        self.rank, self.world_size = rank, world_size

    def choose_objects(self, num_objects: int) -> Tensor:
        """[K] sorted object indices of a batch: `objects_per_batch` of this process's shard of `num_objects`."""
        mine = torch.arange(self.rank, num_objects, self.world_size)
        count = min(self.config.objects_per_batch, len(mine))
        if self.object_weights is None:
            chosen = torch.randperm(len(mine))[:count]
        else:
            chosen = torch.multinomial(self.object_weights[mine].double(), count, replacement=False)
        return mine[chosen].sort().values

    def sample(self, image_batch: dict) -> dict:
        """Pixels of `image_batch` (images [N, H, W, C] of the views of K objects, image_idx [N]),
        `num_rays_per_batch / K` per object from random views of it, grouped by object.

        Returns {"image": [K * R, C], "indices": [K * R, 3] (camera, y, x)} plus any other
        per-pixel entries of the batch, with R rays per object.
        """
        images: Tensor = image_batch["image"]
        image_idx: Tensor = image_batch["image_idx"].cpu()
        _num_images, height, width = images.shape[:3]
        objects = self.object_index_of_image[image_idx]
        counts = torch.bincount(objects)
        by_object = torch.argsort(objects, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        chosen = torch.nonzero(counts)[:, 0]  # [K], ascending
        num_objects = len(chosen)
        rays_per_object = self.num_rays_per_batch // num_objects
        pick = (torch.rand(num_objects, rays_per_object) * counts[chosen, None]).long()
        c = by_object[starts[chosen, None] + pick].reshape(-1)
        y = torch.randint(0, height, c.shape)
        x = torch.randint(0, width, c.shape)
        batch = {key: value[c, y, x] for key, value in image_batch.items() if key != "image_idx" and value is not None}
        batch["indices"] = torch.stack([image_idx[c], y, x], dim=-1)
        return batch


class ImageCache:
    """Decoded images by dataset index, uint8 [H, W, C]; beyond `max_bytes` the least recently used go."""

    def __init__(self, load: Callable[[int], Tensor], max_bytes: int) -> None:
        self.load, self.max_bytes = load, max_bytes
        self.images: OrderedDict[int, Tensor] = OrderedDict()
        self.bytes = 0
        self.misses = 0

    def __getitem__(self, index: int) -> Tensor:
        image = self.images.get(index)
        if image is not None:
            self.images.move_to_end(index)
            return image
        image = self.load(index)
        self.misses += 1
        self.images[index] = image
        self.bytes += image.numel() * image.element_size()
        while self.bytes > self.max_bytes and len(self.images) > 1:
            _, dropped = self.images.popitem(last=False)
            self.bytes -= dropped.numel() * dropped.element_size()
        return image


def read_checked(dataset: InputDataset, index: int) -> Tensor:
    """Image `index` of a dataset, uint8 [H, W, C]; InputError naming the file if it is unreadable
    or not the size of its camera (the dataparser reads only each object's first image header)."""
    path = dataset.image_filenames[index]
    try:
        image = torch.from_numpy(dataset.get_numpy_image(index))
    except OSError:
        raise InputError(path, "not a readable image") from None
    expected = (int(dataset.cameras.height[index]), int(dataset.cameras.width[index]))
    if tuple(image.shape[:2]) != expected:
        raise InputError(
            path,
            f"image is {image.shape[1]}x{image.shape[0]} (after scaling) "
            f"but the other views of its object are {expected[1]}x{expected[0]}",
        )
    return image


@dataclass
class CategoryDataManagerConfig(VanillaDataManagerConfig):
    _target: type = field(default_factory=lambda: CategoryDataManager)
    dataparser: CategoryDataParserConfig = field(default_factory=CategoryDataParserConfig)
    pixel_sampler: ObjectBatchPixelSamplerConfig = field(default_factory=ObjectBatchPixelSamplerConfig)
    views_per_object: int = 8
    """Views of each object in a batch whose pixels the batch draws from."""
    image_cache_gb: float = 4.0
    """Decoded training images kept in memory (uint8); the least recently used beyond this are read again when
    needed."""


class CategoryDataManager(VanillaDataManager):
    """VanillaDataManager whose batches are rays of several objects, grouped by object."""

    config: CategoryDataManagerConfig

    def __init__(self, config: CategoryDataManagerConfig, *args: Any, **kwargs: Any) -> None:
        root = Path(config.data if config.data is not None else config.dataparser.data)
        if root == DEFAULT_DATA and not (root / "objects.json").is_file():
            prepare_default_category(root)  # `ns-train hyp-nerf` with no --data: the demo category, once
        super().__init__(config, *args, **kwargs)
        self.train_dataparser_outputs = self._train_outputs  # hidden while the parent was constructing, see below

    def create_train_dataset(self) -> InputDataset:
        """The training dataset. Also hides the dataparser outputs until the constructor ends: that
        skips VanillaDataManager's check for views of mixed sizes, which indexes every training
        camera one by one (linear in the views: most of the startup of a large category); a category
        has one size."""
        dataset = super().create_train_dataset()
        # None on purpose until the constructor ends (the parent's attribute is typed as never None)
        self._train_outputs, self.train_dataparser_outputs = self.train_dataparser_outputs, None  # type: ignore[assignment]
        return dataset

    def shard(self, rank: int, world_size: int) -> None:
        """Training rays only from this process's share of the objects (see `ObjectBatchPixelSampler.shard`)."""
        assert isinstance(self.train_pixel_sampler, ObjectBatchPixelSampler)
        self.train_pixel_sampler.shard(rank, world_size)

    def setup_train(self) -> None:
        """The training images as a lazy cache (no loading here), the pixel sampler, the ray generator."""
        assert self.train_dataset is not None
        dataset = self.train_dataset
        self.train_images = ImageCache(
            lambda index: read_checked(dataset, index), int(self.config.image_cache_gb * 2**30)
        )
        sampler = self._get_pixel_sampler(dataset, self.config.train_num_rays_per_batch)
        self.train_pixel_sampler = sampler
        self.train_ray_generator = RayGenerator(dataset.cameras.to(self.device))
        object_of_image = sampler.object_index_of_image
        order = torch.argsort(object_of_image, stable=True)
        self.views_of_object: list[Tensor] = list(torch.split(order, torch.bincount(object_of_image).tolist()))
        self.skipped_views: list[Path] = []
        """Files of the training views skipped so far (unreadable, or of the wrong size)."""

    def next_train(self, step: int) -> tuple[RayBundle, dict]:
        """Rays [R] of `objects_per_batch` objects of this process's shard, from `views_per_object`
        random views each, grouped by object; and their batch ({"image": [R, C], "indices": [R, 3]}).
        A view that cannot be read is skipped from then on (`skip_view`)."""
        self.train_count += 1
        sampler = self.train_pixel_sampler
        assert isinstance(sampler, ObjectBatchPixelSampler)
        views, images = [], []
        for k in sampler.choose_objects(len(self.views_of_object)).tolist():
            read: list[tuple[int, Tensor]] = []
            while not read:  # views drawn again while every drawn one was unreadable
                own = self.views_of_object[k]
                drawn = own[torch.randperm(len(own))[: self.config.views_per_object]].tolist()
                read = [(i, image) for i in drawn if (image := self.read_view(k, i)) is not None]
            views += [i for i, _ in read]
            images += [image for _, image in read]
        image_idx = torch.tensor(views, dtype=torch.long)
        batch = sampler.sample({"image": torch.stack(images).to(self.device).float() / 255.0, "image_idx": image_idx})
        return self.train_ray_generator(batch["indices"]), batch

    def read_view(self, object_index: int, image_index: int) -> Tensor | None:
        """Training image `image_index` (of object `object_index`), uint8 [H, W, C]; None if it
        cannot be read or has the wrong size, after `skip_view`."""
        try:
            return self.train_images[image_index]
        except InputError as error:
            self.skip_view(object_index, image_index, error)
            return None

    def skip_view(self, object_index: int, image_index: int, error: InputError) -> None:
        """Leave a bad view out of training from now on, with one warning line naming the file; an
        object left without views stops training with an InputError naming its folder."""
        own = self.views_of_object[object_index]
        self.views_of_object[object_index] = own[own != image_index]
        self.skipped_views.append(error.path)
        CONSOLE.print(
            f"warning: skipping {error.path}: {error.problem} ({len(self.skipped_views)} views skipped so far)",
            soft_wrap=True,
        )
        if len(self.views_of_object[object_index]) == 0:
            raise InputError(error.path.parent.parent, "no training view of this object can be read")

    def _get_pixel_sampler(self, dataset, num_rays_per_batch: int) -> ObjectBatchPixelSampler:
        object_index = torch.tensor(dataset.metadata["object_index_of_image"], dtype=torch.long)
        weights = dataset.metadata.get("object_weights")
        uniform = weights is None or len(set(weights)) <= 1
        return self.config.pixel_sampler.setup(
            num_rays_per_batch=num_rays_per_batch,
            object_index_of_image=object_index,
            object_weights=None if uniform else torch.tensor(weights),
        )
