"""Latent files (one object's codes) and finetuned NeRF files, tied to the prior they belong to.

A latent file is a small torch file (a few hundred bytes of codes plus provenance), written
atomically and read with `weights_only=True`:

    {"format": "hypnerf-latent", "version": 1,
     "shape": [D_s] float32, "colour": [D_c] float32,
     "prior": the hypernetwork's fingerprint, "checkpoint": path it was made with,
     "source": {"data": ..., "split": ..., "views": [...]}, "name": ...}

A finetuned NeRF file (`hypnerf-ns finetune`) holds one NeRF's own parameters, [1, ...] per
tensor, in the layout of the hypernetwork's output:

    {"format": "hypnerf-nerf", "version": 1, "params": {"tables", "density_w0", ...},
     "prior", "checkpoint", "name", "source": {"data", "views", "latent", "object", "denoiser"}}

The prior's fingerprint (`HyperNetwork.fingerprint`) is a hash of the hypernetwork's weights,
so a file made with another checkpoint (even of the same category) is refused in one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hypnerf_ns.errors import InputError
from hypnerf_ns.files import load_torch_payload, save_torch_atomic
from hypnerf_ns.nerf.hypernetwork import Codes, HyperNetwork, NeRFParams

LATENT_FORMAT = "hypnerf-latent"
NERF_FORMAT = "hypnerf-nerf"
VERSION = 1


def check_prior(fingerprint: str, hypernetwork: HyperNetwork, path: Path, checkpoint: str = "") -> None:
    """InputError unless the file at `path`, made with the prior `fingerprint`, belongs to `hypernetwork`."""
    expected = hypernetwork.fingerprint()
    if fingerprint != expected:
        raise InputError(
            path,
            f"made with another prior (fingerprint {fingerprint}, checkpoint {checkpoint or '?'}); "
            f"this checkpoint's is {expected}",
        )


@dataclass
class Latent:
    """One object's codes and where they came from."""

    codes: Codes
    """Shape [1, D_s] and colour [1, D_c] codes."""
    prior: str
    """Fingerprint of the prior (`HyperNetwork.fingerprint`)."""
    checkpoint: str = ""
    name: str = ""
    source: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Write atomically (temporary file + rename)."""
        payload = {
            "format": LATENT_FORMAT,
            "version": VERSION,
            "shape": self.codes.shape.detach().cpu().reshape(-1),
            "colour": self.codes.color.detach().cpu().reshape(-1),
            "prior": self.prior,
            "checkpoint": self.checkpoint,
            "name": self.name,
            "source": self.source,
        }
        save_torch_atomic(payload, path)

    @staticmethod
    def load(path: Path) -> Latent:
        """Read a latent file; InputError naming the file if it is not one."""
        payload = load_torch_payload(path, LATENT_FORMAT, VERSION, "latent")
        codes = Codes(payload["shape"].float()[None], payload["colour"].float()[None])
        if not (torch.isfinite(codes.shape).all() and torch.isfinite(codes.color).all()):
            raise InputError(path, "codes are not finite")
        return Latent(
            codes, payload["prior"], payload.get("checkpoint", ""), payload.get("name", ""), payload.get("source", {})
        )


def load_codes(path: Path, hypernetwork: HyperNetwork) -> Codes:
    """The codes [1, D] of a latent file made with `hypernetwork`, on its device; InputError naming the file
    otherwise."""
    latent = Latent.load(path)
    check_prior(latent.prior, hypernetwork, path, latent.checkpoint)
    device = next(hypernetwork.parameters()).device
    return Codes(latent.codes.shape.to(device), latent.codes.color.to(device))


@dataclass
class FinetunedNeRF:
    """One object's NeRF parameters after finetuning: no longer tied to the codes, still to the
    prior's architecture (and, for provenance, its fingerprint)."""

    params: NeRFParams
    """[1, ...] hash tables and MLP weights, the layout of the prior's hypernetwork output."""
    prior: str
    checkpoint: str = ""
    name: str = ""
    source: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Write atomically (temporary file + rename)."""
        payload = {
            "format": NERF_FORMAT,
            "version": VERSION,
            "params": {k: v.detach().cpu() for k, v in self.params.items()},
            "prior": self.prior,
            "checkpoint": self.checkpoint,
            "name": self.name,
            "source": self.source,
        }
        save_torch_atomic(payload, path)

    @staticmethod
    def load(path: Path, hypernetwork: HyperNetwork) -> FinetunedNeRF:
        """Read a finetuned NeRF for `hypernetwork`'s prior; InputError naming the file if it is not
        one, is another prior's, or its parameters do not fit the prior's NeRF layout."""
        payload = load_torch_payload(path, NERF_FORMAT, VERSION, "finetuned NeRF")
        check_prior(payload["prior"], hypernetwork, path, payload.get("checkpoint", ""))
        device = next(hypernetwork.parameters()).device
        params = {name: value.float().to(device) for name, value in payload["params"].items()}
        expected = {name: tuple(shape) for name, shape in hypernetwork.param_shapes().items()}
        if {name: tuple(value.shape[1:]) for name, value in params.items()} != expected:
            raise InputError(path, "parameters do not match this prior's NeRF architecture")
        if not all(torch.isfinite(value).all() for value in params.values()):
            raise InputError(path, "parameters are not finite")
        return FinetunedNeRF(
            params, payload["prior"], payload.get("checkpoint", ""), payload.get("name", ""), payload.get("source", {})
        )
