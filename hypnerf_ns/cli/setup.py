"""`hypnerf-ns setup`: ffmpeg and libusb from pip where the system has none (see `hypnerf_ns.native`).

Run once after `pip install`; needs no root. Idempotent: it says what it found or linked, and
fails in one line if ns-export (open3d) or ns-render (ffmpeg) would still not work.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from rich.console import Console

from hypnerf_ns.errors import HypnerfError
from hypnerf_ns.native import environment_bin, link_ffmpeg, link_libusb, open3d_imports

CONSOLE = Console()


@dataclass
class Setup:
    """Make ns-render and ns-export work without Debian's ffmpeg and libusb (no root needed)."""

    def main(self) -> None:
        linked = link_ffmpeg()
        ffmpeg = shutil.which("ffmpeg") or (str(linked) if linked else None)
        CONSOLE.print(f"ffmpeg: {'linked ' + str(linked) + ' (imageio-ffmpeg)' if linked else ffmpeg}")
        if linked and shutil.which("ffmpeg") is None:
            CONSOLE.print(f"  activate the environment (PATH must hold {environment_bin()}) before ns-render")
        library = link_libusb()
        if not open3d_imports():
            raise HypnerfError("open3d (ns-export) still does not import; run `python -c 'import open3d'` to see why")
        CONSOLE.print(f"libusb for open3d: {'linked ' + str(library) + ' (libusb-package)' if library else 'found'}")
