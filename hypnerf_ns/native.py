"""Native programs nerfstudio's commands need, from pip where the system has none.

`ns-render` (and our videos) call `ffmpeg`; `ns-export` imports open3d, whose library links
against `libusb-1.0.so.0`. Debian users get both with apt, as root; everyone else gets them from
PyPI: `imageio-ffmpeg` ships an ffmpeg binary, `libusb-package` ships libusb. `hypnerf-ns setup`
puts them where those commands look: `ffmpeg` beside the environment's own commands (its
`bin/`, on PATH when the environment is active) and libusb in site-packages, a folder open3d's
library searches ($ORIGIN/.. in its RUNPATH). Both are links; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

LIBUSB = "libusb-1.0.so.0"


def pip_ffmpeg() -> Path:
    """The ffmpeg binary of the `imageio-ffmpeg` package."""
    import imageio_ffmpeg

    return Path(imageio_ffmpeg.get_ffmpeg_exe())


def environment_bin() -> Path:
    """The folder of this environment's commands (ns-train, ns-render, hypnerf-ns)."""
    return Path(sys.executable).parent


def link_ffmpeg() -> Path | None:
    """Link pip's ffmpeg as `ffmpeg` into the environment's bin/ unless one is on PATH; the link made, if any."""
    if shutil.which("ffmpeg") is not None:
        return None
    link = environment_bin() / "ffmpeg"
    if link.is_symlink():
        link.unlink()  # stale (an older imageio-ffmpeg)
    link.symlink_to(pip_ffmpeg())
    return link


def open3d_imports() -> bool:
    """Whether `import open3d` works in a fresh interpreter (as in ns-export's process)."""
    done = subprocess.run([sys.executable, "-c", "import open3d"], capture_output=True, text=True)
    return done.returncode == 0


def link_libusb() -> Path | None:
    """Link pip's libusb beside open3d's package unless open3d already imports; the link made, if any."""
    spec = importlib.util.find_spec("open3d")
    if spec is None or spec.origin is None or open3d_imports():
        return None
    import libusb_package

    library = Path(libusb_package.__file__).parent / "libusb-1.0.so"
    link = Path(spec.origin).parent.parent / LIBUSB  # site-packages: $ORIGIN/.. of open3d's library
    if link.is_symlink():
        link.unlink()
    link.symlink_to(library)
    return link
