"""Training batches: objects of this process's shard, images read lazily into a cache bounded in bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import small_config

from hypnerf_ns.data.datamanager import ImageCache


def test_image_cache_keeps_the_recently_used_within_its_bound() -> None:
    loads = []

    def load(index: int) -> torch.Tensor:
        loads.append(index)
        return torch.full((4, 4, 4), index, dtype=torch.uint8)  # 64 bytes

    cache = ImageCache(load, max_bytes=3 * 64)
    for index in (0, 1, 2, 0, 3):  # 3 evicts 1, the least recently used (0 was used again)
        assert int(cache[index][0, 0, 0]) == index
    assert sorted(cache.images) == [0, 2, 3] and cache.bytes == 3 * 64
    cache[1]
    assert loads == [0, 1, 2, 3, 1] and cache.misses == 5


@pytest.mark.slow
def test_batches_group_rays_by_object_from_lazily_read_images(three_chairs: Path, tmp_path: Path) -> None:
    config = small_config(three_chairs, tmp_path, steps=1)
    config.pipeline.datamanager.views_per_object = 3
    config.pipeline.datamanager.image_cache_gb = 10 * 32 * 32 * 4 / 2**30  # ten 32 px RGBA images
    config.pipeline.datamanager.pixel_sampler.objects_per_batch = 2
    datamanager = config.pipeline.datamanager.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)
    assert len(datamanager.train_images.images) == 0, "nothing is read at setup"
    dataset = datamanager.train_dataset
    objects_of_image = datamanager.train_pixel_sampler.object_index_of_image
    for _ in range(4):
        rays, batch = datamanager.next_train(0)
        cameras, y, x = batch["indices"].unbind(-1)
        objects = objects_of_image[cameras]
        assert len(objects.unique()) == 2 and bool((objects[1:] >= objects[:-1]).all()), (
            "two objects, rays grouped by object"
        )
        assert all(len(cameras[objects == k].unique()) <= 3 for k in objects.unique().tolist()), (
            "at most 3 views per object"
        )
        assert datamanager.train_images.bytes <= 10 * 32 * 32 * 4
        for k in range(0, len(cameras), 97):
            expected = dataset.get_image_float32(int(cameras[k]))[y[k], x[k]]
            assert torch.allclose(batch["image"][k], expected), "the batch's colours are the images' pixels"
        assert torch.allclose(rays.origins[0], dataset.cameras.camera_to_worlds[cameras[0], :3, 3])

    datamanager.shard(1, 2)
    _, batch = datamanager.next_train(0)
    assert set(objects_of_image[batch["indices"][:, 0]].tolist()) == {1}, "rank 1 of 2 draws only object 1 of three"


def test_bad_views_are_skipped_with_one_warning_naming_each(
    tiny_category: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A view of another size or an unreadable one is skipped when first read, with one warning naming
    the file, and never drawn again; training goes on; an object left without views stops it."""
    from PIL import Image

    from hypnerf_ns.errors import InputError

    Image.new("RGBA", (6, 6)).save(tiny_category / "red" / "train" / "r_2.png")  # the others are 8x8
    (tiny_category / "blue" / "train" / "r_1.png").write_bytes(b"not a png")
    config = small_config(tiny_category, tmp_path, steps=1, scale=1.0)
    config.pipeline.datamanager.pixel_sampler.objects_per_batch = 2
    datamanager = config.pipeline.datamanager.setup(
        device="cpu", test_mode="val", world_size=1, local_rank=0
    )  # only first images are opened here
    for step in range(10):  # a batch reads every view of both objects (3 each)
        _, batch = datamanager.next_train(step)
        assert batch["image"].shape == (1536, 4)
    warnings = " ".join(capsys.readouterr().err.split())
    assert "red/train/r_2.png: image is 6x6" in warnings and "blue/train/r_1.png: not a readable image" in warnings
    assert warnings.count("warning: skipping") == 2, "each bad view is named once"
    skipped = sorted(str(path.relative_to(tiny_category)) for path in datamanager.skipped_views)
    assert skipped == ["blue/train/r_1.png", "red/train/r_2.png"]
    assert [len(views) for views in datamanager.views_of_object] == [2, 2]

    for k in (0, 1):  # the red square's last good views broken too
        (tiny_category / "red" / "train" / f"r_{k}.png").write_bytes(b"not a png")
    datamanager.train_images.images.clear()  # read again from disk
    with pytest.raises(InputError, match=r"red: no training view of this object can be read"):
        for step in range(10):
            datamanager.next_train(step)


@pytest.mark.slow
def test_training_reports_the_skipped_views_at_its_end(
    tiny_category: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tiny_category / "blue" / "train" / "r_1.png").write_bytes(b"not a png")
    config = small_config(tiny_category, tmp_path, steps=30, scale=1.0)
    config.pipeline.datamanager.pixel_sampler.objects_per_batch = 2
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.train()
    printed = " ".join(capsys.readouterr().out.split())
    assert "skipped 1 training view(s), unreadable or of the wrong size:" in printed
    assert "blue/train/r_1.png" in printed.split("wrong size:")[-1]
