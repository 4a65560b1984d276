"""`hypnerf-ns export mesh`: a coloured mesh straight from a NeRF's density grid (tasks.mesh)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import tyro
from rich.console import Console

from hypnerf_ns.errors import InputError
from hypnerf_ns.files import atomic_output
from hypnerf_ns.lib.prior import NeRFChoice, load_prior
from hypnerf_ns.tasks.mesh import DEFAULT_LEVEL, density_mesh

CONSOLE = Console()


@dataclass
class ExportMesh:
    """Marching-cubes mesh (PLY, OBJ or GLB, with vertex colours) of one object straight from its density grid."""

    load_config: Path
    """config.yml of a trained hyp-nerf."""
    output: Path
    """Mesh file to write; the format follows the extension (.ply, .obj, .glb)."""
    nerf: tyro.conf.OmitArgPrefixes[NeRFChoice] = field(default_factory=NeRFChoice)
    resolution: int = 128
    """Grid cells per axis."""
    level: float = DEFAULT_LEVEL
    """Density of the surface."""

    def main(self) -> None:
        start_time = time.perf_counter()
        prior = load_prior(self.load_config)
        name, params = self.nerf.resolve(prior.model, self.load_config)
        try:
            mesh = density_mesh(prior.model, params, self.resolution, self.level)
        except ValueError as error:
            raise InputError(self.nerf.finetuned or self.nerf.latent or self.load_config, str(error)) from None
        with atomic_output(self.output) as temporary:
            mesh.export(temporary)
        CONSOLE.print(
            f"wrote {self.output}: {name}, {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, "
            f"watertight {mesh.is_watertight} ({time.perf_counter() - start_time:.1f} s)",
            soft_wrap=True,
        )
