"""Where a training step goes at steady state: time and profile the steps of a warmed-up prior.

Trains the default `hyp-nerf` config (as `benchmarks/train.py` does) for `--warmup-steps` once
and keeps that trainer's checkpoint in `--workdir`; every later run starts from it, so runs
before and after a change to the code measure the same state (late training: few samples per
ray, occupancy grids settled). Then times `--steps` steps and profiles `--profile-steps` more
with torch's profiler (operators by self CPU time per step).

    python benchmarks/step_profile.py --data ../shared/data/chairs-dev --warmup-steps 8000

Prints a table and writes JSON (default benchmarks/results/step-profile.json).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import tyro
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from rich.console import Console
from rich.table import Table
from torch.profiler import ProfilerActivity, profile

from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.method.training import stepped_config, train_step
from hypnerf_ns.progress import progress_bar
from method_configs import hyp_nerf

CONSOLE = Console()


@dataclass
class Args:
    data: Path = Path("../shared/data/chairs-dev")
    """Category root."""
    warmup_steps: int = 8000
    """Steps trained once before measuring (kept in --workdir and reused)."""
    steps: int = 200
    """Steps timed."""
    profile_steps: int = 30
    """Steps profiled after the timed ones (0: none)."""
    resolution_scale: float = 0.5
    workdir: Path = Path("outputs/step-profile")
    output: Path = Path("benchmarks/results/step-profile.json")
    top: int = 25
    """Operators listed."""
    by_shape: bool = False
    """List operators per input shape (tells which matrix product is which)."""
    seed: int = 0


def trainer_config(args: Args) -> TrainerConfig:
    """The benchmark's trainer configuration; its checkpoints go to one fixed folder in --workdir."""
    config = stepped_config(hyp_nerf.config, args.data, args.workdir, args.resolution_scale, args.seed)
    config.timestamp = "warm"
    return config


def warm_trainer(args: Args) -> tuple[Trainer, int]:
    """A trainer `--warmup-steps` into training (trained now if no checkpoint is kept) and its step."""
    config = trainer_config(args)
    loaded = (config.get_checkpoint_dir() / f"step-{args.warmup_steps:09d}.ckpt").is_file()
    if loaded:
        config.load_dir, config.load_step = config.get_checkpoint_dir(), args.warmup_steps
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    if loaded:
        return trainer, args.warmup_steps + 1
    with progress_bar() as progress:
        for step in progress.track(range(args.warmup_steps), description="warm-up training"):
            train_step(trainer, step)
    trainer.save_checkpoint(args.warmup_steps)
    return trainer, args.warmup_steps + 1


def operator_table(prof: Any, steps: int, top: int, by_shape: bool) -> list[dict[str, Any]]:
    """The `top` operators (per input shape if `by_shape`) by self CPU time: name, ms per step, calls per step."""
    events = sorted(
        prof.key_averages(group_by_input_shape=by_shape), key=lambda e: e.self_cpu_time_total, reverse=True
    )[:top]
    return [
        {
            "name": e.key + (f" {e.input_shapes}" if by_shape else ""),
            "self_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
            "calls_per_step": e.count / steps,
        }
        for e in events
    ]


def main(args: Args) -> None:
    torch.manual_seed(args.seed)
    trainer, first = warm_trainer(args)
    rays_per_step = trainer.pipeline.datamanager.config.train_num_rays_per_batch
    for step in range(first, first + 5):  # kernels loaded, caches warm
        train_step(trainer, step)
    first += 5
    seconds, samples = [], []
    with progress_bar() as progress:
        for step in progress.track(range(first, first + args.steps), description="timing steps"):
            result = train_step(trainer, step)
            seconds.append(result.seconds)
            samples.append(result.metrics["samples_per_ray"] * rays_per_step)
    first += args.steps
    operators: list[dict[str, Any]] = []
    if args.profile_steps:
        with profile(activities=[ProfilerActivity.CPU], record_shapes=args.by_shape) as prof:
            for step in range(first, first + args.profile_steps):
                train_step(trainer, step)
        operators = operator_table(prof, args.profile_steps, args.top, args.by_shape)

    summary = {
        "benchmark": "step_profile",
        "data": str(args.data),
        "warmup_steps": args.warmup_steps,
        "steps": args.steps,
        "threads": torch.get_num_threads(),
        "median_ms_per_step": 1e3 * statistics.median(seconds),
        "mean_ms_per_step": 1e3 * sum(seconds) / len(seconds),
        "samples_per_ray": sum(samples) / len(samples) / rays_per_step,
        "samples_per_second": sum(samples) / sum(seconds),
        "operators": operators,
    }
    CONSOLE.print(
        f"step {summary['median_ms_per_step']:.1f} ms (median; mean {summary['mean_ms_per_step']:.1f}), "
        f"{summary['samples_per_ray']:.1f} samples/ray, {summary['samples_per_second'] / 1e6:.3f} M samples/s"
    )
    if operators:
        table = Table(title=f"self CPU time per step ({args.profile_steps} steps profiled)")
        for column in ("operator", "ms/step", "calls/step"):
            table.add_column(column, justify="right" if column != "operator" else "left")
        for op in operators:
            table.add_row(op["name"], f"{op['self_ms_per_step']:.2f}", f"{op['calls_per_step']:.0f}")
        CONSOLE.print(table)
    write_text_atomic(args.output, json.dumps(summary, indent=1))
    CONSOLE.print(f"wrote {args.output}")


if __name__ == "__main__":
    main(tyro.cli(Args))
