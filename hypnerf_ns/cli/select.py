"""`hypnerf-ns select`: choose the object that nerfstudio's own tools show.

`ns-export`, `ns-render` and `ns-viewer` take a `--load-config` and nothing else about the
scene, so the choice travels in a derived config: the trained run's config.yml with the model's
`active_object`, `active_latent` or `active_nerf` set and `show_active_only` on (ns-export draws
rays from every training camera, each tagged with its own object; they must all show the one
chosen). The derived config points at the same checkpoints, so it costs nothing to make.

    hypnerf-ns select --load-config RUN/config.yml --latent inversions/chair/latent.pt
    ns-export pointcloud --load-config RUN/config-chair.yml --output-dir exports/chair
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tyro
import yaml
from rich.console import Console

from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.lib.prior import NeRFChoice, load_prior

CONSOLE = Console()


@dataclass
class Select:
    """Write a config that makes ns-export, ns-render and ns-viewer show one object, latent file or finetuned NeRF."""

    load_config: Path
    """config.yml of a trained hyp-nerf."""
    nerf: tyro.conf.OmitArgPrefixes[NeRFChoice] = field(default_factory=NeRFChoice)
    output: Path | None = None
    """The derived config (default: config-<name>.yml next to --load-config)."""

    def main(self) -> None:
        model = load_prior(self.load_config).model
        name, _ = self.nerf.resolve(model, self.load_config)  # checks the choice
        config = yaml.load(self.load_config.read_text(), Loader=yaml.Loader)
        chosen = config.pipeline.model
        chosen.active_object = name if self.nerf.object is not None else chosen.active_object
        chosen.active_latent = None if self.nerf.latent is None else self.nerf.latent.resolve()
        chosen.active_nerf = None if self.nerf.finetuned is None else self.nerf.finetuned.resolve()
        chosen.show_active_only = True
        run = self.load_config.resolve().parent
        if run.parts[-3:] == (config.experiment_name, config.method_name, config.timestamp):
            config.output_dir = run.parents[2]  # absolute: the derived config works from any folder
        output = self.output if self.output is not None else self.load_config.parent / f"config-{name}.yml"
        write_text_atomic(output, yaml.dump(config))
        CONSOLE.print(f"wrote {output}: use it as --load-config of ns-export, ns-render or ns-viewer", soft_wrap=True)
