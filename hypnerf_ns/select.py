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

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import torch
import yaml
from rich.console import Console

from hypnerf_ns.commands import load_prior
from hypnerf_ns.atomic import write_text_atomic
from hypnerf_ns.errors import InputError
from hypnerf_ns.hypernetwork import NeRFParams
from hypnerf_ns.latent import FinetunedNeRF, load_codes
from hypnerf_ns.model import HypNeRFModel

CONSOLE = Console()


@dataclass
class Select:
    """Write a config that makes ns-export, ns-render and ns-viewer show one object, latent file or finetuned NeRF."""

    load_config: Path
    """config.yml of a trained hyp-nerf."""
    object: Optional[str] = None
    """A training object's id (or name)."""
    latent: Optional[Path] = None
    """Or: a latent file (`hypnerf-ns invert`)."""
    finetuned: Optional[Path] = None
    """Or: a finetuned NeRF file (`hypnerf-ns finetune`)."""
    output: Optional[Path] = None
    """The derived config (default: config-<name>.yml next to --load-config)."""

    def main(self) -> None:
        model = load_prior(self.load_config).model
        name, _ = chosen_params(model, self.load_config, self.object, self.latent, self.finetuned)  # checks the choice
        config = yaml.load(self.load_config.read_text(), Loader=yaml.Loader)
        chosen = config.pipeline.model
        chosen.active_object = name if self.object is not None else chosen.active_object
        chosen.active_latent = None if self.latent is None else self.latent.resolve()
        chosen.active_nerf = None if self.finetuned is None else self.finetuned.resolve()
        chosen.show_active_only = True
        run = self.load_config.resolve().parent
        if run.parts[-3:] == (config.experiment_name, config.method_name, config.timestamp):
            config.output_dir = run.parents[2]  # absolute: the derived config works from any folder
        output = self.output if self.output is not None else self.load_config.parent / f"config-{name}.yml"
        write_text_atomic(output, yaml.dump(config))
        CONSOLE.print(f"wrote {output}: use it as --load-config of ns-export, ns-render or ns-viewer", soft_wrap=True)


def chosen_params(
    model: HypNeRFModel, load_config: Path, object_id: Optional[str], latent: Optional[Path], finetuned: Optional[Path]
) -> Tuple[str, NeRFParams]:
    """(name, NeRF parameters [1, ...]) of exactly one of a training object, a latent file and a
    finetuned NeRF file of `model`; InputError naming the file otherwise."""
    if sum(choice is not None for choice in (object_id, latent, finetuned)) != 1:
        raise InputError(load_config, "give exactly one of --object ID, --latent FILE and --finetuned FILE")
    if finetuned is not None:
        return finetuned.parent.name, FinetunedNeRF.load(finetuned, model).params
    if latent is not None:
        codes, name = load_codes(latent, model), latent.parent.name
    else:
        try:
            index = model.object_index(object_id)
        except KeyError as error:
            raise InputError(load_config, str(error.args[0])) from None
        codes, name = model.codebook(torch.tensor([index], device=model.device), sample=False), model.object_ids[index]
    with torch.no_grad():
        return name, model.hypernetwork(codes)
