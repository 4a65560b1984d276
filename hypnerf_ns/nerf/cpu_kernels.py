"""The project's C++ CPU kernels (csrc/), compiled on first use into one module and cached by torch.

    hash_encoding.cpp  the hash encoding with per-object tables, forward and both gradients
    marching.cpp       ray marching through per-object occupancy grids
    threads.cpp        flushing denormals in every torch worker thread

Each has a pure-torch equivalent that runs wherever the module does not build (no C++ compiler)
and on other devices; tests hold the two equal. Built with `-O3 -fopenmp` only: no
`-march=native` or `-ffast-math`, so results are the same on every x86-64 CPU.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from types import ModuleType

logger = logging.getLogger(__name__)

SOURCES = ("hash_encoding.cpp", "marching.cpp", "threads.cpp")
FUNCTIONS = (
    "hash_encode_forward",
    "hash_encode_backward_tables",
    "hash_encode_backward_points",
    "march_occupied",
    "set_flush_denormal_all_threads",
)


@cache
def cpu_kernels() -> ModuleType | None:
    """The compiled kernels, or None (logged once) when they cannot be built."""
    from nerfstudio.utils.rich_utils import CONSOLE
    from torch.utils.cpp_extension import load_inline

    CONSOLE.print("Loading the CPU kernels (compiled once, about a minute the first time)")
    sources = [(Path(__file__).parent / "csrc" / name).read_text() for name in SOURCES]
    try:
        return load_inline(
            name="hypnerf_cpu_kernels",
            cpp_sources=sources,
            functions=list(FUNCTIONS),
            extra_cflags=["-O3", "-fopenmp"],
            extra_ldflags=["-fopenmp"],
        )
    except Exception as error:
        logger.warning("CPU kernels unavailable (%s); using the slower pure-torch code", error)
        return None


def flush_denormals() -> bool:
    """Flush denormal floats to zero (FTZ/DAZ) in this thread and in torch's CPU worker threads.

    Adam's first moment of a parameter whose gradient stays zero (hash entries no sample of a
    batch touches, dead hypernetwork units) decays through the denormal range, where x86
    arithmetic is about ten times slower: within the first few thousand steps a quarter of the
    table head's moments can be denormal, which slows its fused-Adam step about eightfold.
    Values below 1.2e-38 become 0. Threads torch starts later (a higher `torch.set_num_threads`)
    are not covered. Returns False where the kernels or the CPU do not support it.
    """
    kernels = cpu_kernels()
    return kernels is not None and bool(kernels.set_flush_denormal_all_threads(True))
