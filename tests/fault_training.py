"""Child process of test_faults.py: trains a small hyp-nerf as `ns-train` does, saving often.

Prints `step N` after every iteration (flushed), so the parent knows how far it got before it
kills the process. `--die-saving STEP` makes the process SIGKILL itself halfway through writing
the checkpoint of STEP: a crash during a save, made certain instead of left to timing.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import torch
from conftest import small_config  # this script's folder (tests/) is on sys.path
from nerfstudio.scripts.train import _set_random_seed

parser = argparse.ArgumentParser()
parser.add_argument("--data", type=Path, required=True)
parser.add_argument("--output", type=Path, required=True)
parser.add_argument("--steps", type=int, required=True, help="iterations to run (from the resumed step)")
parser.add_argument("--save-every", type=int, default=2)
parser.add_argument("--load-dir", type=Path, default=None)
parser.add_argument("--die-saving", type=int, default=None)


def die_while_saving(step: int) -> None:
    """From now on torch.save of the checkpoint of `step` writes half its bytes, then kills this process."""
    real_save = torch.save

    def save(payload, target, *args, **kwargs):
        if isinstance(payload, dict) and payload.get("step") == step:
            real_save(payload, target, *args, **kwargs)
            size = os.path.getsize(target)
            os.truncate(target, size // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(payload, target, *args, **kwargs)

    torch.save = save


def main() -> None:
    args = parser.parse_args()
    torch.set_num_threads(1)  # one order of floating-point sums: resumed runs repeat exactly
    config = small_config(args.data, args.output, steps=args.steps)
    config.steps_per_save = args.save_every
    config.timestamp = "run"  # every resume continues in the same folder
    config.load_dir = args.load_dir
    if args.die_saving is not None:
        die_while_saving(args.die_saving)
    _set_random_seed(config.machine.seed)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    iteration = trainer.train_iteration

    def reporting_iteration(step: int):
        result = iteration(step)
        print(f"step {step}", flush=True)
        return result

    trainer.train_iteration = reporting_iteration
    trainer.train()


if __name__ == "__main__":
    main()
