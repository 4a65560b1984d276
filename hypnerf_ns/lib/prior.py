"""A trained prior, loaded for the tools, and the NeRFs they take from it.

`load_prior` reads a run's config.yml and newest complete checkpoint (nerfstudio's `eval_setup`);
`NeRFChoice` is the option group of every verb that shows one NeRF: a training object, a latent
file (`hypnerf-ns invert`, `text`) or a finetuned NeRF file (`hypnerf-ns finetune`). Files a
run owns (denoiser.pt, text.pt) live next to its config.yml (`Prior.run_file`).
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from hypnerf_ns.data.category import list_objects
from hypnerf_ns.errors import InputError
from hypnerf_ns.method.checkpoints import newest_complete_step
from hypnerf_ns.method.model import HypNeRFModel, HypNeRFModelConfig
from hypnerf_ns.nerf.hypernetwork import Codes, NeRFParams
from hypnerf_ns.nerf.latent_files import FinetunedNeRF, load_codes

if TYPE_CHECKING:
    from hypnerf_ns.data.datamanager import CategoryDataManagerConfig


@dataclass
class Prior:
    """A trained prior loaded for inference."""

    model: HypNeRFModel
    """In eval mode, on its device."""
    scale: float
    """Image scale it was trained at (camera_res_scale_factor)."""
    data: Path
    """The category folder it was trained on."""
    config_path: Path

    def training_folder(self, object_id: str) -> Path:
        """The data folder of training object `object_id`; InputError if it is not on this machine."""
        wanted = self.model.object_ids[self.model.object_index(object_id)]
        folder = self.listed_folders.get(wanted, self.data / wanted)
        if not folder.is_dir():
            raise InputError(folder, f"missing: training data of {self.config_path} needed here")
        return folder

    @functools.cached_property
    def listed_folders(self) -> dict[str, Path]:
        """Object id -> folder, as the category's objects.json lists them (merged categories name
        folders in other roots); empty without objects.json (then ROOT/<id>)."""
        return (
            {entry.id: entry.folder for entry in list_objects(self.data)}
            if (self.data / "objects.json").is_file()
            else {}
        )

    def run_file(self, name: str) -> Path:
        """A file of this run (e.g. denoiser.pt, text.pt): next to its config.yml."""
        return self.config_path.parent / name


def read_run_config(config_path: Path) -> Any:
    """The TrainerConfig of a hyp-nerf run's config.yml; InputError naming the file if it is
    missing, not a nerfstudio config, or another method's (whose model may download weights)."""
    import yaml
    from nerfstudio.engine.trainer import TrainerConfig

    if not config_path.is_file():
        raise InputError(config_path, "no such config (expected outputs/<experiment>/hyp-nerf/<timestamp>/config.yml)")
    try:
        config = yaml.load(config_path.read_text(), Loader=yaml.Loader)
    except Exception as error:  # yaml raises many types, and constructing objects may fail too
        raise InputError(config_path, f"not a readable nerfstudio config ({type(error).__name__})") from None
    if not isinstance(config, TrainerConfig):
        raise InputError(config_path, "not a nerfstudio config (ns-train writes config.yml in its run folder)")
    if not isinstance(config.pipeline.model, HypNeRFModelConfig):
        raise InputError(config_path, f"a {config.method_name} run, not a hyp-nerf one")
    return config


def load_prior(config_path: Path) -> Prior:
    """The trained model of a `config.yml` (newest complete checkpoint) in eval mode, with its image scale and data."""
    from nerfstudio.utils.eval_utils import eval_setup

    checkpoints = read_run_config(config_path).get_checkpoint_dir()
    step = newest_complete_step(checkpoints, warn=lambda line: print(line, file=sys.stderr))

    def at_step(config: Any) -> Any:
        config.load_step = step
        return config

    config, pipeline, _, _ = eval_setup(config_path, test_mode="inference", update_config_callback=at_step)
    model = pipeline.model
    model.eval()
    datamanager = cast("CategoryDataManagerConfig", config.pipeline.datamanager)  # a hyp-nerf run's
    data = Path(datamanager.data if datamanager.data is not None else datamanager.dataparser.data)
    return Prior(model, float(datamanager.camera_res_scale_factor), data, config_path)


def training_codes(model: HypNeRFModel) -> Codes:
    """Every training object's code [N, D] (the codebook means), without gradients."""
    with torch.no_grad():
        return model.codebook(torch.arange(model.codebook.num_objects, device=model.device), sample=False)


def mean_code(model: HypNeRFModel) -> Codes:
    """The mean of the training objects' codes [1, D]."""
    codes = training_codes(model)
    return Codes(codes.shape.mean(0, keepdim=True), codes.color.mean(0, keepdim=True))


def object_codes(model: HypNeRFModel, object_id: str) -> Codes:
    """Codes [1, D] of a training object by id (or name); InputError listing the known ones otherwise."""
    try:
        index = model.object_index(object_id)
    except KeyError as error:
        raise InputError(object_id, str(error.args[0])) from None
    with torch.no_grad():
        return model.codebook(torch.tensor([index], device=model.device), sample=False)


def codes_of(model: HypNeRFModel, spec: str) -> Codes:
    """Codes [1, D] of a training object id (or name), or of a latent file (a path ending in .pt)."""
    return load_codes(Path(spec), model.hypernetwork) if spec.endswith(".pt") else object_codes(model, spec)


@dataclass
class NeRFChoice:
    """Which NeRF of the prior: exactly one of a training object, a latent file, a finetuned NeRF file."""

    object: str | None = None
    """A training object's id (or name)."""
    latent: Path | None = None
    """Or: a latent file (`hypnerf-ns invert`, `hypnerf-ns text`)."""
    finetuned: Path | None = None
    """Or: a finetuned NeRF file (`hypnerf-ns finetune`)."""

    def resolve(self, model: HypNeRFModel, load_config: Path) -> tuple[str, NeRFParams]:
        """(name, NeRF parameters [1, ...]); InputError naming the file if the choice is not exactly
        one, or its file is not one of `model`'s."""
        if sum(choice is not None for choice in (self.object, self.latent, self.finetuned)) != 1:
            raise InputError(load_config, "give exactly one of --object ID, --latent FILE and --finetuned FILE")
        if self.finetuned is not None:
            return self.finetuned.parent.name, FinetunedNeRF.load(self.finetuned, model.hypernetwork).params
        name, codes = self.codes(model)
        with torch.no_grad():
            return name, model.hypernetwork(codes)

    def codes(self, model: HypNeRFModel) -> tuple[str, Codes]:
        """(name, codes [1, D]) of the chosen training object or latent file."""
        if self.latent is not None:
            return self.latent.parent.name, load_codes(self.latent, model.hypernetwork)
        assert self.object is not None
        codes = object_codes(model, self.object)  # first: an unknown object is an InputError
        return model.object_ids[model.object_index(self.object)], codes
