"""Faults: training killed at any moment resumes from its last complete checkpoint."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hypnerf_ns.method.checkpoints import checkpoint_path, checkpoint_steps, is_complete

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
SAVE_EVERY = 2


def training(data: Path, output: Path, steps: int, load_dir: Path | None, *extra: str) -> subprocess.Popen:
    """Start tests/fault_training.py (a small hyp-nerf run that prints `step N` per iteration)."""
    command = [
        sys.executable,
        str(TESTS / "fault_training.py"),
        "--data",
        str(data),
        "--output",
        str(output),
        "--steps",
        str(steps),
        "--save-every",
        str(SAVE_EVERY),
    ]
    command += ["--load-dir", str(load_dir)] if load_dir is not None else []
    return subprocess.Popen([*command, *extra], cwd=TESTS, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def steps_of(output: str) -> list[int]:
    return [int(line.split()[1]) for line in output.splitlines() if line.startswith("step ")]


def kill_after(process: subprocess.Popen, first_steps: int, seconds: float) -> str:
    """SIGKILL `process` `seconds` after it printed its first `first_steps` step lines; its output."""
    lines = []
    while sum(line.startswith("step ") for line in lines) < first_steps:
        line = process.stdout.readline()
        assert line, "training ended before it was killed:\n" + "".join(lines)
        lines.append(line)
    time.sleep(seconds)
    process.send_signal(signal.SIGKILL)
    rest, _ = process.communicate()
    return "".join(lines) + rest


def final_weights(run: Path) -> dict:
    step = checkpoint_steps(run)[-1]
    return torch.load(checkpoint_path(run, step), map_location="cpu", weights_only=False)["pipeline"]


def test_training_killed_five_times_resumes_from_its_last_complete_checkpoint(
    two_box_chairs: Path, tmp_path: Path
) -> None:
    rng = random.Random(0)
    output = tmp_path / "outputs"
    checkpoints = None
    killed = []
    # Three kills at random moments (saves run every other step, so some land in one), two in a save for sure.
    plans = [("random", None), ("saving", None), ("random", None), ("saving", None), ("random", None)]
    for kind, _ in plans:
        reached_before = checkpoint_steps(checkpoints)[-1] if checkpoints else -1
        if kind == "saving":
            target = reached_before + 1 + 2 * SAVE_EVERY
            target -= target % SAVE_EVERY  # a step that saves
            process = training(two_box_chairs, output, 1000, checkpoints, "--die-saving", str(target))
            log, _ = process.communicate(timeout=600)
        else:
            process = training(two_box_chairs, output, 1000, checkpoints)
            log = kill_after(process, first_steps=3, seconds=rng.uniform(0.0, 2.0))
        assert process.returncode == -signal.SIGKILL, log
        steps = steps_of(log)
        assert steps and steps[0] == reached_before + 1, f"did not resume after step {reached_before}:\n{log}"
        checkpoints = next(output.rglob("nerfstudio_models"))
        complete = [s for s in checkpoint_steps(checkpoints) if is_complete(checkpoint_path(checkpoints, s))]
        assert complete, log
        assert complete[-1] >= steps[-1] - SAVE_EVERY, (
            f"lost more than one save interval: last step {steps[-1]}, checkpoint {complete[-1]}"
        )
        if kind == "saving":
            assert complete[-1] == target - SAVE_EVERY and steps[-1] == target
        killed.append(steps[-1])
    assert len(killed) == 5 and killed == sorted(killed)

    # A checkpoint truncated by a save that was not atomic (nerfstudio's own) is skipped with one line.
    newest = checkpoint_steps(checkpoints)[-1]
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / checkpoint_path(checkpoints, newest).name).write_bytes(
        checkpoint_path(checkpoints, newest).read_bytes()
    )
    truncated = checkpoint_path(checkpoints, newest + 100)
    truncated.write_bytes(checkpoint_path(checkpoints, newest).read_bytes()[:5000])

    resumed = training(two_box_chairs, output, 6, checkpoints)
    log, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, log
    assert f"skipping {truncated}" in log.replace("\n", "")
    assert steps_of(log) == list(range(newest + 1, newest + 7))
    assert not list(checkpoints.parent.glob(".step-*.partial-*")), "the killed saves' partial files are cleaned up"

    # The same checkpoint resumed in another process with the same seed: the same final weights.
    uninterrupted = training(two_box_chairs, tmp_path / "again", 6, snapshot)
    log, _ = uninterrupted.communicate(timeout=600)
    assert uninterrupted.returncode == 0, log
    ours, theirs = final_weights(checkpoints), final_weights(next((tmp_path / "again").rglob("nerfstudio_models")))
    assert_same(ours, theirs, "pipeline")


def assert_same(ours, theirs, name: str) -> None:
    """Equal state: tensors bit for bit, dicts key by key, anything else by ==."""
    if isinstance(ours, dict):
        assert ours.keys() == theirs.keys(), name
        for key in ours:
            assert_same(ours[key], theirs[key], f"{name}.{key}")
    elif isinstance(ours, torch.Tensor):
        assert torch.equal(ours, theirs), name
    else:
        assert ours == theirs, name
