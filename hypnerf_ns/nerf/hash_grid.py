"""The shape of a multi-resolution hash grid and its spatial hash: shared by every implementation
of the encoding (the torch reference and C++ kernel in encoding.py, the Triton kernels)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

# Spatial-hash primes of Instant-NGP, as wrapped int32 (int32 products wrap, which is all a hash needs).
PRIMES = (1, 2654435761 - 2**32, 805459861)


@dataclass(frozen=True)
class HashGridSpec:
    """Shape of a multi-resolution hash grid: `num_levels` grids from `base_resolution` up to
    `max_resolution` (geometric growth), each a table of `table_size` rows of `features` floats."""

    num_levels: int = 8
    features: int = 2
    log2_table_size: int = 12
    base_resolution: int = 16
    max_resolution: int = 128

    @property
    def table_size(self) -> int:
        return 2**self.log2_table_size

    @property
    def output_dim(self) -> int:
        return self.num_levels * self.features

    @cached_property
    def resolutions(self) -> tuple[int, ...]:
        """Cells per axis of each level."""
        if self.num_levels == 1:
            return (self.base_resolution,)
        growth = (self.max_resolution / self.base_resolution) ** (1.0 / (self.num_levels - 1))
        return tuple(round(self.base_resolution * growth**level) for level in range(self.num_levels))

    @cached_property
    def dense_levels(self) -> tuple[bool, ...]:
        """Whether each level's (resolution + 1)^3 vertices fit in the table without hashing."""
        return tuple((res + 1) ** 3 <= self.table_size for res in self.resolutions)
