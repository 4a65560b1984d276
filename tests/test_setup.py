"""`hypnerf-ns setup`: after it, ns-export's open3d imports and an ffmpeg runs, with or without
Debian's packages (CI runs without them: this is where pip's libusb and ffmpeg are proven)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hypnerf_ns.native import environment_bin

pytestmark = pytest.mark.slow

HYPNERF_NS = str(Path(sys.executable).parent / "hypnerf-ns")


def test_setup_makes_open3d_import_and_ffmpeg_run() -> None:
    for _ in range(2):  # idempotent: the second run finds what the first linked
        done = subprocess.run([HYPNERF_NS, "setup"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert subprocess.run([sys.executable, "-c", "import open3d"], capture_output=True).returncode == 0
    path = f"{environment_bin()}:/usr/bin:/bin"  # what ns-render searches when the environment is active
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, env={"PATH": path})
    assert version.returncode == 0 and version.stdout.startswith("ffmpeg version")
