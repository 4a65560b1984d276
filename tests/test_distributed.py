"""Distributed training on the CPU: two gloo processes on localhost, as `ns-train --machine.num-devices 2`
runs them (nerfstudio's launcher itself asserts CUDA, so the test starts the processes the same way
without that check)."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = pytest.mark.slow

STEPS = 6


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker(rank: int, world_size: int, url: str, data: Path, output: Path, report: Path) -> None:
    """One process: join the group, train STEPS steps, report the objects it drew and a hash of its weights."""
    from conftest import small_config

    from hypnerf_ns.method.training import train_step

    dist.init_process_group("gloo", init_method=url, world_size=world_size, rank=rank)
    try:
        torch.manual_seed(rank)  # each rank draws its own rays; DDP broadcasts rank 0's initial weights
        config = small_config(data, output, steps=STEPS)
        config.pipeline.datamanager.pixel_sampler.objects_per_batch = 2
        trainer = config.setup(local_rank=rank, world_size=world_size)
        trainer.setup()
        sampler = trainer.pipeline.datamanager.train_pixel_sampler
        drawn: set = set()
        sample = sampler.sample

        def recording(image_batch):
            batch = sample(image_batch)
            drawn.update(sampler.object_index_of_image[batch["indices"][:, 0]].tolist())
            return batch

        sampler.sample = recording
        losses = [train_step(trainer, step).loss for step in range(STEPS)]
        model = trainer.pipeline.model
        digest = hashlib.sha256()
        for name, value in sorted(model.state_dict().items()):
            if isinstance(value, torch.Tensor):
                digest.update(name.encode() + value.detach().cpu().contiguous().numpy().tobytes())
        if rank == 0:
            trainer.save_checkpoint(STEPS - 1)
        result = {
            "objects": sorted(drawn),
            "losses": losses,
            "weights": digest.hexdigest(),
            "checkpoints": str(trainer.checkpoint_dir),
        }
        (report / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_shard_objects_and_stay_in_sync(three_chairs: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    report.mkdir()
    url = f"tcp://127.0.0.1:{free_port()}"
    mp.spawn(worker, args=(2, url, three_chairs, tmp_path / "run", report), nprocs=2, join=True)
    ranks = [json.loads((report / f"rank{r}.json").read_text()) for r in range(2)]

    assert ranks[0]["objects"] == [0, 2] and ranks[1]["objects"] == [1], "each rank draws its own objects (k mod 2)"
    assert all(torch.isfinite(torch.tensor(r["losses"])).all() for r in ranks)
    assert ranks[0]["weights"] == ranks[1]["weights"], (
        "the ranks' weights (codes, hypernetwork, grids) are identical after the steps"
    )

    checkpoint = next(Path(ranks[0]["checkpoints"]).glob("step-*.ckpt"))
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["pipeline"]
    assert not any("module." in key for key in state), "checkpoints keep single-process key names"
    assert "_model.codebook.shape_mean" in state


def averaging_worker(rank: int, world_size: int, url: str, report: Path) -> None:
    """Average a sparse (codebook-like) and a dense gradient over two processes, then take a SparseAdam step."""
    from hypnerf_ns.method.optimizers import ProcessAveragedSparseAdam, average_over_processes

    dist.init_process_group("gloo", init_method=url, world_size=world_size, rank=rank)
    try:
        codes = torch.nn.Parameter(torch.zeros(5, 2))
        rows = [0, 1] if rank == 0 else [1, 3]
        codes.grad = torch.sparse_coo_tensor(torch.tensor([rows]), torch.full((2, 2), float(rank + 1)), (5, 2))
        dense = torch.nn.Parameter(torch.zeros(3))
        dense.grad = torch.full((3,), float(rank))
        average_over_processes([codes, dense])
        grad = codes.grad.coalesce()
        result = {
            "rows": grad.indices()[0].tolist(),
            "values": grad.values()[:, 0].tolist(),
            "dense": dense.grad.tolist(),
        }
        codes.grad = torch.sparse_coo_tensor(torch.tensor([rows]), torch.full((2, 2), float(rank + 1)), (5, 2))
        ProcessAveragedSparseAdam([codes], lr=0.1).step()
        result["moved_rows"] = (codes.detach().abs().sum(dim=1) > 0).nonzero()[:, 0].tolist()
        (report / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def test_sparse_gradients_average_over_the_union_of_rows(tmp_path: Path) -> None:
    mp.spawn(averaging_worker, args=(2, f"tcp://127.0.0.1:{free_port()}", tmp_path), nprocs=2, join=True)
    for rank in range(2):
        result = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert result["rows"] == [0, 1, 3], "the rows either process touched"
        assert result["values"] == [0.5, 1.5, 1.0], "summed over processes, divided by 2"
        assert result["dense"] == [0.5, 0.5, 0.5]
        assert result["moved_rows"] == [0, 1, 3], "SparseAdam leaves the rows nobody saw alone"
