"""Latent files (one object's codes) and finetuned NeRF files, tied to the prior they belong to.

A latent file is a small torch file (a few hundred bytes of codes plus provenance), written
atomically and read with `weights_only=True`:

    {"format": "hypnerf-latent", "version": 1,
     "shape": [D_s] float32, "colour": [D_c] float32,
     "prior": sha256 of the hypernetwork weights, "checkpoint": path it was made with,
     "source": {"data": ..., "split": ..., "views": [...]}, "name": ...}

A finetuned NeRF file (`hypnerf-ns finetune`) holds one NeRF's own parameters, [1, ...] per
tensor, in the same layout as the hypernetwork's output:

    {"format": "hypnerf-nerf", "version": 1, "params": {"tables", "density_w0", ...},
     "prior", "checkpoint", "name", "source": {"data", "views", "latent", "object", "denoiser"}}

The prior's fingerprint is a hash of the hypernetwork's weights, so a latent made with another
checkpoint (even of the same category) is refused with a clear message rather than rendering
garbage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict

import torch

from hypnerf_ns.atomic import atomic_output
from hypnerf_ns.errors import InputError
from hypnerf_ns.hypernetwork import Codes, NeRFParams
from hypnerf_ns.model import HypNeRFModel

FORMAT = "hypnerf-latent"
NERF_FORMAT = "hypnerf-nerf"
VERSION = 1


def prior_fingerprint(model: HypNeRFModel) -> str:
    """sha256 (hex, 16 chars) of the hypernetwork's weights, in state-dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.hypernetwork.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_atomic(payload: Dict[str, Any], path: Path) -> None:
    """torch.save through a temporary file and a rename: readers see the old file or the new, never half."""
    with atomic_output(path) as temporary:
        torch.save(payload, temporary)


def load_payload(path: Path, file_format: str, version: int, what: str) -> Dict[str, Any]:
    """The dict of a file written by `save_atomic` with {"format": file_format, "version": version},
    read with weights_only; InputError naming the file if it is missing or something else."""
    if not path.is_file():
        raise InputError(path, f"no such {what} file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for non-torch files
        raise InputError(path, f"not a {what} file ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != file_format:
        raise InputError(path, f"not a hypnerf-ns {what} file")
    if payload.get("version") != version:
        raise InputError(path, f"{what} file version {payload.get('version')}, this hypnerf-ns reads version {version}")
    return payload


def check_prior(fingerprint: str, model: HypNeRFModel, path: Path, checkpoint: str = "") -> None:
    """InputError unless the file at `path`, made with the prior `fingerprint`, belongs to `model`."""
    expected = prior_fingerprint(model)
    if fingerprint != expected:
        raise InputError(path, f"made with another prior (fingerprint {fingerprint}, checkpoint {checkpoint or '?'}); this checkpoint's is {expected}")


@dataclass
class Latent:
    """One object's codes and where they came from."""

    codes: Codes
    """Shape [1, D_s] and colour [1, D_c] codes."""
    prior: str
    """Fingerprint of the prior (`prior_fingerprint`)."""
    checkpoint: str = ""
    name: str = ""
    source: Dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Write atomically (temporary file + rename)."""
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "shape": self.codes.shape.detach().cpu().reshape(-1),
            "colour": self.codes.color.detach().cpu().reshape(-1),
            "prior": self.prior,
            "checkpoint": self.checkpoint,
            "name": self.name,
            "source": self.source,
        }
        save_atomic(payload, path)

    @staticmethod
    def load(path: Path) -> "Latent":
        """Read a latent file; InputError naming the file if it is not one."""
        payload = load_payload(path, FORMAT, VERSION, "latent")
        codes = Codes(payload["shape"].float()[None], payload["colour"].float()[None])
        if not (torch.isfinite(codes.shape).all() and torch.isfinite(codes.color).all()):
            raise InputError(path, "codes are not finite")
        return Latent(codes, payload["prior"], payload.get("checkpoint", ""), payload.get("name", ""), payload.get("source", {}))

    def check_prior(self, model: HypNeRFModel, path: Path) -> None:
        """InputError unless this latent was made with `model`'s hypernetwork."""
        check_prior(self.prior, model, path, self.checkpoint)


def load_codes(path: Path, model: HypNeRFModel) -> Codes:
    """The codes [1, D] of a latent file made with `model`, on its device; InputError naming the file otherwise."""
    latent = Latent.load(path)
    latent.check_prior(model, path)
    return Codes(latent.codes.shape.to(model.device), latent.codes.color.to(model.device))


@dataclass
class FinetunedNeRF:
    """One object's NeRF parameters after finetuning: no longer tied to the codes, still to the
    prior's architecture (and, for provenance, its fingerprint)."""

    params: NeRFParams
    """[1, ...] hash tables and MLP weights, the layout of the prior's hypernetwork output."""
    prior: str
    checkpoint: str = ""
    name: str = ""
    source: Dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Write atomically (temporary file + rename)."""
        payload = {
            "format": NERF_FORMAT, "version": VERSION, "params": {k: v.detach().cpu() for k, v in self.params.items()},
            "prior": self.prior, "checkpoint": self.checkpoint, "name": self.name, "source": self.source,
        }
        save_atomic(payload, path)

    @staticmethod
    def load(path: Path, model: HypNeRFModel) -> "FinetunedNeRF":
        """Read a finetuned NeRF for `model`; InputError naming the file if it is not one, is
        another prior's, or its parameters do not fit the model's field."""
        payload = load_payload(path, NERF_FORMAT, VERSION, "finetuned NeRF")
        check_prior(payload["prior"], model, path, payload.get("checkpoint", ""))
        params = {name: value.float().to(model.device) for name, value in payload["params"].items()}
        expected = {"tables": model.field.table_shape, **model.field.density_shapes(), **model.field.color_shapes()}
        if {name: tuple(value.shape[1:]) for name, value in params.items()} != {name: tuple(shape) for name, shape in expected.items()}:
            raise InputError(path, "parameters do not match this prior's NeRF architecture")
        if not all(torch.isfinite(value).all() for value in params.values()):
            raise InputError(path, "parameters are not finite")
        return FinetunedNeRF(params, payload["prior"], payload.get("checkpoint", ""), payload.get("name", ""), payload.get("source", {}))
