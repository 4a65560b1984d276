"""Latent files: one object's codes, tied to the prior (hypernetwork) they belong to.

A latent file is a small torch file (a few hundred bytes of codes plus provenance), written
atomically and read with `weights_only=True`:

    {"format": "hypnerf-latent", "version": 1,
     "shape": [D_s] float32, "colour": [D_c] float32,
     "prior": sha256 of the hypernetwork weights, "checkpoint": path it was made with,
     "source": {"data": ..., "split": ..., "views": [...]}, "name": ...}

The prior's fingerprint is a hash of the hypernetwork's weights, so a latent made with another
checkpoint (even of the same category) is refused with a clear message rather than rendering
garbage.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict

import torch

from hypnerf_ns.errors import InputError
from hypnerf_ns.hypernetwork import Codes
from hypnerf_ns.model import HypNeRFModel

FORMAT = "hypnerf-latent"
VERSION = 1


def prior_fingerprint(model: HypNeRFModel) -> str:
    """sha256 (hex, 16 chars) of the hypernetwork's weights, in state-dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.hypernetwork.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()[:16]


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
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.partial")
        torch.save(payload, temporary)
        os.replace(temporary, path)

    @staticmethod
    def load(path: Path) -> "Latent":
        """Read a latent file; InputError naming the file if it is not one."""
        if not path.is_file():
            raise InputError(path, "no such latent file")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for non-torch files
            raise InputError(path, f"not a latent file ({type(error).__name__})") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise InputError(path, "not a hypnerf-ns latent file")
        if payload.get("version") != VERSION:
            raise InputError(path, f"latent file version {payload.get('version')}, this hypnerf-ns reads version {VERSION}")
        codes = Codes(payload["shape"].float()[None], payload["colour"].float()[None])
        if not (torch.isfinite(codes.shape).all() and torch.isfinite(codes.color).all()):
            raise InputError(path, "codes are not finite")
        return Latent(codes, payload["prior"], payload.get("checkpoint", ""), payload.get("name", ""), payload.get("source", {}))

    def check_prior(self, model: HypNeRFModel, path: Path) -> None:
        """InputError unless this latent was made with `model`'s hypernetwork."""
        fingerprint = prior_fingerprint(model)
        if fingerprint != self.prior:
            raise InputError(
                path, f"made with another prior (fingerprint {self.prior}, checkpoint {self.checkpoint or '?'}); this checkpoint's is {fingerprint}"
            )
